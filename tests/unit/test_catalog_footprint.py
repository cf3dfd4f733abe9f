"""The synthetic tags share their per-instance bookkeeping but stay ordinary, validated tags;
the logging module does not load `rich`."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from plant.catalog import SYNTHETIC_BASE_REGISTER, Catalog, synthetic_tag
from plant.schema import Tag
from tests.support.daemon import ROOT


def test_synthetic_tags_share_fields_sets_and_hints_but_keep_their_values():
    a, b = synthetic_tag(0), synthetic_tag(1)
    assert a.model_fields_set is b.model_fields_set
    assert a.modbus.model_fields_set is b.modbus.model_fields_set
    assert a.opcua.model_fields_set is b.opcua.model_fields_set
    assert a.sim is b.sim and a.sim == {}
    assert (a.id, b.id) == ("SYN-00001", "SYN-00002")
    assert (a.modbus.address, b.modbus.address) == (SYNTHETIC_BASE_REGISTER, SYNTHETIC_BASE_REGISTER + 1)
    assert b.opcua.node_id == "ns=2;s=SYN-00002"
    # the same tag as one validated from its fields, and still frozen
    again = Tag.model_validate(b.model_dump(exclude_unset=True))
    assert again == b and again.model_fields_set == b.model_fields_set
    with pytest.raises(ValidationError):
        b.name = "changed"


def test_copy_with_update_does_not_touch_the_shared_fields_set():
    a, b = synthetic_tag(0), synthetic_tag(1)
    shared = set(a.model_fields_set)
    c = a.model_copy(update={"description": "x"})
    assert "description" in c.model_fields_set
    assert a.model_fields_set == shared and b.model_fields_set == shared


def test_catalog_of_synthetic_tags_indexes_them(tmp_path):
    from plant.load import load_plant

    plant = load_plant(ROOT / "config" / "plant.toml")
    catalog = Catalog.build(plant, synthetic_tags=3)
    assert len(catalog) == len(plant.tags) + 3
    assert catalog.tag("SYN-00003").modbus.address == SYNTHETIC_BASE_REGISTER + 2


def test_logging_does_not_import_rich_and_rich_stays_importable():
    code = ("import sys, gateway.runtime.logs as logs; logs.configure('info', 'console');"
            "assert sys.modules['structlog.dev'].rich is None;"
            "assert not any(m == 'rich' or m.startswith('rich.') for m in sys.modules), 'rich loaded';"
            "import rich; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_synthetic_tags_store_field_values_only_their_names_are_shared():
    import sys as _sys

    a, b = synthetic_tag(0), synthetic_tag(1)
    for x, y in ((a, b), (a.modbus, b.modbus), (a.opcua, b.opcua)):
        assert _sys.getsizeof(x.__dict__) < _sys.getsizeof(dict(x.__dict__))
        assert list(x.__dict__) == list(y.__dict__) == list(type(x).model_fields)
    assert a == Tag.model_validate(a.model_dump(exclude_unset=True))
    assert a.model_copy(update={"name": "renamed"}).name == "renamed" and a.name == "Synthetic 1"
