"""`refineryiq report`: write one plant day's operations report (HTML, PDF or XLSX).

    refineryiq report [--config PATH] [--date YYYY-MM-DD|today|yesterday]
                      [--format html|pdf|xlsx] [--out PATH]
                      [--historian [--site SITE] [--gateway GATEWAY_ID]]

It reads the stores in the configured state directory (it may run beside the daemon), shows
its progress on stderr, and writes the file atomically. Default date: yesterday (the last
complete plant day, in ``analytics.timezone``); default output:
``<state_dir>/reports/daily-report-<date>.<format>``. Exit codes as every subcommand: 0 done,
2 configuration error, 1 anything else (e.g. a day that has not begun).

``--historian`` reads the central database of ``[database]`` instead, for one gateway: the
configured one, the one named by ``--gateway``, or, with ``--site`` alone, each gateway of that
site (one report each). The plant catalog is the configuration's. Default output
``<state_dir>/reports/historian/<gateway_id>/daily-report-<date>.<format>``; with several
gateways ``--out`` is a directory holding ``<gateway_id>/daily-report-...``. An unknown site
or gateway exits 1 and lists the known ones; no database configured exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import TextIO

from gateway.runtime.exit_codes import EXIT_CONFIG, EXIT_ERROR, EXIT_OK, report_config_error
from gateway.settings import DEFAULT_CONFIG, GatewaySettings, load_config
from plant.errors import ConfigError

REPORTS_DIR = "reports"
HISTORIAN_DIR = "historian"
STEPS = ("reading the day's data", "building sections", "drawing charts", "rendering", "writing")


class StepProgress:
    """Numbered steps with elapsed time on a stream (stderr): ``[2/5] building sections``."""

    def __init__(self, stream: TextIO = sys.stderr):
        self.stream = stream
        self.started = time.monotonic()
        self.done = 0

    def __call__(self, step: str) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started
        self.stream.write(f"[{self.done}/{len(STEPS)}] {elapsed:5.1f}s {step}\n")
        self.stream.flush()


def parse_day(text: str, today: date) -> date:
    """A plant day from ``YYYY-MM-DD``, ``today`` or ``yesterday``."""
    word = text.strip().lower()
    if word == "today":
        return today
    if word == "yesterday":
        return today - timedelta(days=1)
    try:
        return date.fromisoformat(word)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not YYYY-MM-DD, today or yesterday") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refineryiq report",
                                     description="Write the daily operations report of a plant day")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--date", default="yesterday",
                        help="plant day YYYY-MM-DD, 'today' or 'yesterday' (default)")
    parser.add_argument("--format", choices=["html", "pdf", "xlsx"], default="html")
    parser.add_argument("--out", type=Path,
                        help="output file (default <state_dir>/reports/daily-report-<date>.<format>)")
    central = parser.add_argument_group("central historian")
    central.add_argument("--historian", action="store_true",
                         help="read the [database] historian instead of the state directory")
    central.add_argument("--site", help="with --historian: the gateways of this site")
    central.add_argument("--gateway", metavar="GATEWAY_ID",
                         help="with --historian: this gateway (default: the configured one, or "
                              "with --site every gateway of the site)")
    return parser


def default_path(settings: GatewaySettings, file_name: str) -> Path:
    return settings.state_dir / REPORTS_DIR / file_name


async def _run(settings: GatewaySettings, config_plant, day: date, fmt: str, out: Path | None,
               progress: StepProgress) -> Path:
    from gateway.services.reports import ReportFormat, ReportSources, generate, write_atomically
    from plant.catalog import Catalog

    catalog = Catalog.build(config_plant)
    async with ReportSources(settings.state_dir, [t.id for t in catalog.tags]) as sources:
        rendered = await generate(sources, settings, catalog, day, ReportFormat(fmt),
                                  progress=progress)
    path = out or default_path(settings, rendered.file_name)
    progress(f"writing {path}")
    await asyncio.to_thread(write_atomically, path, rendered.content)
    return path


async def _run_historian(settings: GatewaySettings, config_plant, day: date, fmt: str,
                         out: Path | None, site: str | None, gateway_id: str | None,
                         progress: StepProgress) -> list[Path]:
    """The report of each chosen gateway, read from the historian; their paths."""
    from gateway.services.reports import ReportFormat, generate, write_atomically
    from gateway.services.reports.sources import HistorianSources
    from gateway.store.postgres.connection import connect
    from gateway.store.postgres.reads import select_gateways
    from plant.catalog import Catalog

    url = settings.database.url.get_secret_value()
    schema = settings.database.schema_name
    if site is None and gateway_id is None:
        gateway_id = settings.gateway_id
    conn = await connect(url, schema=schema, create_schema=False, timeout=30)
    try:
        chosen = await select_gateways(conn, site=site, gateway_id=gateway_id)
    finally:
        await conn.close()
    catalog = Catalog.build(config_plant)
    paths = []
    for gateway in chosen:
        if len(chosen) > 1:
            progress.stream.write(f"{gateway.gateway_id} (site {gateway.site})\n")
            progress.done = 0
        as_gateway = settings.model_copy(update={"gateway_id": gateway.gateway_id,
                                                 "site": gateway.site})
        async with HistorianSources(url, gateway.gateway_id, [t.id for t in catalog.tags],
                                    schema=schema) as sources:
            rendered = await generate(sources, as_gateway, catalog, day, ReportFormat(fmt),
                                      progress=progress)
        if out is not None and len(chosen) == 1:
            path = out
        else:
            folder = out or settings.state_dir / REPORTS_DIR / HISTORIAN_DIR
            path = folder / gateway.gateway_id / rendered.file_name
        progress(f"writing {path}")
        await asyncio.to_thread(write_atomically, path, rendered.content)
        paths.append(path)
    return paths


def main(argv: list[str]) -> int:
    """The `report` subcommand (argv without the word 'report')."""
    parser = _parser()
    args = parser.parse_args(argv)
    if (args.site is not None or args.gateway is not None) and not args.historian:
        parser.error("--site and --gateway choose gateways of the central historian: "
                     "add --historian")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return report_config_error(exc)
    from gateway.services.reports import ReportError, today
    settings = config.settings
    try:
        day = parse_day(args.date, today(settings))
    except argparse.ArgumentTypeError as exc:
        print(f"refineryiq report: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.historian and settings.database.url is None:
        print(f"refineryiq report: --historian: no historian database configured (set [database] "
              f"url in {args.config} or REFINERYIQ_DATABASE__URL)", file=sys.stderr)
        return EXIT_CONFIG
    import asyncpg

    from gateway.store.postgres.reads import UnknownGatewayError
    try:
        if args.historian:
            paths = asyncio.run(_run_historian(settings, config.plant, day, args.format, args.out,
                                               args.site, args.gateway, StepProgress()))
        else:
            paths = [asyncio.run(_run(settings, config.plant, day, args.format, args.out,
                                      StepProgress()))]
    except (ReportError, UnknownGatewayError) as exc:
        print(f"refineryiq report: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except asyncpg.UndefinedTableError as exc:
        print(f"refineryiq report: the historian database has no fleet tables ({exc}): not "
              f"migrated yet (refineryiq migrate), or another [database] schema", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:
        print(f"refineryiq report: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    for path in paths:
        print(path)
    return EXIT_OK
