"""Failure / work-order records as CSV: parse and check every row, report every problem.

Pure: text in, records or per-row problems out (no file, no clock: the caller passes the
plant's equipment and, optionally, "now"). The file is what a maintenance system exports::

    equipment_id,failure_time,failure_mode,repair_end
    PUMP-101,2026-03-04T06:15:00-04:00,bearing failure,2026-03-04T14:30:00-04:00
    PUMP-305,1772611200,seal leak,

* ``equipment_id`` — an equipment id of the plant catalog (plant.toml), exactly as written there;
* ``failure_time`` — when the equipment failed: ISO-8601 **with** a zone (``Z`` or an offset such
  as ``-04:00``; a time without a zone is refused, it is ambiguous) or epoch seconds;
* ``failure_mode`` — free text (bearing failure, seal leak, fouling, ...);
* ``repair_end`` — optional, when it was back in service (same formats); empty when unknown.

Header names are matched without regard to case or surrounding spaces, a UTF-8 byte-order mark
(spreadsheet exports) is ignored, a header with ``;`` and no ``,`` is read as semicolon
separated, and other columns (work-order number, notes) are ignored and listed. Row numbers
count the header as row 1, as a spreadsheet shows them. A row is refused for: an unknown
equipment id, an unparseable or implausible time, a repair end before the failure, a failure
in the future, the same failure twice (same equipment and failure time), or a failure that
falls inside the repair of another record of the same equipment.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

EQUIPMENT_ID = "equipment_id"
FAILURE_TIME = "failure_time"
FAILURE_MODE = "failure_mode"
REPAIR_END = "repair_end"
REQUIRED_COLUMNS = (EQUIPMENT_ID, FAILURE_TIME, FAILURE_MODE)
COLUMNS = REQUIRED_COLUMNS + (REPAIR_END,)
HEADER_ROW = 1
# Times outside these bounds are refused as implausible (a date typed without separators,
# 20260304, is a valid number of epoch seconds in 1970; milliseconds land past 2100).
EARLIEST_S = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
LATEST_S = datetime(2100, 1, 1, tzinfo=UTC).timestamp()
MAX_MODE_CHARS = 200
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class FailureRecord:
    """One failure of one equipment (times in epoch seconds)."""

    equipment_id: str
    failure_s: float
    failure_mode: str
    repair_end_s: float | None = None
    row: int = 0  # where it came from in its file (0: not from a file)

    def key(self) -> tuple[str, float]:
        """What makes two records the same failure."""
        return (self.equipment_id, self.failure_s)


@dataclass(frozen=True)
class Problem:
    """What is wrong with one field of one row."""

    row: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, {self.field}: {self.message}"


@dataclass
class Parsed:
    """The good records and every problem found (a row may have several)."""

    records: list[FailureRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    rows: int = 0  # data rows read (blank rows not counted)
    ignored_columns: tuple[str, ...] = ()

    @property
    def bad_rows(self) -> list[int]:
        return sorted({p.row for p in self.problems if p.row > HEADER_ROW})

    @property
    def header_ok(self) -> bool:
        return not any(p.row == HEADER_ROW for p in self.problems)


def iso(epoch_s: float) -> str:
    """An epoch time as ISO-8601 UTC (``2026-03-04T10:15:00Z``), for messages and listings."""
    when = datetime.fromtimestamp(epoch_s, UTC)
    text = when.isoformat(timespec="milliseconds" if epoch_s % 1 else "seconds")
    return text.replace("+00:00", "Z")


def parse_time(text: str) -> float:
    """ISO-8601 with a zone, or epoch seconds, as epoch seconds; ValueError says what is wrong."""
    text = text.strip()
    if not text:
        raise ValueError("empty")
    if _NUMBER.match(text):
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(f"'{text}' is not a time")
        if value > LATEST_S and EARLIEST_S * 1000 <= value < LATEST_S * 1000:
            raise ValueError(f"'{text}' looks like epoch milliseconds; give epoch seconds")
        if not EARLIEST_S <= value < LATEST_S:
            raise ValueError(f"epoch seconds {text} is {_plain_date(value)}, outside 2000-2099 "
                             "(give ISO-8601 such as 2026-03-04T06:15:00-04:00, or epoch seconds)")
        return value
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{text}' is neither ISO-8601 (2026-03-04T06:15:00-04:00) "
                         "nor epoch seconds") from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"'{text}' has no time zone; add Z (UTC) or an offset such as -04:00")
    value = when.timestamp()
    if not EARLIEST_S <= value < LATEST_S:
        raise ValueError(f"'{text}' is outside 2000-2099")
    return value


def _plain_date(value: float) -> str:
    try:
        return datetime.fromtimestamp(value, UTC).date().isoformat()
    except (OverflowError, OSError, ValueError):
        return "out of any calendar"


def _delimiter(first_line: str) -> str:
    return ";" if ";" in first_line and "," not in first_line else ","


def _unknown_equipment(equipment_id: str, known: Sequence[str]) -> str:
    message = f"unknown equipment id '{equipment_id}' (not in the plant catalog)"
    folded = {k.casefold(): k for k in known}
    close = folded.get(equipment_id.casefold()) or next(
        iter(difflib.get_close_matches(equipment_id, known, n=1, cutoff=0.75)), None)
    return message + (f"; did you mean {close}?" if close else "")


def parse_records(text: str, equipment: Mapping[str, str], now_s: float | None = None) -> Parsed:
    """Read a record file's text; ``equipment`` is the plant's equipment id -> type.

    Every row is checked and every problem reported; ``records`` holds the rows without any
    problem (the caller decides whether a file with problems is imported at all). ``now_s``
    given, failures after it are refused.
    """
    out = Parsed()
    text = text.removeprefix("\ufeff")
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text), delimiter=_delimiter(first_line))
    try:
        header = next(reader)
    except StopIteration:
        out.problems.append(Problem(HEADER_ROW, "header", f"the file is empty; the first row names "
                                    f"the columns: {','.join(COLUMNS)}"))
        return out
    names = [h.strip().lower().replace(" ", "_") for h in header]
    position: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in COLUMNS:
            if name in position:
                out.problems.append(Problem(HEADER_ROW, name, f"column '{name}' appears twice"))
            position.setdefault(name, i)
    for name in REQUIRED_COLUMNS:
        if name not in position:
            out.problems.append(Problem(HEADER_ROW, name, f"missing column '{name}' (the header "
                                        f"needs {', '.join(REQUIRED_COLUMNS)}, optionally {REPAIR_END}; "
                                        f"found: {', '.join(h for h in header if h.strip()) or 'nothing'})"))
    out.ignored_columns = tuple(h.strip() for h, n in zip(header, names, strict=True)
                                if n not in COLUMNS and h.strip())
    if not out.header_ok:
        return out
    known = sorted(equipment)
    good: list[FailureRecord] = []
    for row_number, row in enumerate(reader, start=HEADER_ROW + 1):
        if not any(cell.strip() for cell in row):
            continue
        out.rows += 1
        record, problems = _parse_row(row_number, row, position, len(header), equipment, known, now_s)
        out.problems.extend(problems)
        if record is not None:
            good.append(record)
    out.problems.extend(_conflicts(good))
    bad = {p.row for p in out.problems}
    out.records = [r for r in good if r.row not in bad]
    out.problems.sort(key=lambda p: (p.row, COLUMNS.index(p.field) if p.field in COLUMNS else -1))
    return out


def _parse_row(row_number: int, row: list[str], position: Mapping[str, int], width: int,
               equipment: Mapping[str, str], known: Sequence[str],
               now_s: float | None) -> tuple[FailureRecord | None, list[Problem]]:
    problems: list[Problem] = []

    def cell(name: str) -> str:
        i = position.get(name)
        return row[i].strip() if i is not None and i < len(row) else ""

    if len(row) > width:
        problems.append(Problem(row_number, "row", f"{len(row)} fields but the header has {width} "
                                "(a comma inside a field needs the field in double quotes)"))
    equipment_id = cell(EQUIPMENT_ID)
    if not equipment_id:
        problems.append(Problem(row_number, EQUIPMENT_ID, "empty"))
    elif equipment_id not in equipment:
        problems.append(Problem(row_number, EQUIPMENT_ID, _unknown_equipment(equipment_id, known)))
    failure_s = repair_s = None
    try:
        failure_s = parse_time(cell(FAILURE_TIME))
    except ValueError as exc:
        problems.append(Problem(row_number, FAILURE_TIME, str(exc)))
    if failure_s is not None and now_s is not None and failure_s > now_s:
        problems.append(Problem(row_number, FAILURE_TIME, f"{iso(failure_s)} is in the future "
                                f"(now is {iso(now_s)}); check the time zone"))
    mode = " ".join(cell(FAILURE_MODE).split())
    if not mode:
        problems.append(Problem(row_number, FAILURE_MODE, "empty (say what failed, e.g. bearing failure)"))
    elif len(mode) > MAX_MODE_CHARS:
        problems.append(Problem(row_number, FAILURE_MODE, f"{len(mode)} characters, at most {MAX_MODE_CHARS}"))
    if cell(REPAIR_END):
        try:
            repair_s = parse_time(cell(REPAIR_END))
        except ValueError as exc:
            problems.append(Problem(row_number, REPAIR_END, str(exc)))
        if repair_s is not None and failure_s is not None and repair_s < failure_s:
            problems.append(Problem(row_number, REPAIR_END, f"{iso(repair_s)} is before the failure "
                                    f"time {iso(failure_s)}"))
    if problems or failure_s is None:
        return None, problems
    return FailureRecord(equipment_id, failure_s, mode, repair_s, row_number), problems


def _conflicts(records: list[FailureRecord]) -> list[Problem]:
    """Duplicates (same equipment and failure time) and failures inside another's repair."""
    problems: list[Problem] = []
    seen: dict[tuple[str, float], FailureRecord] = {}
    for record in records:
        first = seen.setdefault(record.key(), record)
        if first is not record:
            problems.append(Problem(record.row, FAILURE_TIME, f"duplicate record: {record.equipment_id} "
                                    f"at {iso(record.failure_s)} is already on row {first.row}"))
    by_equipment: dict[str, list[FailureRecord]] = {}
    for record in seen.values():
        by_equipment.setdefault(record.equipment_id, []).append(record)
    for items in by_equipment.values():
        items.sort(key=lambda r: r.failure_s)
        for before, after in zip(items, items[1:], strict=False):
            if before.repair_end_s is not None and after.failure_s < before.repair_end_s:
                problems.append(Problem(after.row, FAILURE_TIME, (
                    f"{after.equipment_id} fails at {iso(after.failure_s)}, inside the repair of row "
                    f"{before.row} (failed {iso(before.failure_s)}, repaired {iso(before.repair_end_s)})")))
    return problems


def records_sha256(records: Sequence[FailureRecord]) -> str:
    """SHA-256 of a set of records (order-independent, file rows not included)."""
    digest = hashlib.sha256()
    for r in sorted(records, key=FailureRecord.key):
        digest.update(f"{r.equipment_id}\t{r.failure_s!r}\t{r.failure_mode}\t{r.repair_end_s!r}\n".encode())
    return digest.hexdigest()


def format_csv(records: Sequence[FailureRecord]) -> str:
    """Records as a record file (header and one row each, ISO-8601 UTC times)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in records:
        writer.writerow([r.equipment_id, iso(r.failure_s), r.failure_mode,
                         "" if r.repair_end_s is None else iso(r.repair_end_s)])
    return buffer.getvalue()
