"""The "database" service: forwards the embedded store to the PostgreSQL/TimescaleDB historian.

Started by the daemon when ``database.url`` is set (the embedded store is then opened with
forwarding on, so unforwarded batches survive outages and restarts). Runs the
``DatabaseWriter`` and its maintenance pass under the daemon's supervisor, and reports on
/health: a ``database`` section (state, backlog, lag, rate, last error) and a check that
marks the gateway degraded while the historian is unreachable or falling behind.

Beside the process data it forwards the write journal (``tag_writes``) and, given the state
directory, the gateway's own results: the alarm journal (``alarm_journal`` and ``alerts``),
KPIs (``kpis``), completed energy hours (``energy_analysis``) and maintenance predictions
(``maintenance_predictions``), each from its file there (``gateway.store.postgres.outbound``).
"""

from __future__ import annotations

import functools
from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway.runtime.logs import get_logger
from gateway.services.base import Tasks
from gateway.settings import DatabaseSettings
from gateway.store.postgres.connection import connect
from gateway.store.postgres.outbound import OutboundForwarder
from gateway.store.postgres.outbound_kinds import StateDirKinds
from gateway.store.postgres.policy import RetentionPolicy
from gateway.store.postgres.tag_writes import TagWritesForwarder, TagWriteSource
from gateway.store.postgres.writer import DatabaseWriter, ForwardBuffer, WriterState
from plant.catalog import Catalog

log = get_logger("gateway.services.historian")

SERVICE_NAME = "database"
MAINTENANCE_TASK = "database-maintenance"
TAG_WRITES_TASK = "database-tag-writes"
OUTBOUND_TASK = "database-results"
# Part of the daemon's shutdown deadline spent forwarding the last scans, and the last writes.
FLUSH_TIMEOUT_S = 3.0
TAG_WRITES_FLUSH_TIMEOUT_S = 1.0
TAG_WRITES_CONNECT_TIMEOUT_S = 30.0
OUTBOUND_FLUSH_TIMEOUT_S = 1.0
OUTBOUND_INTERVAL_S = 5.0


def retention_policy(settings: DatabaseSettings) -> RetentionPolicy:
    """The historian's retention tiers from the configuration."""
    return RetentionPolicy(raw_hot=timedelta(days=settings.raw_hot_days),
                           raw_retention=timedelta(days=settings.raw_retention_days),
                           rollup_retention=timedelta(days=settings.rollup_retention_days))


class HistorianService:
    """Store-and-forward to the historian, with its health report."""

    name = SERVICE_NAME

    def __init__(self, settings: DatabaseSettings, store: ForwardBuffer, catalog: Catalog,
                 gateway_id: str, site: str, tasks: Tasks,
                 tag_writes: TagWriteSource | None = None,
                 state_dir: Path | None = None) -> None:
        """``tag_writes``: the write journal, forwarded to the ``tag_writes`` table.
        ``state_dir``: the gateway's state directory, whose alarm journal, analytics results
        and predictions are forwarded (none of them without it)."""
        if settings.url is None:
            raise ValueError("the database service needs database.url")
        self.settings = settings
        self.store = store
        self.catalog = catalog
        self.gateway_id = gateway_id
        self.site = site
        self.tasks = tasks
        self.tag_writes = tag_writes
        self.writer: DatabaseWriter | None = None
        self.forwarder: TagWritesForwarder | None = None
        self.state_dir = None if state_dir is None else Path(state_dir)
        self.outbound_kinds: StateDirKinds | None = None
        self.outbound: OutboundForwarder | None = None

    async def start(self) -> None:
        """Build the writer over the gateway's embedded store and supervise it."""
        s = self.settings
        self.writer = DatabaseWriter(
            s.url.get_secret_value(), self.store, self.catalog, self.gateway_id, s.batch_rows,
            site=self.site, schema=s.schema_name, migrate_on_start=s.migrate_on_start,
            timescale=s.timescale, retention=retention_policy(s),
            fold_interval_s=s.fold_interval_s)
        self.tasks.start(SERVICE_NAME, self.writer.run)
        self.tasks.start(MAINTENANCE_TASK, self.writer.run_maintenance)
        if self.tag_writes is not None:
            self.forwarder = TagWritesForwarder(
                functools.partial(connect, s.url.get_secret_value(), schema=s.schema_name,
                                  timeout=TAG_WRITES_CONNECT_TIMEOUT_S,
                                  command_timeout=TAG_WRITES_CONNECT_TIMEOUT_S),
                self.tag_writes, self.gateway_id, self.site, self.writer.wait_migrated)
            self.tasks.start(TAG_WRITES_TASK, self.forwarder.run)
        if self.state_dir is not None:
            self.outbound_kinds = StateDirKinds.of(self.state_dir)
            self.outbound = OutboundForwarder(
                functools.partial(connect, s.url.get_secret_value(), schema=s.schema_name,
                                  timeout=TAG_WRITES_CONNECT_TIMEOUT_S,
                                  command_timeout=TAG_WRITES_CONNECT_TIMEOUT_S),
                self.outbound_kinds.all(), self.gateway_id, self.site,
                self.writer.wait_catalog_synced, interval_s=OUTBOUND_INTERVAL_S)
            self.tasks.start(OUTBOUND_TASK, self.outbound.run)
        log.info("database forwarding started", gateway_id=self.gateway_id,
                 schema=s.schema_name, batch_rows=s.batch_rows)

    async def stop(self) -> None:
        """Forward the last scans (the supervisor has cancelled the writer by now) within
        FLUSH_TIMEOUT_S; whatever is not committed stays in the embedded store for the next
        start."""
        if self.writer is not None:
            await self.writer.flush(FLUSH_TIMEOUT_S)
        if self.forwarder is not None and self.writer is not None and self.writer.stats.connects:
            await self.forwarder.flush(TAG_WRITES_FLUSH_TIMEOUT_S)
        if self.outbound is not None and self.writer is not None and self.writer.stats.connects:
            await self.outbound.flush(OUTBOUND_FLUSH_TIMEOUT_S)
        if self.outbound_kinds is not None:
            await self.outbound_kinds.close()

    def health(self) -> dict[str, Any]:
        """The /health ``database`` section."""
        if self.writer is None:
            return {"state": WriterState.STARTING.value}
        st = self.writer.stats
        return {
            "state": st.state.value,
            "backend": st.backend,
            "backlog_values": st.backlog_values,
            "backlog_batches": st.backlog_batches,
            "lag_s": round(st.lag_s, 1),
            "values_per_s": round(st.values_per_s, 1),
            "rows_written": st.rows_written,
            "rows_skipped_committed": st.rows_duplicate,
            "rows_unmapped": st.rows_unmapped,
            "chunks_written": st.chunks_written,
            "forwarded_id": st.forwarded_id,
            "connects": st.connects,
            "last_commit_at": st.last_commit_at,
            "last_error": st.last_error,
            "last_error_at": st.last_error_at,
            "rows_folded": st.rows_folded,
            "last_fold_at": st.last_fold_at,
            "maintenance_error": st.maintenance_error,
            "stage_seconds": {"read": round(st.read_s, 3), "encode": round(st.encode_s, 3),
                              "copy": round(st.copy_s, 3), "mark": round(st.mark_s, 3)},
            "tag_writes_forwarded": (None if self.forwarder is None
                                     else self.forwarder.stats.rows_forwarded),
            "tag_writes_error": None if self.forwarder is None else self.forwarder.stats.last_error,
            "results_forwarded": None if self.outbound is None else self.outbound.stats.as_dict(),
            "results_error": None if self.outbound is None else self.outbound.stats.last_error,
        }

    def problem(self) -> str | None:
        """Health check: degraded while the historian is unreachable or lagging."""
        if self.writer is None:
            return None
        st = self.writer.stats
        if st.state is not WriterState.CONNECTED:
            if st.state is WriterState.STARTING and st.last_error is None:
                return None  # first connection still in progress
            return (f"historian {st.state.value} ({st.last_error or 'no error yet'}); "
                    f"{st.backlog_values} values waiting")
        if st.lag_s > self.settings.max_lag_s:
            return f"historian lagging {st.lag_s:.0f} s behind ({st.backlog_values} values waiting)"
        return None
