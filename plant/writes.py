"""Which device writes each writable tag, and the configuration problems that prevent it.

A write goes to the device that scans the tag (the gateway reads it back through the same
driver), so a writable tag must be read by exactly one device. The checks need both files,
`config/plant.toml` (the tags) and `config/gateway.toml` (devices and scan groups); the
gateway's configuration loader and `check-config` call :func:`writability_problems`. The
tag's own write settings (limits, addresses that cannot be written) are checked when the
catalog loads (:class:`plant.schema.Tag`).
"""

from __future__ import annotations

from collections.abc import Sequence

from plant.devices import ModbusDevice, OpcUaDevice, ScanGroup
from plant.schema import Plant, Tag


def _scanned_by(tag: Tag, devices: dict[str, OpcUaDevice | ModbusDevice],
                scan_groups: Sequence[ScanGroup]) -> list[str]:
    """Ids of the devices whose scan groups read ``tag`` (each once, in group order)."""
    found: list[str] = []
    for group in scan_groups:
        device = devices.get(group.device)
        if device is None or getattr(tag, device.protocol) is None:
            continue
        if (tag.id in group.tags or tag.unit_id in group.units) and device.id not in found:
            found.append(device.id)
    return found


def write_device_by_tag(devices: Sequence[OpcUaDevice | ModbusDevice], scan_groups: Sequence[ScanGroup],
                        plant: Plant) -> dict[str, str]:
    """For each writable tag read by exactly one device, that device's id (tag id -> device id)."""
    by_id = {d.id: d for d in devices}
    out: dict[str, str] = {}
    for tag in plant.tags:
        if tag.writable:
            found = _scanned_by(tag, by_id, scan_groups)
            if len(found) == 1:
                out[tag.id] = found[0]
    return out


def writability_problems(devices: Sequence[OpcUaDevice | ModbusDevice], scan_groups: Sequence[ScanGroup],
                         plant: Plant) -> list[str]:
    """Problems of writable tags against the devices and scan groups, as "field path: problem"
    in the plant file's paths (``tags.N.writable: ...``); empty when every writable tag has
    exactly one device to be written through."""
    by_id = {d.id: d for d in devices}
    problems: list[str] = []
    for i, tag in enumerate(plant.tags):
        if not tag.writable:
            continue
        found = _scanned_by(tag, by_id, scan_groups)
        if not found:
            problems.append(f"tags.{i}.writable: '{tag.id}' is not read by any scan group, so no device "
                            "can write it or read it back")
        elif len(found) > 1:
            problems.append(f"tags.{i}.writable: '{tag.id}' is read by devices "
                            f"{', '.join(repr(d) for d in found)}; a writable tag must belong to one device")
    return problems
