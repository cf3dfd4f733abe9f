"""The inventory of supplies (catalysts, chemicals, lubricants, spares): ``inventory.sqlite`` in
the state directory, reached only through :class:`SqliteThread`.

Seeded once from ``config/plant.toml``'s ``[[inventory]]`` items, when the file is new; after
that the file is the truth (the HTTP API edits it; emptying it does not bring the seed back). Each item's status is OK, LOW or
CRITICAL: derived from its quantity against its reorder and critical levels, unless a status
was given explicitly (then kept as given until a later write sends none, which derives it
again). SKUs are unique.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from gateway.runtime.logs import get_logger
from gateway.store.sqlite_thread import SqliteThread
from plant.schema import InventoryItem

log = get_logger("gateway.services.inventory")

SERVICE_NAME = "inventory"
FILE_NAME = "inventory.sqlite"

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS inventory (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        item TEXT NOT NULL,
        sku TEXT NOT NULL UNIQUE,
        quantity REAL NOT NULL,
        unit TEXT NOT NULL,
        location TEXT NOT NULL DEFAULT '',
        category TEXT,
        reorder_level REAL NOT NULL DEFAULT 0,
        critical_level REAL NOT NULL DEFAULT 0,
        status TEXT NOT NULL,
        status_given INTEGER NOT NULL DEFAULT 0,
        last_updated REAL NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value NOT NULL) WITHOUT ROWID",
]
SEEDED_KEY = "seeded_at"
_COLUMNS = ("id", "item", "sku", "quantity", "unit", "location", "category", "reorder_level",
            "critical_level", "status", "status_given", "last_updated")
_EDITABLE = ("item", "sku", "quantity", "unit", "location", "category", "reorder_level",
             "critical_level")


class StockStatus(StrEnum):
    OK = "OK"
    LOW = "LOW"
    CRITICAL = "CRITICAL"


def stock_status(quantity: float, reorder_level: float, critical_level: float) -> StockStatus:
    """CRITICAL at or below the critical level, LOW at or below the reorder level, else OK
    (a level of 0 means none is set)."""
    if critical_level > 0 and quantity <= critical_level:
        return StockStatus.CRITICAL
    if reorder_level > 0 and quantity <= reorder_level:
        return StockStatus.LOW
    return StockStatus.OK


class InventoryError(Exception):
    """A refused inventory change; the message says why."""


class ItemNotFound(InventoryError):
    pass


class DuplicateSku(InventoryError):
    pass


@dataclass(frozen=True, slots=True)
class StockItem:
    """One inventory row."""

    id: int
    item: str
    sku: str
    quantity: float
    unit: str
    location: str
    category: str | None
    reorder_level: float
    critical_level: float
    status: StockStatus
    status_given: bool
    last_updated: float

    @classmethod
    def from_row(cls, row: Iterable[Any]) -> StockItem:
        data = dict(zip(_COLUMNS, row, strict=True))
        data["status"] = StockStatus(data["status"])
        data["status_given"] = bool(data["status_given"])
        return cls(**data)


class InventoryStore:
    """The inventory table: list, get, add, update, delete (all off the event loop)."""

    name = SERVICE_NAME

    def __init__(self, path: Path | None = None, seed: list[InventoryItem] | None = None,
                 clock: Callable[[], float] = time.time):
        self.path = path
        self.seed = list(seed or [])
        self.clock = clock
        self._db: SqliteThread | None = None
        # The daemon is the file's only writer, so the listing is kept until a write changes it:
        # dashboards poll it far more often than anyone edits the inventory.
        self._listing: list[StockItem] | None = None
        self.version = 0  # grows after every committed write (the HTTP API's cache reads it)

    async def open(self, seed: Iterable[InventoryItem] = ()) -> None:
        """Open (creating if needed) and seed with ``seed`` if this file was never seeded."""
        assert self.path is not None
        self._db = SqliteThread(self.path, SCHEMA, durable=True, name="inventory")
        await self._db.open()
        items = list(seed)
        now = self.clock()

        def fill(conn: sqlite3.Connection) -> int:
            seeded = conn.execute("SELECT 1 FROM meta WHERE key = ?", (SEEDED_KEY,)).fetchone()
            if seeded or conn.execute("SELECT count(*) FROM inventory").fetchone()[0]:
                return 0
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (SEEDED_KEY, now))
            for i in items:
                status = stock_status(i.quantity, i.reorder_level, i.critical_level)
                conn.execute(
                    "INSERT INTO inventory (item, sku, quantity, unit, location, reorder_level,"
                    " critical_level, status, status_given, last_updated)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                    (i.item, i.sku, i.quantity, i.unit, i.location, i.reorder_level,
                     i.critical_level, status.value, now))
            return len(items)

        seeded = await self._db.transaction(fill)
        if seeded:
            log.info("inventory seeded from the plant catalog", items=seeded, path=str(self.path))

    async def start(self) -> None:
        """Service start: open ``path``, seeded with ``seed`` (the plant catalog's items)."""
        await self.open(self.seed)

    async def stop(self) -> None:
        await self.close()

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    def _conn(self) -> SqliteThread:
        if self._db is None:
            raise RuntimeError("the inventory store is not open")
        return self._db

    async def list(self) -> list[StockItem]:
        """Every item, by id."""
        if self._listing is None:
            rows = await self._conn().call(lambda conn: conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM inventory ORDER BY id").fetchall())
            self._listing = [StockItem.from_row(r) for r in rows]
        return list(self._listing)

    async def get(self, item_id: int) -> StockItem:
        """One item; ItemNotFound for an unknown id."""
        row = await self._conn().call(lambda conn: conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM inventory WHERE id = ?", (item_id,)).fetchone())
        if row is None:
            raise ItemNotFound(f"no inventory item with id {item_id}")
        return StockItem.from_row(row)

    async def add(self, fields: dict[str, Any], status: StockStatus | None = None) -> StockItem:
        """A new item from ``fields`` (item, sku, quantity, unit and optionally location,
        category, reorder_level, critical_level); DuplicateSku when the SKU exists."""
        values = {"location": "", "category": None, "reorder_level": 0.0, "critical_level": 0.0,
                  **{k: v for k, v in fields.items() if k in _EDITABLE}}
        row = self._with_status(values, status)

        def insert(conn: sqlite3.Connection) -> int:
            names = list(row)
            try:
                cur = conn.execute(
                    f"INSERT INTO inventory ({', '.join(names)}) VALUES "
                    f"({', '.join('?' * len(names))})", [row[n] for n in names])
            except sqlite3.IntegrityError:
                raise DuplicateSku(f"sku '{row['sku']}' already exists") from None
            return int(cur.lastrowid)

        item_id = await self._conn().transaction(insert)
        self._written()
        return await self.get(item_id)

    async def update(self, item_id: int, fields: dict[str, Any],
                     status: StockStatus | None = None) -> StockItem:
        """Change the given fields of an item (status derived again unless given)."""
        current = await self.get(item_id)
        merged = {k: v for k, v in asdict(current).items() if k in _EDITABLE}
        merged.update({k: v for k, v in fields.items() if k in _EDITABLE})
        row = self._with_status(merged, status)

        def write(conn: sqlite3.Connection) -> int:
            names = list(row)
            try:
                cur = conn.execute(
                    f"UPDATE inventory SET {', '.join(f'{n} = ?' for n in names)} WHERE id = ?",
                    [*[row[n] for n in names], item_id])
            except sqlite3.IntegrityError:
                raise DuplicateSku(f"sku '{row['sku']}' already exists") from None
            return cur.rowcount

        changed = await self._conn().transaction(write)
        self._written()
        if not changed:
            raise ItemNotFound(f"no inventory item with id {item_id}")
        return await self.get(item_id)

    async def delete(self, item_id: int) -> StockItem:
        """Remove an item; returns what was removed."""
        current = await self.get(item_id)
        deleted = await self._conn().transaction(lambda conn: conn.execute(
            "DELETE FROM inventory WHERE id = ?", (item_id,)).rowcount)
        self._written()
        if not deleted:
            raise ItemNotFound(f"no inventory item with id {item_id}")
        return current

    def _written(self) -> None:
        self._listing = None
        self.version += 1

    def _with_status(self, values: dict[str, Any], status: StockStatus | None) -> dict[str, Any]:
        derived = stock_status(values["quantity"], values["reorder_level"], values["critical_level"])
        return {**values, "status": (status or derived).value,
                "status_given": int(status is not None), "last_updated": self.clock()}
