"""The compiled tag catalog: every tag gets a dense index, limits become numpy columns.

A Batch refers to tags by these indices, so analytics work on whole columns at once. The
simulator and the gateway both build the catalog from `config/plant.toml` (plus the same
synthetic tags for benchmarks), so they agree on addresses by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel

from plant.devices import ScanGroup
from plant.schema import ByteOrder, DataType, ModbusAddress, ModbusTable, OpcUaAddress, Plant, Tag, TagType

OPCUA_NAMESPACE_URI = "urn:refineryiq:plant"
# Synthetic tags (benchmarks, `simulate --tags N`) live above the plant's own register map.
SYNTHETIC_PREFIX = "SYN-"
SYNTHETIC_BASE_REGISTER = 20000


def _share(model: BaseModel, fields_set: dict[frozenset[str], set[str]]) -> None:
    """Point ``model``'s set of explicitly given field names at one set shared by every model
    with the same names. Pydantic keeps a set per instance (some 700 bytes for a tag); the
    models are frozen, so nothing changes it after validation."""
    names = frozenset(model.model_fields_set)
    object.__setattr__(model, "__pydantic_fields_set__", fields_set.setdefault(names, set(names)))


def _share_keys(model: BaseModel) -> None:
    """Give ``model`` a key-sharing ("split") ``__dict__``: CPython stores the field names once
    per class and only the values per instance (a tag's 25 fields: 832 -> 296 bytes). Pydantic
    builds an ordinary dict per instance; any dict is accepted, and a split dict behaves as one
    in every respect (it becomes an ordinary dict again if a key is ever added)."""
    holder = _KEY_SHARING.get(type(model))
    if holder is None:
        holder = _KEY_SHARING[type(model)] = type(f"_{type(model).__name__}Fields", (), {})
    fields = holder()
    for name, value in model.__dict__.items():  # always in field order: the keys are shared
        setattr(fields, name, value)
    object.__setattr__(model, "__dict__", fields.__dict__)


# Shared by the synthetic tags: their fields-set objects and their empty simulator hints (read
# only: the simulator looks hints up, nothing writes them), and per model class the plain class
# whose instances' dicts share their keys.
_SYNTHETIC_FIELDS_SETS: dict[frozenset[str], set[str]] = {}
_NO_SIM_HINTS: dict[str, Any] = {}
_KEY_SHARING: dict[type, type] = {}


def synthetic_tag(n: int) -> Tag:
    """The n-th synthetic tag (0-based): int16 with scale 0.01 at a fixed register.

    Validated like any tag; 10,000 of them are kept for the daemon's lifetime, so the per-tag
    bookkeeping that cannot differ between them (pydantic's fields set, the empty ``sim``
    dict, the field names of each model's ``__dict__``) is shared instead of copied
    (3.5 KB -> about 1 KB a tag).
    """
    tag = _synthetic_tag(n)
    tag.__dict__["sim"] = _NO_SIM_HINTS
    for model in (tag, tag.modbus, tag.opcua):
        _share(model, _SYNTHETIC_FIELDS_SETS)
        _share_keys(model)
    return tag


def _synthetic_tag(n: int) -> Tag:
    tag_id = f"{SYNTHETIC_PREFIX}{n + 1:05d}"
    return Tag(
        id=tag_id,
        name=f"Synthetic {n + 1}",
        engineering_units="%",
        tag_type=TagType.ANALOG,
        normal_min=20.0,
        normal_max=80.0,
        instrument_min=-300.0,
        instrument_max=300.0,
        opcua=OpcUaAddress(node_id=f"ns=2;s={tag_id}"),
        modbus=ModbusAddress(table=ModbusTable.HOLDING, address=SYNTHETIC_BASE_REGISTER + n,
                             type=DataType.INT16, order=ByteOrder.ABCD, scale=0.01),
    )


def _opt(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


@dataclass(frozen=True)
class Catalog:
    """All tags (plant first, then synthetic) with their limits as float64 columns."""

    plant: Plant
    tags: tuple[Tag, ...]
    index: dict[str, int] = field(repr=False)
    normal_min: np.ndarray = field(repr=False)
    normal_max: np.ndarray = field(repr=False)
    ll: np.ndarray = field(repr=False)  # NaN where not configured
    hh: np.ndarray = field(repr=False)
    instrument_min: np.ndarray = field(repr=False)  # -inf where not configured
    instrument_max: np.ndarray = field(repr=False)

    @classmethod
    def build(cls, plant: Plant, synthetic_tags: int = 0) -> Catalog:
        tags = tuple(plant.tags) + tuple(synthetic_tag(n) for n in range(synthetic_tags))
        inst_min = _opt([t.instrument_min for t in tags])
        inst_max = _opt([t.instrument_max for t in tags])
        inst_min[np.isnan(inst_min)] = -np.inf
        inst_max[np.isnan(inst_max)] = np.inf
        arrays = {
            "normal_min": np.array([t.normal_min for t in tags], dtype=np.float64),
            "normal_max": np.array([t.normal_max for t in tags], dtype=np.float64),
            "ll": _opt([t.ll for t in tags]),
            "hh": _opt([t.hh for t in tags]),
            "instrument_min": inst_min,
            "instrument_max": inst_max,
        }
        for a in arrays.values():
            a.setflags(write=False)
        return cls(plant=plant, tags=tags, index={t.id: i for i, t in enumerate(tags)}, **arrays)

    def __len__(self) -> int:
        return len(self.tags)

    def tag(self, tag_id: str) -> Tag:
        return self.tags[self.index[tag_id]]

    def indices(self, tag_ids: list[str]) -> np.ndarray:
        return np.array([self.index[t] for t in tag_ids], dtype=np.int32)

    def group_tags(self, group: ScanGroup, protocol: str) -> list[Tag]:
        """The tags a scan group reads: its listed tags, its units' tags, synthetic tags.

        Only tags with an address for the device's protocol are included from units and the
        synthetic set (explicitly listed tags were checked by the config cross-check).
        """
        chosen: dict[str, Tag] = {}
        for tag_id in group.tags:
            chosen[tag_id] = self.tag(tag_id)
        units = set(group.units)
        for tag in self.tags:
            synthetic = tag.id.startswith(SYNTHETIC_PREFIX)
            if (synthetic and group.synthetic) or (not synthetic and tag.unit_id in units):
                if getattr(tag, protocol) is not None:
                    chosen.setdefault(tag.id, tag)
        return list(chosen.values())
