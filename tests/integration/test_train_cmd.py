"""`refineryiq train` end to end: simulate a few runs, train, write model and card per type."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from plant.schema import EquipmentType
from refineryiq import train
from refineryiq.train import main

ROOT = Path(__file__).resolve().parents[2]


def test_refineryiq_train_writes_a_model_and_a_card_per_type(tmp_path: Path):
    out = tmp_path / "models"
    done = subprocess.run([sys.executable, "-m", "refineryiq.cli", "train", "--runs", "4", "--dt", "1800",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for kind in EquipmentType:
        assert (out / f"{kind.value}.joblib").is_file()
        card = json.loads((out / f"{kind.value}.card.json").read_text())
        # 4 runs to failure and one healthy machine-month (a quarter of --runs): half of the
        # failing runs are held out, and the healthy one.
        assert card["equipment_type"] == kind.value
        assert card["sizes"]["test_runs"] == 3 and card["sizes"]["test_healthy_runs"] == 1
        assert isinstance(card["meets_target"], bool)
        assert card["metrics"]["test"]["events"]["failures"] == 2
    # Event level first, then the row-level line.
    for kind in EquipmentType:
        event_line = done.stdout.index(f"{kind.value} ") if kind.value in done.stdout else -1
        assert event_line >= 0 and "warned >=" in done.stdout[event_line:].splitlines()[0]
    assert done.stdout.index("warned >=") < done.stdout.index("precision")
    assert "meets target" in done.stdout and "healthy machine-months" in done.stdout


def test_a_type_missing_the_target_is_named_in_the_output(tmp_path: Path, capsys):
    assert main(["--runs", "4", "--dt", "3600", "--types", "VALVE", "--jobs", "1",
                 "--out", str(tmp_path)]) == 0
    card = json.loads((tmp_path / "VALVE.card.json").read_text())
    printed = capsys.readouterr().out
    assert ("WARNING: VALVE misses the target" in printed) == (not card["meets_target"])


def test_train_defaults_to_the_state_dir_of_the_config(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("REFINERYIQ_STATE_DIR", str(tmp_path / "state"))
    assert main(["--runs", "4", "--dt", "3600", "--types", "VALVE", "--jobs", "1"]) == 0
    assert (tmp_path / "state" / "models" / "VALVE.card.json").is_file()


def test_a_background_training_leaves_a_core_for_the_daemon(monkeypatch):
    # python -m refineryiq.train (the daemon's first start) without --jobs: one core stays free.
    for cores, jobs in ((1, 1), (2, 1), (3, 2), (8, train.MAX_JOBS)):
        monkeypatch.setattr(train.os, "cpu_count", lambda cores=cores: cores)
        assert train.background_jobs() == jobs
