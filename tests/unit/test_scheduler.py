"""Scan scheduling: drift-free deadlines, overruns counted and skipped ahead."""

from gateway.ingest.scheduler import ScanSchedule


def test_on_time_scans_keep_the_grid_without_drift():
    s = ScanSchedule.starting_at(100.0, 1.0)
    for _ in range(1, 1001):
        s.advance(s.next_due + 0.3)  # every scan takes 0.3 s
    assert s.next_due == 100.0 + 1000
    assert s.overruns == 0 and s.skipped == 0


def test_overrun_skips_missed_deadlines_and_counts_them():
    s = ScanSchedule.starting_at(0.0, 1.0)
    nxt = s.advance(3.5)  # the scan due at 0 finished at 3.5: deadlines 1, 2, 3 were missed
    assert nxt == 4.0
    assert s.overruns == 1
    assert s.skipped == 3


def test_scan_finishing_exactly_on_next_deadline_is_not_an_overrun():
    s = ScanSchedule.starting_at(0.0, 0.1)
    s.advance(0.1)
    assert s.overruns == 0
    assert abs(s.next_due - 0.1) < 1e-12


def test_schedule_never_piles_up_after_a_long_stall():
    s = ScanSchedule.starting_at(0.0, 0.1)
    s.advance(60.0)  # a one-minute stall
    assert s.next_due > 60.0
    assert s.next_due - 60.0 <= 0.1 + 1e-9
    assert s.scans == 1
