"""`refineryiq`: the one console script, with subcommands.

Exit codes: 0 normal (also after SIGTERM/SIGINT), 2 configuration error (the message names the
file and the field path), 1 anything else.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from pathlib import Path

from gateway.runtime.exit_codes import EXIT_CONFIG, EXIT_ERROR, EXIT_OK, report_config_error
from gateway.settings import DEFAULT_CONFIG, load_config
from plant.errors import ConfigError

# subcommand -> (module with main(argv) -> exit code, help)
PASS_THROUGH = {
    "simulate": ("simulator.run", "run the simulated refinery PLC (OPC-UA + Modbus TCP)"),
    "migrate": ("refineryiq.migrate", "create or upgrade the historian database schema"),
    "train": ("refineryiq.train", "train the predictive-maintenance models "
              "(--from-history: on the plant's own history and failure records)"),
    "maintenance": ("refineryiq.maintenance", "import and list the plant's failure / work-order records"),
    "report": ("refineryiq.report", "generate the daily operations report "
               "(--historian [--site S] [--gateway G]: from the central database)"),
    "user": ("refineryiq.user", "manage HTTP API users (add, list, passwd, set-role, ...)"),
}
# `refineryiq train --from-history`: trained on the gateway's own history, labelled by the
# imported failure records (refineryiq.train_history), instead of simulated runs.
FROM_HISTORY = "--from-history"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refineryiq", description="RefineryIQ Edge gateway")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                        help="override logging.level from the config")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the gateway daemon")
    run.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    run.add_argument("--simulate", action="store_true",
                     help="start the bundled simulator on loopback and read it")
    run.add_argument("--scenario", metavar="NAME",
                     help="with --simulate: start this simulator scenario (e.g. furnace-upset; "
                          "`refineryiq simulate --help` lists them)")

    for name, (_, help_text) in PASS_THROUGH.items():
        sub.add_parser(name, help=help_text, add_help=False).add_argument(
            "args", nargs=argparse.REMAINDER)

    check = sub.add_parser("check-config", help="validate a configuration and exit")
    check.add_argument("path", nargs="?", type=Path, default=DEFAULT_CONFIG)
    return parser


def _configure_logging(config_level: str, config_format: str, override: str | None) -> None:
    from gateway.runtime import logs
    logs.configure(override or config_level, config_format)


def cmd_check_config(path: Path) -> int:
    config = load_config(path)
    from plant.catalog import Catalog
    catalog = Catalog.build(config.plant)
    groups = len(config.settings.scan_groups)
    print(f"{path}: OK — {len(config.settings.devices)} devices, {groups} scan groups, "
          f"{len(catalog)} tags, {len(config.plant.units)} units "
          f"(plant catalog {config.settings.plant_file})")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    if args.scenario is not None and not args.simulate:
        print("refineryiq run: --scenario needs --simulate", file=sys.stderr)
        return EXIT_CONFIG
    config = load_config(args.config)
    _configure_logging(config.settings.logging.level, config.settings.logging.format, args.log_level)
    from gateway.daemon import Gateway
    asyncio.run(Gateway(config, simulate=args.simulate, scenario=args.scenario).run())
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # These subcommands have their own parsers in their modules; pass their flags through.
    if argv and argv[0] in PASS_THROUGH:
        module, _ = PASS_THROUGH[argv[0]]
        if argv[0] == "train" and FROM_HISTORY in argv[1:]:
            module = "refineryiq.train_history"
        return importlib.import_module(module).main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        if args.command == "check-config":
            return cmd_check_config(args.path)
        if args.command == "run":
            return cmd_run(args)
    except ConfigError as exc:
        return report_config_error(exc)
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:
        print(f"refineryiq: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
