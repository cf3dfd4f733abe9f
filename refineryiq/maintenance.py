"""`refineryiq maintenance`: the plant's failure / work-order records.

    refineryiq maintenance import FILE [--skip-bad] [--dry-run] [--config PATH]
    refineryiq maintenance list [--equipment ID] [--config PATH]

``import`` reads a CSV record file (columns ``equipment_id``, ``failure_time``,
``failure_mode`` and optionally ``repair_end``; times ISO-8601 with a zone or epoch seconds;
see :mod:`analytics.pdm.records`), checks every row against the plant catalog and keeps the
records in ``<state_dir>/maintenance.sqlite``. A file with any bad row is reported in full
(row number, column, what is wrong) and **nothing is imported** (exit 2): a record file is
usually fixed and imported again, and half an import would leave failures silently missing
from the training labels. ``--skip-bad`` imports the good rows anyway (exit 0, the bad rows
still listed). Importing the same record again changes nothing; a record whose failure mode
or repair end changed is updated. ``--dry-run`` checks the file and imports nothing.

``list`` prints the records (one line each) and the import log.

Exit codes: 0 done, 2 the file has problems (or a configuration error), 1 anything else.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path
from typing import TextIO

from analytics.pdm.records import COLUMNS, Parsed, iso, parse_records
from gateway.runtime.exit_codes import EXIT_ERROR, EXIT_OK, report_config_error
from gateway.settings import DEFAULT_CONFIG, load_config
from gateway.store.maintenance_records import MaintenanceRecords
from plant.errors import ConfigError

EXIT_BAD_FILE = 2
# At most this many problems are printed one per line; the rest are counted.
MAX_PROBLEMS_SHOWN = 200

EPILOG = f"""\
record file (CSV, first row the header):
  {','.join(COLUMNS)}
  PUMP-101,2026-03-04T06:15:00-04:00,bearing failure,2026-03-04T14:30:00-04:00
  PUMP-305,1772611200,seal leak,

  equipment_id   an equipment id of the plant catalog (plant.toml)
  failure_time   ISO-8601 with a zone (Z or -04:00) or epoch seconds
  failure_mode   free text
  repair_end     optional: back in service (same formats); empty when unknown
Other columns are ignored. Row numbers count the header as row 1.
A file with a bad row imports nothing (exit 2) unless --skip-bad is given.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refineryiq maintenance",
                                     description="the plant's failure / work-order records",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True)
    imp = sub.add_parser("import", help="check and import a CSV record file", epilog=EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    imp.add_argument("file", type=Path)
    imp.add_argument("--skip-bad", action="store_true",
                     help="import the good rows even if some rows are bad (they are still listed)")
    imp.add_argument("--dry-run", action="store_true", help="check the file, import nothing")
    imp.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    lst = sub.add_parser("list", help="show the imported records")
    lst.add_argument("--equipment", help="only this equipment id")
    lst.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    return parser


def _report_problems(parsed: Parsed, file: Path, out: TextIO) -> None:
    for problem in parsed.problems[:MAX_PROBLEMS_SHOWN]:
        print(f"{file}: {problem}", file=out)
    hidden = len(parsed.problems) - MAX_PROBLEMS_SHOWN
    if hidden > 0:
        print(f"{file}: ... and {hidden} more problems", file=out)


def cmd_import(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        print(f"refineryiq maintenance import: cannot read {args.file}: {exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_BAD_FILE
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        print(f"{args.file}: not UTF-8 text (byte {exc.start}); save the file as CSV UTF-8",
              file=sys.stderr)
        return EXIT_BAD_FILE
    equipment = {e.id: e.type for e in config.plant.equipment}
    parsed = parse_records(text, equipment, now_s=time.time())
    _report_problems(parsed, args.file, sys.stderr)
    if parsed.ignored_columns:
        print(f"{args.file}: ignored columns: {', '.join(parsed.ignored_columns)}", file=sys.stderr)
    bad = len(parsed.bad_rows)
    if not parsed.header_ok or (bad and not args.skip_bad):
        print(f"{args.file}: {bad} of {parsed.rows} rows have problems; nothing imported "
              f"(fix them, or import the good rows with --skip-bad)" if parsed.header_ok else
              f"{args.file}: the header has problems; nothing imported", file=sys.stderr)
        return EXIT_BAD_FILE
    if args.dry_run:
        print(f"{args.file}: {len(parsed.records)} good rows, {bad} bad (dry run, nothing imported)")
        return EXIT_OK
    digest = hashlib.sha256(data).hexdigest()
    with MaintenanceRecords.in_state_dir(config.settings.state_dir) as db:
        result = db.import_records(parsed.records, str(args.file.resolve()), digest,
                                   rows=parsed.rows, skipped_bad=bad)
        total = len(db.records())
    print(f"{args.file}: {result.added} added, {result.updated} updated, {result.unchanged} already "
          f"present" + (f", {bad} bad rows skipped" if bad else "")
          + f"; {total} records in {db.path} (sha256 {digest[:12]})")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    path = MaintenanceRecords.in_state_dir(config.settings.state_dir).path
    if not path.exists():
        print(f"no records yet ({path} does not exist); import some with "
              "`refineryiq maintenance import FILE`")
        return EXIT_OK
    with MaintenanceRecords(path) as db:
        stored = db.records(args.equipment)
        imports = db.imports()
    print(f"{'equipment':<14} {'failure time (UTC)':<21} {'repair end (UTC)':<21} "
          f"{'down h':>7}  failure mode")
    for item in stored:
        r = item.record
        down = "" if r.repair_end_s is None else f"{(r.repair_end_s - r.failure_s) / 3600:.1f}"
        print(f"{r.equipment_id:<14} {iso(r.failure_s):<21} "
              f"{'' if r.repair_end_s is None else iso(r.repair_end_s):<21} {down:>7}  {r.failure_mode}")
    per_equipment: dict[str, int] = {}
    for item in stored:
        per_equipment[item.record.equipment_id] = per_equipment.get(item.record.equipment_id, 0) + 1
    summary = ", ".join(f"{k} {v}" for k, v in sorted(per_equipment.items()))
    print(f"{len(stored)} records" + (f" ({summary})" if summary else "") + f" in {path}")
    for entry in imports:
        print(f"imported {iso(float(entry['imported_at']))}: {entry['file']} (sha256 "
              f"{str(entry['sha256'])[:12]}): {entry['added']} added, {entry['updated']} updated, "
              f"{entry['unchanged']} already present, {entry['skipped_bad']} bad rows skipped")
    return EXIT_OK


def main(argv: list[str]) -> int:
    """Body of `refineryiq maintenance`; see the module docstring."""
    args = _parser().parse_args(argv)
    try:
        return cmd_import(args) if args.action == "import" else cmd_list(args)
    except ConfigError as exc:
        return report_config_error(exc)
    except OSError as exc:
        print(f"refineryiq maintenance: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # sqlite3 errors and the like: one line, not a traceback
        print(f"refineryiq maintenance: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
