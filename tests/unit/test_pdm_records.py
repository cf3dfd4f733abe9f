"""Failure record files: every bad row is named with its row number, column and the problem;
and a machine's history cut at its records into training runs."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from analytics.pdm.features import Scaling
from analytics.pdm.history_dataset import DEFAULT_DOWN_H, EquipmentHistory, label_history, point_sample
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


# -- labelling a machine's history by its records (analytics.pdm.history_dataset) ----------

H = 3600.0


def _history(hours: float, gaps: tuple[tuple[float, float], ...] = ()) -> EquipmentHistory:
    t = T0 + np.arange(0.0, hours * H + 1, 600.0)
    covered = np.ones(len(t), dtype=bool)
    for a, b in gaps:
        covered[(t >= T0 + a * H) & (t < T0 + b * H)] = False
    return EquipmentHistory("PUMP-101", t, np.column_stack([np.arange(len(t), dtype=float)] * 2), covered,
                            Scaling(np.zeros(2), np.ones(2)))


def _failure(at_h: float, repair_h: float | None = None, row: int = 2) -> FailureRecord:
    return FailureRecord("PUMP-101", T0 + at_h * H, "bearing failure",
                         None if repair_h is None else T0 + repair_h * H, row)


def test_history_is_cut_at_each_failure_and_the_repair_is_left_out():
    out = label_history(_history(400.0), [_failure(150.0, 160.0), _failure(300.0)], 7,
                        min_history_h=100.0, healthy_before_h=50.0)
    first, second = out.runs
    assert (first.run_id, second.run_id) == (7, 8)
    assert first.time_s[0] == T0 and first.time_s[-1] == T0 + 150 * H and first.failure_time_s == T0 + 150 * H
    assert second.time_s[0] == T0 + 160 * H and second.time_s[-1] == T0 + 300 * H  # after the repair end
    assert second.wear_onset_s == T0 + 250 * H
    assert [e.used for e in out.events] == [True, True]
    # Without a repair end the machine is taken down for DEFAULT_DOWN_H; the tail after that
    # is censored (no healthy run without censored_cut_h).
    assert out.censored_h == pytest.approx(400.0 - 300.0 - DEFAULT_DOWN_H)


def test_a_gap_cuts_the_run_and_a_short_run_is_skipped_with_its_reason():
    out = label_history(_history(400.0, gaps=((100.0, 120.0),)), [_failure(200.0), _failure(-5.0, row=3)], 0,
                        min_history_h=100.0, healthy_before_h=50.0)
    assert out.runs == []
    short = next(e for e in out.events if e.failure_s == T0 + 200 * H)
    assert not short.used and short.history_h == pytest.approx(80.0)
    assert "only 80.0 h of history before the failure (a gap in the signals cut it), needs 100 h" in short.reason
    outside = next(e for e in out.events if e.failure_s == T0 - 5 * H)
    assert "outside the stored history" in outside.reason
    assert out.gap_h == pytest.approx(20.0)


def test_the_censored_tail_becomes_a_healthy_run_less_the_horizon():
    out = label_history(_history(400.0), [_failure(100.0, 110.0)], 0, min_history_h=50.0,
                        healthy_before_h=50.0, censored_cut_h=60.0)
    failing, healthy = out.failing_runs, out.healthy_runs
    assert len(failing) == 1 and len(healthy) == 1 and healthy[0].run_id == 1
    assert healthy[0].time_s[0] == T0 + 110 * H and healthy[0].time_s[-1] == T0 + 340 * H
    assert np.isinf(healthy[0].failure_time_s)
    assert out.healthy_h == pytest.approx(230.0) and out.censored_h == pytest.approx(60.0)


def test_point_sampling_marks_grid_times_without_a_fresh_sample():
    grid = np.array([0.0, 10.0, 20.0, 30.0, 40.0])
    values, fresh = point_sample(grid, np.array([5.0, 9.0, 31.0]), np.array([1.0, 2.0, 3.0]), max_age_s=10.0)
    assert np.isnan(values[0]) and list(values[1:]) == [2.0, 2.0, 2.0, 3.0]
    assert list(fresh) == [False, True, False, False, True]
    values, fresh = point_sample(grid[:2], np.array([]), np.array([]), 10.0, prior=(-3.0, 7.0))
    assert list(values) == [7.0, 7.0] and list(fresh) == [True, False]
