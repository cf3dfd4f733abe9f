"""`refineryiq maintenance import/list`: all-or-nothing imports, --skip-bad, idempotent re-import."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.store.maintenance_records import MaintenanceRecords
from refineryiq.cli import main

HEADER = "equipment_id,failure_time,failure_mode,repair_end\n"
GOOD = (HEADER
        + "PUMP-101,2026-03-04T06:15:00-04:00,bearing failure,2026-03-04T14:30:00-04:00\n"
        + "VALVE-401,2026-03-10T00:00:00Z,stiction,\n")


@pytest.fixture
def state(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("REFINERYIQ_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def _records(state: Path):
    with MaintenanceRecords.in_state_dir(state) as db:
        return [s.record for s in db.records()]


def test_import_then_reimport_adds_nothing_and_list_shows_the_records(tmp_path, state, capsys):
    path = tmp_path / "records.csv"
    path.write_text(GOOD)
    assert main(["maintenance", "import", "--dry-run", str(path)]) == 0
    assert "2 good rows, 0 bad (dry run, nothing imported)" in capsys.readouterr().out
    assert not (state / "maintenance.sqlite").exists()
    assert main(["maintenance", "import", str(path)]) == 0
    assert "2 added, 0 updated, 0 already present" in capsys.readouterr().out
    assert main(["maintenance", "import", str(path)]) == 0
    assert "0 added, 0 updated, 2 already present" in capsys.readouterr().out
    assert [r.equipment_id for r in _records(state)] == ["PUMP-101", "VALVE-401"]
    # A corrected file (the valve's repair end filled in) updates that record.
    path.write_text(GOOD.replace("stiction,\n", "stiction,2026-03-10T04:00:00Z\n"))
    assert main(["maintenance", "import", str(path)]) == 0
    assert "0 added, 1 updated, 1 already present" in capsys.readouterr().out
    assert main(["maintenance", "list"]) == 0
    listing = capsys.readouterr().out
    assert "PUMP-101       2026-03-04T10:15:00Z  2026-03-04T18:30:00Z      8.2  bearing failure" in listing
    assert "2 records (PUMP-101 1, VALVE-401 1)" in listing and listing.count("imported ") == 3


def test_a_bad_row_imports_nothing_and_every_problem_is_named(tmp_path, state, capsys):
    path = tmp_path / "records.csv"
    path.write_text(GOOD + "PUMP-999,2026-03-05T00:00:00Z,seal leak,\n"
                    + "PUMP-305,2026-03-05 00:00,seal leak,\n")
    assert main(["maintenance", "import", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: row 4, equipment_id: unknown equipment id 'PUMP-999'" in err
    assert f"{path}: row 5, failure_time:" in err and "no time zone" in err
    assert "2 of 4 rows have problems; nothing imported" in err
    assert not (state / "maintenance.sqlite").exists() or _records(state) == []
    assert main(["maintenance", "import", "--skip-bad", str(path)]) == 0
    captured = capsys.readouterr()
    assert "row 4, equipment_id" in captured.err and "2 added" in captured.out
    assert "2 bad rows skipped" in captured.out and len(_records(state)) == 2


def test_unreadable_and_non_utf8_files_are_reported_not_raised(tmp_path, state, capsys):
    assert main(["maintenance", "import", str(tmp_path / "missing.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err
    path = tmp_path / "latin1.csv"
    path.write_bytes(HEADER.encode() + "PUMP-101,2026-03-04T10:15:00Z,rodamiento dañado,\n".encode("latin-1"))
    assert main(["maintenance", "import", str(path)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_list_without_records_says_how_to_import(state, capsys):
    assert main(["maintenance", "list"]) == 0
    assert "maintenance import FILE" in capsys.readouterr().out
