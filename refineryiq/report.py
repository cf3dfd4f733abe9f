"""`refineryiq report`: write one plant day's operations report (HTML, PDF or XLSX).

    refineryiq report [--config PATH] [--date YYYY-MM-DD|today|yesterday]
                      [--format html|pdf|xlsx] [--out PATH]

It reads the stores in the configured state directory (it may run beside the daemon), shows
its progress on stderr, and writes the file atomically. Default date: yesterday (the last
complete plant day, in ``analytics.timezone``); default output:
``<state_dir>/reports/daily-report-<date>.<format>``. Exit codes as every subcommand: 0 done,
2 configuration error, 1 anything else (e.g. a day that has not begun).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import TextIO

from gateway.runtime.exit_codes import EXIT_ERROR, EXIT_OK, report_config_error
from gateway.settings import DEFAULT_CONFIG, GatewaySettings, load_config
from plant.errors import ConfigError

REPORTS_DIR = "reports"
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


def main(argv: list[str]) -> int:
    """The `report` subcommand (argv without the word 'report')."""
    args = _parser().parse_args(argv)
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
    try:
        path = asyncio.run(_run(settings, config.plant, day, args.format, args.out, StepProgress()))
    except ReportError as exc:
        print(f"refineryiq report: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:
        print(f"refineryiq report: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(path)
    return EXIT_OK
