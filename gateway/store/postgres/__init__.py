"""The PostgreSQL/TimescaleDB historian: migrations, the store-and-forward writer, reads.

``migrate`` creates or upgrades the schema (TimescaleDB hypertables, compression, retention
and continuous aggregates when the extension is present; native daily partitions and
rollup tables when not). ``DatabaseWriter`` drains the embedded store into it exactly once
(binary COPY guarded by the forwarding cursor) and, in ``run_maintenance``, folds new rows
into the latest-value table and rollups (``fold_new_chunks``); ``DatabaseReads`` answers
latest/history of one gateway with the embedded store's types, and ``fleet_latest`` the
latest values across the gateways of one historian, by site and gateway. Every row names its
gateway (catalog rows included, migration 0007), so many gateways share one database.
"""

from gateway.store.postgres.catalog_sync import GatewayIdentityError, SyncReport, sync_catalog
from gateway.store.postgres.connection import connect, create_pool, ensure_schema
from gateway.store.postgres.derived import FoldReport, fold_new_chunks
from gateway.store.postgres.migrate import MigrationError, migrate, storage_backend
from gateway.store.postgres.policy import Backend, RetentionPolicy
from gateway.store.postgres.reads import (
    DatabaseReads,
    FleetValue,
    Resolution,
    ResolutionPolicy,
    fleet_latest,
)
from gateway.store.postgres.retention import MaintenanceReport, maintain
from gateway.store.postgres.writer import DatabaseWriter, WriterState, WriterStats

__all__ = [
    "Backend", "DatabaseReads", "DatabaseWriter", "FoldReport", "GatewayIdentityError", "MaintenanceReport",
    "FleetValue", "MigrationError", "fleet_latest", "fold_new_chunks",
    "Resolution", "ResolutionPolicy", "RetentionPolicy", "SyncReport", "WriterState",
    "WriterStats", "connect", "create_pool", "ensure_schema", "maintain", "migrate",
    "storage_backend", "sync_catalog",
]
