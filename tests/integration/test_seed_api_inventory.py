"""The inventory store on a real SQLite file: seeding, derived status, unique SKUs."""

from __future__ import annotations

import pytest

from gateway.services.inventory import DuplicateSku, InventoryStore, ItemNotFound, StockStatus, stock_status
from plant.schema import InventoryItem

SEED = [InventoryItem(sku="CAT-ZSM5", item="Catalizador", quantity=1500, unit="kg",
                      reorder_level=500, critical_level=200)]


@pytest.fixture
async def store(tmp_path):
    s = InventoryStore(tmp_path / "inventory.sqlite")
    await s.open(SEED)
    yield s
    await s.close()


def test_status_is_critical_at_the_critical_level_and_low_at_the_reorder_level():
    assert stock_status(200, 500, 200) is StockStatus.CRITICAL
    assert stock_status(500, 500, 200) is StockStatus.LOW
    assert stock_status(501, 500, 200) is StockStatus.OK
    assert stock_status(0, 0, 0) is StockStatus.OK


async def test_an_empty_store_is_seeded_from_the_catalog_once(tmp_path, store):
    await store.delete((await store.list())[0].id)
    await store.close()
    await store.open(SEED)
    assert await store.list() == []


async def test_a_quantity_change_derives_the_status_again(store):
    item = (await store.list())[0]
    changed = await store.update(item.id, {"quantity": 150})
    assert changed.status is StockStatus.CRITICAL and not changed.status_given


async def test_a_duplicate_sku_is_refused(store):
    with pytest.raises(DuplicateSku):
        await store.add({"item": "x", "sku": "CAT-ZSM5", "quantity": 1, "unit": "kg"})


async def test_an_unknown_id_is_not_found(store):
    with pytest.raises(ItemNotFound):
        await store.get(42)


async def test_every_committed_write_moves_the_version_on_and_a_refused_one_does_not(store):
    seeded = (await store.list())[0]
    added = await store.add({"item": "Filtro", "sku": "FLT-1", "quantity": 3, "unit": "pza"})
    assert store.version == 1
    await store.update(added.id, {"quantity": 1})
    assert store.version == 2
    with pytest.raises(DuplicateSku):
        await store.add({"item": "Otro", "sku": seeded.sku, "quantity": 1, "unit": "kg"})
    assert store.version == 2
    await store.delete(added.id)
    assert store.version == 3
