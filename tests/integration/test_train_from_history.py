"""`train --from-history` end to end: simulated plant history in the embedded store, the
simulator's exported failure records imported, models trained and loaded by the daemon's
maintenance side; refusals when there are too few failure events."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import time
from pathlib import Path

import pytest

from analytics.pdm.predict import describe_models
from analytics.pdm.records import parse_records, parse_time
from gateway.settings import load_config
from plant.schema import EquipmentType
from refineryiq.cli import main
from simulator.run import serve
from tests.support.plant_history import simulate_plant_history

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "gateway.toml"
# 1000 simulated hours at 10-minute steps (about 6 s): seed 1 has 4 pump failures and 11 in all.
HOURS = 1000.0
SEED = 1


@pytest.fixture(scope="module")
def plant_state(tmp_path_factory) -> tuple[Path, Path]:
    """A state dir with simulated history and the simulator's record file of its failures."""
    base = tmp_path_factory.mktemp("plant")
    plant = load_config(CONFIG).plant
    history = asyncio.run(simulate_plant_history(base / "state", base / "records.csv", plant, HOURS,
                                                 seed=SEED))
    assert len(history.failures) >= 4
    return base / "state", history.records_path


@pytest.fixture
def state(plant_state, tmp_path, monkeypatch) -> Path:
    """A private copy of the simulated state dir (each test imports its own records)."""
    source, _ = plant_state
    copy = tmp_path / "state"
    copy.mkdir()
    for item in source.iterdir():
        (copy / item.name).write_bytes(item.read_bytes())
    monkeypatch.setenv("REFINERYIQ_STATE_DIR", str(copy))
    return copy


def test_exported_records_import_and_train_models_the_daemon_loads(plant_state, state, capsys):
    _, records = plant_state
    rows = list(csv.DictReader(records.open()))
    pumps = [r for r in rows if r["equipment_id"].startswith("PUMP-")]
    assert len(pumps) >= 4 and {r["failure_mode"] for r in pumps} == {"bearing failure"}
    assert all(parse_time(r["repair_end"]) - parse_time(r["failure_time"]) == 8 * 3600 for r in pumps)

    assert main(["maintenance", "import", str(records)]) == 0
    assert f"{len(rows)} added" in capsys.readouterr().out
    out = state / "models"
    code = main(["train", "--from-history", "--types", "PUMP", "--trees", "20", "--jobs", "1"])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    assert "read history" in captured.err and "PUMP: train" in captured.err  # the progress bars
    assert "failure events" in captured.out and "meets target" in captured.out

    card = json.loads((out / "PUMP.card.json").read_text())
    source = card["source"]
    assert source["kind"] == "plant history"
    assert source["record_files"] == [{"file": str(records.resolve()),
                                       "sha256": hashlib.sha256(records.read_bytes()).hexdigest()}]
    used = [e for e in source["events"] if e["used"]]
    assert len(used) == source["events_used"] == len(pumps)
    # One run per failure event, and no event on both sides of the split.
    failing = {e["run_id"] for e in used}
    train, test = set(card["split"]["train"]), set(card["split"]["test"])
    assert not train & test and failing <= train | test
    assert failing & train and failing & test
    assert isinstance(card["meets_target"], bool) and card["metrics"]["test"]
    models = describe_models(out)
    assert set(models) == {EquipmentType.PUMP}
    assert models[EquipmentType.PUMP].dt_s == 600.0
    assert models[EquipmentType.PUMP].source.startswith("PUMP v")


def test_too_few_recorded_events_are_refused_before_reading_history(plant_state, state, tmp_path, capsys):
    _, records = plant_state
    two = tmp_path / "two.csv"
    lines = records.read_text().splitlines()
    two.write_text("\n".join([lines[0]] + [r for r in lines[1:] if r.startswith("PUMP-")][:2]) + "\n")
    assert main(["maintenance", "import", str(two)]) == 0
    code = main(["train", "--from-history", "--types", "PUMP,VALVE"])
    err = capsys.readouterr().err
    assert code == 1
    assert "PUMP: too few failure events to train: needs 4 (half to train, half to test), has 2 recorded" in err
    assert "VALVE: too few failure events to train: needs 4" in err and "has 0 recorded" in err
    assert not (state / "models").exists()


def test_events_without_enough_history_are_named_in_the_refusal(plant_state, state, capsys):
    _, records = plant_state
    assert main(["maintenance", "import", str(records)]) == 0
    parsed = parse_records(records.read_text(), {"PUMP-101": "PUMP", "PUMP-305": "PUMP"})
    pump_failures = sorted(r.failure_s for r in parsed.records)
    # History cut before the third pump failure: two events are outside it.
    until = str(int(pump_failures[1] + 3600))
    capsys.readouterr()
    code = main(["train", "--from-history", "--until", until])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "PUMP: too few failure events to train: needs 4" in err and "has 2 usable of 4 recorded" in err
    assert "outside the stored history" in err
    assert "refused: no equipment type has enough failure events" in err


async def test_the_live_simulator_writes_a_record_row_when_a_machine_fails(tmp_path):
    path = tmp_path / "live.csv"
    ready = asyncio.Event()
    started = time.time()
    task = asyncio.create_task(serve(seed=3, speed=3600.0, synthetic_tags=0, opcua_port=0, modbus_port=0,
                                     plant_path=ROOT / "config" / "plant.toml", scenario="pump-bearing-wear",
                                     on_ready=lambda _: ready.set(), records_out=path))
    try:
        await asyncio.wait_for(ready.wait(), 30)
        for _ in range(300):  # the pump fails after about a simulated hour (about 1 s of wall time)
            if path.exists() and "PUMP-101" in path.read_text():
                break
            await asyncio.sleep(0.1)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    parsed = parse_records(path.read_text(), {e.id: e.type for e in load_config(CONFIG).plant.equipment},
                           now_s=time.time() + 1)
    assert parsed.problems == []
    pump = next(r for r in parsed.records if r.equipment_id == "PUMP-101")
    assert pump.failure_mode == "bearing failure"
    assert started - 1 <= pump.failure_s <= time.time() + 1  # on the wall clock of the values
    # 8 h of simulated repair at 3600x is 8 s of wall time.
    assert pump.repair_end_s == pytest.approx(pump.failure_s + 8.0, abs=1.0)


@pytest.mark.slow
def test_every_type_trains_on_half_a_year_of_simulated_plant_history(tmp_path, monkeypatch, capsys):
    """5000 simulated hours (about 70 s): every type has 5 to 30 failures; all five train."""
    monkeypatch.setenv("REFINERYIQ_STATE_DIR", str(tmp_path / "state"))
    plant = load_config(CONFIG).plant
    history = asyncio.run(simulate_plant_history(tmp_path / "state", tmp_path / "records.csv", plant,
                                                 5000.0, seed=SEED))
    assert main(["maintenance", "import", str(history.records_path)]) == 0
    assert main(["train", "--from-history", "--trees", "50"]) == 0
    printed = capsys.readouterr().out
    models = describe_models(tmp_path / "state" / "models")
    assert set(models) == set(EquipmentType)
    for kind in EquipmentType:
        card = json.loads((tmp_path / "state" / "models" / f"{kind.value}.card.json").read_text())
        assert card["source"]["events_used"] >= 4 and card["metrics"]["test"]["events"]["failures"] >= 2
        assert kind.value in printed
