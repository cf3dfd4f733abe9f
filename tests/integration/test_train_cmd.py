"""`refineryiq train` end to end: simulate a few runs, train, write model and card per type."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.train import main


def test_train_writes_a_model_and_a_card_per_type(tmp_path: Path, capsys):
    out = tmp_path / "models"
    code = main(["--runs", "4", "--dt", "3600", "--types", "PUMP,EXCHANGER", "--seed", "5",
                 "--jobs", "1", "--out", str(out)])
    assert code == 0
    for kind in ("PUMP", "EXCHANGER"):
        assert (out / f"{kind}.joblib").is_file()
        card = json.loads((out / f"{kind}.card.json").read_text())
        assert card["equipment_type"] == kind and card["seed"] == 5
        assert card["sizes"]["test_runs"] == 1
    printed = capsys.readouterr().out
    assert "PUMP" in printed and "precision" in printed


def test_train_defaults_to_the_state_dir_of_the_config(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("REFINERYIQ_STATE_DIR", str(tmp_path / "state"))
    assert main(["--runs", "3", "--dt", "3600", "--types", "VALVE", "--jobs", "1"]) == 0
    assert (tmp_path / "state" / "models" / "VALVE.card.json").is_file()
