"""Failure record files: every bad row is named with its row number, column and the problem."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from analytics.pdm.records import (
    FailureRecord,
    format_csv,
    iso,
    parse_records,
    parse_time,
    records_sha256,
)

EQUIPMENT = {"PUMP-101": "PUMP", "PUMP-305": "PUMP", "VALVE-401": "VALVE", "TOWER-101": "TOWER"}
HEADER = "equipment_id,failure_time,failure_mode,repair_end\n"
T0 = datetime(2026, 3, 4, 10, 15, tzinfo=UTC).timestamp()


def test_good_rows_parse_iso_with_offset_z_and_epoch_seconds():
    parsed = parse_records(HEADER
                           + "PUMP-101,2026-03-04T06:15:00-04:00,bearing failure,2026-03-04T14:30:00-04:00\n"
                           + f"PUMP-305,{T0:.0f},seal  leak,\n"
                           + "VALVE-401,2026-03-04T10:15:00Z,stiction,\n", EQUIPMENT)
    assert parsed.problems == []
    assert [r.failure_s for r in parsed.records] == [T0, T0, T0]
    assert parsed.records[0].repair_end_s == T0 + 8.25 * 3600
    assert parsed.records[1].failure_mode == "seal leak" and parsed.records[1].repair_end_s is None
    assert [r.row for r in parsed.records] == [2, 3, 4]


def test_each_problem_names_row_and_field():
    text = (HEADER
            + "PUMP-999,2026-03-04T06:15:00Z,bearing failure,\n"        # row 2: unknown id
            + "PUMP-101,2026-03-04 06:15,bearing failure,\n"             # row 3: no zone
            + "PUMP-101,yesterday,bearing failure,\n"                    # row 4: unparseable
            + "PUMP-305,2026-03-05T06:00:00Z,seal leak,2026-03-05T05:00:00Z\n"  # row 5: repair before
            + "PUMP-305,2026-03-06T00:00:00Z,,\n"                        # row 6: empty mode
            + "VALVE-401,1772619300000,stiction,\n")                     # row 7: milliseconds
    parsed = parse_records(text, EQUIPMENT)
    got = {(p.row, p.field) for p in parsed.problems}
    assert got == {(2, "equipment_id"), (3, "failure_time"), (4, "failure_time"), (5, "repair_end"),
                   (6, "failure_mode"), (7, "failure_time")}
    messages = {p.row: str(p) for p in parsed.problems}
    assert "unknown equipment id 'PUMP-999'" in messages[2] and messages[2].startswith("row 2, equipment_id")
    assert "no time zone" in messages[3]
    assert "before the failure" in messages[5]
    assert "milliseconds" in messages[7]
    assert parsed.records == [] and parsed.bad_rows == [2, 3, 4, 5, 6, 7]


def test_duplicates_and_failures_inside_a_repair_are_refused_naming_the_other_row():
    text = (HEADER
            + "PUMP-101,2026-03-04T10:15:00Z,bearing failure,2026-03-04T20:00:00Z\n"   # row 2
            + f"PUMP-101,{T0:.0f},bearing failure,\n"                                 # row 3: same failure
            + "PUMP-101,2026-03-04T12:00:00Z,seal leak,\n"                            # row 4: inside repair
            + "PUMP-305,2026-03-04T10:15:00Z,seal leak,\n")                           # row 5: fine
    parsed = parse_records(text, EQUIPMENT)
    by_row = {p.row: p.message for p in parsed.problems}
    assert set(by_row) == {3, 4}
    assert "duplicate record" in by_row[3] and "row 2" in by_row[3]
    assert "inside the repair of row 2" in by_row[4]
    assert [r.row for r in parsed.records] == [2, 5]


def test_a_close_spelling_is_suggested_and_lowercase_ids_are_not_silently_accepted():
    parsed = parse_records(HEADER + "pump-101,2026-03-04T10:15:00Z,bearing failure,\n", EQUIPMENT)
    assert "did you mean PUMP-101?" in parsed.problems[0].message


def test_header_is_checked_first_and_names_the_missing_column():
    parsed = parse_records("equipment,failure_time,failure_mode\nPUMP-101,2026-03-04T10:15:00Z,x\n", EQUIPMENT)
    assert [(p.row, p.field) for p in parsed.problems] == [(1, "equipment_id")]
    assert "missing column 'equipment_id'" in parsed.problems[0].message and not parsed.header_ok
    assert parse_records("", EQUIPMENT).problems[0].field == "header"


def test_spreadsheet_exports_bom_semicolons_case_and_extra_columns_are_read():
    text = ("\ufeffEquipment_ID; Failure_Time ;Failure Mode;Work order\n"
            "PUMP-101;2026-03-04T10:15:00Z;bearing failure;WO-1\n\n")
    parsed = parse_records(text, EQUIPMENT)
    assert parsed.problems == [] and parsed.ignored_columns == ("Work order",)
    assert parsed.records[0].failure_s == T0 and parsed.rows == 1


def test_future_failures_are_refused_when_now_is_given():
    parsed = parse_records(HEADER + "PUMP-101,2026-03-04T10:15:00Z,bearing failure,\n", EQUIPMENT,
                           now_s=T0 - 3600)
    assert "in the future" in parsed.problems[0].message


def test_too_many_fields_is_reported_with_the_quoting_hint():
    parsed = parse_records(HEADER + "PUMP-101,2026-03-04T10:15:00Z,bearing, seal,,\n", EQUIPMENT)
    assert any(p.field == "row" and "double quotes" in p.message for p in parsed.problems)


@pytest.mark.parametrize("text", ["20260304", "nan", "inf", "", "2026-13-01T00:00:00Z"])
def test_implausible_times_are_refused(text):
    with pytest.raises(ValueError):
        parse_time(text)


def test_format_csv_reads_back_to_the_same_records_and_digest():
    records = [FailureRecord("PUMP-101", T0, "bearing failure", T0 + 3600.0, 2),
               FailureRecord("VALVE-401", T0 + 7200.0, "stiction, sticking", None, 3)]
    parsed = parse_records(format_csv(records), EQUIPMENT)
    assert parsed.problems == [] and parsed.records == records
    assert records_sha256(parsed.records) == records_sha256(list(reversed(records)))
    assert iso(T0) == "2026-03-04T10:15:00Z"
