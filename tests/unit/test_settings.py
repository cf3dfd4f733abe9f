"""Configuration: the shipped config is valid, broken configs fail naming file and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.settings import load_config
from plant.catalog import Catalog
from plant.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CASES = Path(__file__).parent / "configs"
BROKEN = sorted(p.name for p in CASES.iterdir() if p.is_dir() and not p.name.startswith("_"))


def test_shipped_config_is_valid():
    config = load_config(ROOT / "config/gateway.toml", environ={})
    catalog = Catalog.build(config.plant)
    assert len(catalog) >= 50
    assert {u.id for u in config.plant.units} == {"CDU-101", "FCC-201", "HT-305", "ALK-400"}


def test_seed_tags_keep_their_ids_names_and_ranges():
    plant = load_config(ROOT / "config/gateway.toml", environ={}).plant
    tags = {t.id: t for t in plant.tags}
    assert tags["TI-101"].name == "Temp. Salida Horno CDU-101"
    assert (tags["TI-101"].normal_min, tags["TI-101"].normal_max) == (340, 360)
    assert (tags["FI-402"].normal_min, tags["FI-402"].normal_max) == (4000, 4500)
    assert tags["AI-400"].engineering_units == "%"


@pytest.mark.parametrize("case", BROKEN)
def test_broken_config_names_file_and_field(case):
    expected = (CASES / case / "expected.err").read_text().strip()
    with pytest.raises(ConfigError) as info:
        load_config(CASES / case / "gateway.toml", environ={})
    message = str(info.value)
    assert expected.split(": ", 1)[1] in message
    assert expected.split(":", 1)[0] in info.value.path


def test_environment_overrides_file():
    config = load_config(ROOT / "config/gateway.toml",
                         environ={"REFINERYIQ_HTTP__PORT": "8123", "REFINERYIQ_MQTT__HOST": "broker"})
    assert config.settings.http.port == 8123
    assert config.settings.mqtt.host == "broker"


def test_environment_override_is_validated():
    with pytest.raises(ConfigError, match="http.port"):
        load_config(ROOT / "config/gateway.toml", environ={"REFINERYIQ_HTTP__PORT": "eighty"})


def test_secret_from_file(tmp_path):
    secret = tmp_path / "db-url"
    secret.write_text("postgresql://gw:s3cret@db/plant\n")
    config = load_config(ROOT / "config/gateway.toml",
                         environ={"REFINERYIQ_DATABASE__URL_FILE": str(secret)})
    assert config.settings.database.url.get_secret_value() == "postgresql://gw:s3cret@db/plant"
    assert "s3cret" not in repr(config.settings)


def test_state_dir_from_environment(tmp_path):
    config = load_config(ROOT / "config/gateway.toml", environ={"REFINERYIQ_STATE_DIR": str(tmp_path)})
    assert config.settings.state_dir == tmp_path


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "refineryiq.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_check_config_exits_0_on_shipped_config():
    result = _cli("check-config", "config/gateway.toml")
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_check_config_exits_2_on_corrupted_copy(tmp_path):
    text = (ROOT / "config/gateway.toml").read_text().replace("interval_ms = 1000", "interval_ms = -5", 1)
    broken = tmp_path / "gateway.toml"
    broken.write_text(text.replace('plant_file = "plant.toml"', f'plant_file = "{ROOT}/config/plant.toml"'))
    result = _cli("check-config", str(broken))
    assert result.returncode == 2
    assert str(broken) in result.stderr
    assert "scan_groups.0.interval_ms" in result.stderr


def test_check_config_exits_2_on_file_that_is_not_toml(tmp_path):
    junk = tmp_path / "gateway.toml"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n binary")
    result = _cli("check-config", str(junk))
    assert result.returncode == 2
    assert "not valid TOML" in result.stderr


def test_load_config_refuses_a_writable_tag_that_no_device_scans():
    with pytest.raises(ConfigError) as caught:
        load_config(Path("config/gateway.toml"), environ={"REFINERYIQ_SCAN_GROUPS": "[]"})
    assert caught.value.path.endswith("plant.toml")
    assert any("TIC-101.SP" in p or "writable" in p for p in caught.value.problems)


def test_planning_lead_per_type_keeps_the_defaults_of_types_not_given():
    config = load_config(ROOT / "config/gateway.toml",
                         environ={"REFINERYIQ_MAINTENANCE__PLANNING_LEAD_H": '{"PUMP": 12}'})
    lead = config.settings.maintenance.planning_lead_h
    assert lead["PUMP"] == 12.0 and lead["COMPRESSOR"] == 48.0 and lead["FURNACE"] == 72.0


@pytest.mark.parametrize("value, problem", [('{"PUMP": 0}', "PUMP"), ('{"TURBINE": 5}', "TURBINE")])
def test_a_bad_planning_lead_names_the_field(value, problem):
    with pytest.raises(ConfigError, match="maintenance.planning_lead_h") as info:
        load_config(ROOT / "config/gateway.toml",
                    environ={"REFINERYIQ_MAINTENANCE__PLANNING_LEAD_H": value})
    assert problem in str(info.value)
