"""Loading `gateway.toml`: REFINERYIQ_* overrides, *_FILE secrets, the plant catalog it names
(`plant_file`), and the checks of `[[scan_groups]]` that need both files."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationError

from gateway.settings.model import DEFAULT_CONFIG, ENV_PREFIX, Config, GatewaySettings
from plant.errors import ConfigError, validation_problems
from plant.load import load_plant, read_toml
from plant.schema import Plant
from plant.writes import writability_problems


def _secrets_from_files(environ: dict[str, str]) -> dict[str, str]:
    """Resolve REFINERYIQ_X_FILE variables into REFINERYIQ_X (file content, stripped)."""
    resolved = dict(environ)
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX) and key.endswith("_FILE"):
            target = key.removesuffix("_FILE")
            del resolved[key]
            try:
                resolved[target] = Path(value).read_text().strip()
            except OSError as exc:
                raise ConfigError(value, [f"{key}: cannot read secret file: {exc.strerror}"]) from None
    return resolved


def load_config(path: Path | str | None = None, environ: dict[str, str] | None = None) -> Config:
    """Load and validate gateway.toml, the plant catalog it names, and their cross-references."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    data = read_toml(path)
    env = _secrets_from_files(dict(os.environ if environ is None else environ))
    saved = os.environ.copy()
    try:
        os.environ.clear()
        os.environ.update(env)
        settings = GatewaySettings(**data)
    except ValidationError as exc:
        raise ConfigError(path, validation_problems(exc)) from None
    finally:
        os.environ.clear()
        os.environ.update(saved)
    base = path.parent
    state_dir = settings.state_dir if settings.state_dir.is_absolute() else base.parent / settings.state_dir
    if "REFINERYIQ_STATE_DIR" in env:
        state_dir = Path(env["REFINERYIQ_STATE_DIR"])
    plant_path = settings.plant_file if settings.plant_file.is_absolute() else base / settings.plant_file
    settings = settings.model_copy(update={"state_dir": state_dir, "plant_file": plant_path})
    plant = load_plant(plant_path)
    problems = cross_check(settings, plant)
    if problems:
        raise ConfigError(path, problems)
    # Which device writes each writable tag needs both files; the problems name plant.toml paths.
    problems = writability_problems(settings.devices, settings.scan_groups, plant)
    if problems:
        raise ConfigError(plant_path, problems)
    return Config(path=path, settings=settings, plant=plant)


def cross_check(settings: GatewaySettings, plant: Plant) -> list[str]:
    """Checks that need both files: scan groups name known tags and units with addresses."""
    problems: list[str] = []
    tags = {t.id: t for t in plant.tags}
    units = {u.id for u in plant.units}
    devices = {d.id: d for d in settings.devices}
    claimed: dict[tuple[str, str], str] = {}
    for i, group in enumerate(settings.scan_groups):
        device = devices[group.device]
        if group.mode == "subscribe" and device.protocol != "opcua":
            problems.append(f"scan_groups.{i}.mode: 'subscribe' needs an OPC-UA device")
        for j, unit_id in enumerate(group.units):
            if unit_id not in units:
                problems.append(f"scan_groups.{i}.units.{j}: unknown unit '{unit_id}'")
        for j, tag_id in enumerate(group.tags):
            tag = tags.get(tag_id)
            if tag is None:
                problems.append(f"scan_groups.{i}.tags.{j}: unknown tag '{tag_id}'")
            elif getattr(tag, device.protocol) is None:
                problems.append(f"scan_groups.{i}.tags.{j}: tag '{tag_id}' has no {device.protocol} address")
            else:
                other = claimed.setdefault((device.id, tag_id), group.id)
                if other != group.id:
                    problems.append(f"scan_groups.{i}.tags.{j}: tag '{tag_id}' is already scanned by group '{other}'")
    return problems
