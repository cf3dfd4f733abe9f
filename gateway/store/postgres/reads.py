"""Reads from the historian with the embedded store's interface and result types.

``latest`` and ``history`` return the same ``LatestValues`` / ``TagHistory`` columns as
``EmbeddedStore``, so the API can serve either. History picks its source by span: raw rows
for short windows, the hourly rollup for medium, the daily rollup for long ones (same tables
or continuous aggregates on both back-ends). Rollup points are the bucket's last good
value at its time, with min/mean/max/count of the bucket's good values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import asyncpg
import numpy as np

from drivers.quality import QUALITY_DTYPE, REASON_DTYPE, Quality, Reason
from gateway.store.history import TagHistory, downsample
from gateway.store.latest import LatestValues
from gateway.store.postgres.connection import Executor, acquire
from plant.catalog import Catalog


class Resolution(StrEnum):
    RAW = "raw"
    HOURLY = "hourly"
    DAILY = "daily"


@dataclass(frozen=True)
class ResolutionPolicy:
    """Longest span served from raw rows, and from the hourly rollup."""

    raw_max_span: timedelta = timedelta(hours=6)
    hourly_max_span: timedelta = timedelta(days=31)

    def choose(self, start: float, end: float) -> Resolution:
        """The resolution for a window [start, end) in epoch seconds."""
        span = timedelta(seconds=max(0.0, end - start))
        if span <= self.raw_max_span:
            return Resolution.RAW
        if span <= self.hourly_max_span:
            return Resolution.HOURLY
        return Resolution.DAILY


def _ts(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


class DatabaseReads:
    """Latest values and history of tags, read from PostgreSQL/TimescaleDB."""

    def __init__(self, executor: Executor, catalog: Catalog, gateway_id: str,
                 policy: ResolutionPolicy | None = None) -> None:
        """``gateway_id``: whose rows are read. Required: one historian holds many gateways,
        and their tag ids overlap (every plant may have a TI-101)."""
        if not gateway_id:
            raise ValueError("DatabaseReads needs the gateway_id whose rows it reads")
        self._executor = executor
        self._catalog = catalog
        self._gateway_id = gateway_id
        self._policy = policy or ResolutionPolicy()
        self._tag_ids = [t.id for t in catalog.tags]

    async def latest(self, tag_indices: np.ndarray | None = None) -> LatestValues:
        """Last stored sample per tag (default: every tag that has one); tags without one:
        NaN, BAD, ``Reason.NOT_READ``. As of the writer's last maintenance fold (at most
        ``database.fold_interval_s`` old): process_data_latest is kept outside the write path."""
        ids = None if tag_indices is None else [self._tag_ids[i] for i in tag_indices]
        async with acquire(self._executor) as conn:
            rows = await conn.fetch(
                """SELECT DISTINCT ON (tag_id) tag_id, extract(epoch FROM time)::float8 AS ts,
                          value, quality, reason
                   FROM process_data_latest
                   WHERE ($1::text[] IS NULL OR tag_id = ANY($1)) AND gateway_id = $2
                   ORDER BY tag_id, time DESC""", ids, self._gateway_id)
        found = {r["tag_id"]: r for r in rows}
        if tag_indices is None:
            tag_indices = np.array(sorted(self._catalog.index[t] for t in found
                                          if t in self._catalog.index), dtype=np.int32)
        n = len(tag_indices)
        out = LatestValues(np.asarray(tag_indices, dtype=np.int32), np.full(n, np.nan),
                           np.full(n, np.nan), np.full(n, Quality.BAD, dtype=QUALITY_DTYPE),
                           np.full(n, Reason.NOT_READ, dtype=REASON_DTYPE))
        for k, index in enumerate(out.tag_index.tolist()):
            row = found.get(self._tag_ids[index])
            if row is not None:
                out.source_ts[k] = row["ts"]
                out.values[k] = np.nan if row["value"] is None else row["value"]
                out.quality[k] = row["quality"]
                out.reason[k] = row["reason"]
        return out

    async def history(self, tag_index: int, start: float, end: float,
                      max_points: int | None = None,
                      resolution: Resolution | None = None) -> TagHistory:
        """Samples of one tag in ``[start, end)`` ordered by time, from the resolution the
        span calls for (or the one given); reduced to ``max_points`` buckets if needed."""
        resolution = resolution or self._policy.choose(start, end)
        tag_id = self._tag_ids[tag_index]
        async with acquire(self._executor) as conn:
            if resolution is Resolution.RAW:
                history = await self._raw(conn, tag_index, tag_id, start, end)
            else:
                history = await self._rollup(conn, tag_index, tag_id, start, end, resolution)
        if max_points is not None and len(history) > max_points:
            if history.downsampled:
                raise ValueError(f"{len(history)} {resolution.value} buckets exceed max_points "
                                 f"{max_points}: ask for a coarser resolution")
            history = downsample(history, start, end, max_points)
        return history

    async def _raw(self, conn: asyncpg.Connection, tag_index: int, tag_id: str, start: float,
                   end: float) -> TagHistory:
        rows = await conn.fetch(
            """SELECT extract(epoch FROM time)::float8, coalesce(value, 'NaN'), quality, reason
               FROM process_data
               WHERE tag_id = $1 AND time >= $2 AND time < $3 AND gateway_id = $4
               ORDER BY time""", tag_id, _ts(start), _ts(end), self._gateway_id)
        cols = np.array([tuple(r) for r in rows], dtype=np.float64).reshape(len(rows), 4)
        return TagHistory(tag_index, cols[:, 0].copy(), cols[:, 1].copy(),
                          cols[:, 2].astype(QUALITY_DTYPE), cols[:, 3].astype(REASON_DTYPE))

    async def _rollup(self, conn: asyncpg.Connection, tag_index: int, tag_id: str, start: float,
                      end: float, resolution: Resolution) -> TagHistory:
        table = f"process_data_{resolution.value}"  # from the enum, never from input
        rows = await conn.fetch(
            f"""SELECT extract(epoch FROM last_time)::float8, value_last, value_min, value_avg,
                       value_max, samples
                FROM {table}
                WHERE tag_id = $1 AND bucket >= $2 AND bucket < $3 AND gateway_id = $4
                ORDER BY bucket""", tag_id, _ts(start), _ts(end), self._gateway_id)
        cols = np.array([tuple(r) for r in rows], dtype=np.float64).reshape(len(rows), 6)
        n = len(rows)
        return TagHistory(tag_index, cols[:, 0].copy(), cols[:, 1].copy(),
                          np.full(n, Quality.GOOD, dtype=QUALITY_DTYPE),
                          np.full(n, Reason.NONE, dtype=REASON_DTYPE), downsampled=True,
                          minimum=cols[:, 2].copy(), mean=cols[:, 3].copy(),
                          maximum=cols[:, 4].copy(), count=cols[:, 5].astype(np.int64))


@dataclass(frozen=True)
class FleetValue:
    """The latest value of one tag of one gateway, with the gateway's site."""

    site: str
    gateway_id: str
    tag_id: str
    ts: float  # epoch seconds
    value: float  # NaN when the device gave no finite reading
    quality: int
    reason: int


async def fleet_latest(executor: Executor, tag_ids: list[str] | None = None, *,
                       site: str | None = None, gateway_id: str | None = None) -> list[FleetValue]:
    """A central query across the gateways of one historian: the latest value of ``tag_ids``
    (default: every tag) of every gateway, or of one ``site`` and/or one ``gateway_id`` only,
    ordered by site, gateway and tag. A tag id names a different instrument in each gateway,
    so every row says whose it is."""
    async with acquire(executor) as conn:
        rows = await conn.fetch(
            """SELECT g.site, l.gateway_id, l.tag_id, extract(epoch FROM l.time)::float8 AS ts,
                      coalesce(l.value, 'NaN') AS value, l.quality, l.reason
               FROM process_data_latest l JOIN gateways g USING (gateway_id)
               WHERE ($1::text[] IS NULL OR l.tag_id = ANY($1))
                 AND ($2::text IS NULL OR g.site = $2)
                 AND ($3::text IS NULL OR l.gateway_id = $3)
               ORDER BY g.site, l.gateway_id, l.tag_id""", tag_ids, site, gateway_id)
    return [FleetValue(r["site"], r["gateway_id"], r["tag_id"], r["ts"], r["value"], r["quality"],
                       r["reason"]) for r in rows]


# ------------------------------------------------------------------ central queries


class UnknownGatewayError(LookupError):
    """A site or gateway id that the historian has no gateway for."""


@dataclass(frozen=True)
class GatewayIdentity:
    """A gateway registered in the historian (its row in ``gateways``)."""

    gateway_id: str
    site: str


async def known_gateways(executor: Executor) -> list[GatewayIdentity]:
    """Every gateway registered in the historian, ordered by site and gateway id."""
    async with acquire(executor) as conn:
        rows = await conn.fetch("SELECT gateway_id, site FROM gateways ORDER BY site, gateway_id")
    return [GatewayIdentity(r["gateway_id"], r["site"]) for r in rows]


async def select_gateways(executor: Executor, *, site: str | None = None,
                          gateway_id: str | None = None) -> list[GatewayIdentity]:
    """The gateways of ``site`` and/or with ``gateway_id`` (None: no condition), ordered by
    site and gateway id. Raises UnknownGatewayError, naming the known gateways, when none
    matches."""
    async with acquire(executor) as conn:
        rows = await conn.fetch(
            """SELECT gateway_id, site FROM gateways
               WHERE ($1::text IS NULL OR site = $1) AND ($2::text IS NULL OR gateway_id = $2)
               ORDER BY site, gateway_id""", site, gateway_id)
    if rows:
        return [GatewayIdentity(r["gateway_id"], r["site"]) for r in rows]
    known = await known_gateways(executor)
    asked = " and ".join(part for part in (
        None if gateway_id is None else f"gateway {gateway_id!r}",
        None if site is None else f"site {site!r}") if part) or "any gateway"
    listed = ", ".join(f"{g.gateway_id} (site {g.site})" for g in known) or "none"
    raise UnknownGatewayError(f"the historian has no {asked}; known gateways: {listed}")


async def quality_counts(executor: Executor, start: float, end: float, *, gateway_id: str,
                         tag_ids: list[str] | None = None) -> dict[str, list[int]]:
    """Good / doubtful / bad samples of each tag of ``gateway_id`` (default every tag; else
    ``tag_ids``) whose time is in ``[start, end)``: the historian's counterpart of the
    embedded store's per-tag quality counts of the daily report."""
    async with acquire(executor) as conn:
        rows = await conn.fetch(
            """SELECT tag_id, count(*) FILTER (WHERE quality >= $5) AS good,
                      count(*) FILTER (WHERE quality >= $6 AND quality < $5) AS doubtful,
                      count(*) FILTER (WHERE quality < $6) AS bad
               FROM process_data
               WHERE gateway_id = $1 AND time >= $2 AND time < $3
                 AND ($4::text[] IS NULL OR tag_id = ANY($4))
               GROUP BY tag_id""", gateway_id, _ts(start), _ts(end), tag_ids,
            int(Quality.GOOD), int(Quality.DOUBTFUL))
    return {r["tag_id"]: [int(r["good"]), int(r["doubtful"]), int(r["bad"])] for r in rows}
