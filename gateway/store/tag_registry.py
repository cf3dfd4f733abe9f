"""Stable tag numbering in the embedded store, independent of the catalog's order.

The catalog numbers tags by their position in `plant.toml`; adding or removing a tag renumbers
the rest. Stored Batches must keep meaning the same tags across such edits, so the store keeps
its own append-only numbering (``tag_registry``: store index ↔ tag id) and translates at its
boundary: catalog index → store index on append, store index → catalog index on read. Tags
that left the catalog keep their store index and are skipped on read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import numpy as np

from drivers.batch import Batch

SCHEMA = ("""CREATE TABLE IF NOT EXISTS tag_registry (
    store_index INTEGER PRIMARY KEY,
    tag_id TEXT NOT NULL UNIQUE
)""",)


class TagRegistry:
    """Translation arrays between catalog indices and store indices."""

    def __init__(self, to_store: np.ndarray, to_catalog: np.ndarray):
        self.to_store = to_store  # catalog index -> store index
        self.to_catalog = to_catalog  # store index -> catalog index, -1 when no longer in the catalog
        self.identity = bool(len(to_store) == len(to_catalog)
                             and np.array_equal(to_store, np.arange(len(to_store))))

    @classmethod
    def bind(cls, conn: sqlite3.Connection, tag_ids: Sequence[str]) -> TagRegistry:
        """Number new tag ids after the known ones (inside the caller's transaction)."""
        known = dict(conn.execute("SELECT tag_id, store_index FROM tag_registry").fetchall())
        next_index = max(known.values(), default=-1) + 1
        for tag_id in tag_ids:
            if tag_id not in known:
                conn.execute("INSERT INTO tag_registry (store_index, tag_id) VALUES (?, ?)",
                             (next_index, tag_id))
                known[tag_id] = next_index
                next_index += 1
        to_store = np.array([known[t] for t in tag_ids], dtype=np.int32)
        to_catalog = np.full(next_index, -1, dtype=np.int32)
        to_catalog[to_store] = np.arange(len(tag_ids), dtype=np.int32)
        return cls(to_store, to_catalog)

    def batch_to_store(self, batch: Batch) -> Batch:
        if self.identity:
            return batch
        return _with_index(batch, self.to_store[batch.tag_index])

    def batch_to_catalog(self, batch: Batch) -> Batch | None:
        """The Batch in catalog indices, without tags that left the catalog (None if empty)."""
        if self.identity:
            return batch
        idx = self.lookup_catalog(batch.tag_index)
        keep = idx >= 0
        if keep.all():
            return _with_index(batch, idx)
        if not keep.any():
            return None
        return Batch.build(batch.group, batch.device, batch.scan_start, batch.receive_ts, idx[keep],
                           batch.values[keep], batch.quality[keep], batch.reason[keep],
                           batch.source_ts[keep])

    def lookup_catalog(self, store_index: np.ndarray) -> np.ndarray:
        store_index = np.asarray(store_index, dtype=np.int64)
        out = np.full(len(store_index), -1, dtype=np.int32)
        inside = store_index < len(self.to_catalog)
        out[inside] = self.to_catalog[store_index[inside]]
        return out


def _with_index(batch: Batch, tag_index: np.ndarray) -> Batch:
    return Batch.build(batch.group, batch.device, batch.scan_start, batch.receive_ts, tag_index,
                       batch.values, batch.quality, batch.reason, batch.source_ts)
