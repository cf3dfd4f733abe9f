"""Versioned schema migrations for the historian.

Migrations are SQL files ``migrations/NNNN_name.sql``, one per version for both back-ends.
What differs between back-ends sits in sections: a line ``-- @plain`` or ``-- @timescale``
starts lines for that back-end only, ``-- @end`` returns to lines for both (see
:func:`sql_for_backend`). Each version is applied once, in order, inside its own transaction,
and recorded by number in ``schema_migrations``. One session advisory lock for the whole
database (:data:`DDL_LOCK`) makes concurrent ``migrate()`` calls from several gateways queue
rather than collide, whatever schema each migrates: TimescaleDB keeps one catalog for every
schema, so DDL on hypertables of two schemas at once can fail (``tuple concurrently deleted``).
Re-running is a no-op apart from re-applying the retention policy.

The migrating gateway's identity is visible to the migration SQL as the transaction settings
``refineryiq.gateway_id`` and ``refineryiq.site`` (``current_setting(..., true)``), and an
operator's choice of catalog owner as ``refineryiq.catalog_owner`` (migration 0007 assigns
the rows of an older, single-gateway schema to a gateway).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

from gateway.store.postgres.connection import DDL_LOCK, Executor, acquire
from gateway.store.postgres.policy import DEFAULT_RETENTION, Backend, RetentionPolicy
from gateway.store.postgres.retention import apply_policy

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Before the back-ends shared one file, a version could be a .plain.sql/.timescale.sql pair.
_OLD_PAIR_NAME = re.compile(r"^\d{4}_[a-z0-9_]+\.(plain|timescale)\.sql$")
_SECTION = re.compile(r"^-- @([a-z]+)[ \t]*$")

log = structlog.get_logger(__name__)



class MigrationError(Exception):
    """The database cannot be brought to the current schema (message says why)."""


@dataclass(frozen=True)
class Migration:
    """One schema version: its name and the SQL for the chosen back-end."""

    version: int
    name: str
    sql: str


def sql_for_backend(text: str, backend: Backend, source: Path | str = "<sql>") -> str:
    """The SQL of one migration file for ``backend``: the shared lines and that back-end's
    sections, in file order; the marker lines themselves are left out."""
    backends = {b.value for b in Backend}
    kept: list[str] = []
    section: str | None = None  # None: lines for both back-ends
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        marker = _SECTION.match(line)
        if marker is None:
            if section is None or section == backend.value:
                kept.append(line)
        elif marker[1] == "end":
            if section is None:
                raise MigrationError(f"{source}:{number}: '-- @end' without a section to end")
            section = None
        elif marker[1] in backends:
            section = marker[1]
        else:
            raise MigrationError(f"{source}:{number}: unknown section '-- @{marker[1]}' "
                                 f"(sections are -- @plain, -- @timescale and -- @end)")
    if section is not None:
        raise MigrationError(f"{source}: section '-- @{section}' is not closed by '-- @end'")
    return "".join(kept)


def load_migrations(backend: Backend, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations for ``backend`` in version order (checks that no version is missing)."""
    files: dict[int, tuple[str, Path]] = {}
    for path in sorted(directory.glob("*.sql")):
        if _OLD_PAIR_NAME.match(path.name):
            raise MigrationError(f"{path}: back-end variants are -- @plain / -- @timescale sections "
                                 f"of one NNNN_name.sql file (a left-over from an older release "
                                 f"can be deleted)")
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration file names must look like 0001_name.sql")
        version, name = int(match[1]), match[2]
        if version in files:
            raise MigrationError(f"{path}: version {version} is defined twice")
        files[version] = (name, path)
    migrations = [Migration(version, name, sql_for_backend(path.read_text(encoding="utf-8"), backend, path))
                  for version, (name, path) in sorted(files.items())]
    expected = list(range(1, len(migrations) + 1))
    if [m.version for m in migrations] != expected:
        raise MigrationError(f"migration versions must be 1..{len(migrations)} without gaps")
    return migrations


_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    backend    text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


async def timescale_available(conn: asyncpg.Connection) -> bool:
    """True if the server offers the timescaledb extension (installed or installable)."""
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')"))


async def _recorded_backend(conn: asyncpg.Connection) -> Backend | None:
    value = await conn.fetchval("SELECT backend FROM schema_migrations ORDER BY version LIMIT 1")
    return None if value is None else Backend(value)


async def _create_timescale(conn: asyncpg.Connection) -> str | None:
    """CREATE EXTENSION timescaledb; returns the error text if it cannot be created."""
    try:
        async with conn.transaction():
            await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb SCHEMA public")
    except asyncpg.PostgresError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def _choose_backend(conn: asyncpg.Connection, timescale: bool | None) -> Backend:
    recorded = await _recorded_backend(conn)
    if recorded is not None:
        if timescale is not None and (recorded is Backend.TIMESCALE) != timescale:
            raise MigrationError(f"this schema was created for the {recorded.value} back-end; "
                                 f"switching back-ends needs a data migration")
        if recorded is Backend.TIMESCALE:
            problem = await _create_timescale(conn)
            if problem:
                raise MigrationError(f"the schema uses TimescaleDB but the extension is not usable: {problem}")
        return recorded
    if timescale is False:
        return Backend.PLAIN
    if not await timescale_available(conn):
        if timescale:
            raise MigrationError("timescale=True but the server has no timescaledb extension "
                                 "(pg_available_extensions)")
        return Backend.PLAIN
    problem = await _create_timescale(conn)
    if problem is None:
        return Backend.TIMESCALE
    if timescale:
        raise MigrationError(f"cannot create the timescaledb extension: {problem}")
    log.warning("timescaledb_unusable_using_plain_postgres", error=problem)
    return Backend.PLAIN


async def _current_schema(conn: asyncpg.Connection) -> str:
    schema = await conn.fetchval("SELECT current_schema()")
    if schema is None:
        raise MigrationError("no schema on the search_path exists (create it first, e.g. with "
                             "connection.ensure_schema)")
    return schema


@contextlib.asynccontextmanager
async def ddl_lock(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """Hold the database-wide DDL advisory lock (session level) for the block."""
    await conn.execute("SELECT pg_advisory_lock(hashtext($1))", DDL_LOCK)
    try:
        yield
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", DDL_LOCK)


async def migrate(executor: Executor, *, timescale: bool | None = None,
                  retention: RetentionPolicy = DEFAULT_RETENTION, gateway_id: str | None = None,
                  site: str = "", catalog_owner: str | None = None,
                  upto: int | None = None) -> list[int]:
    """Bring the historian schema up to date; returns the versions applied by this call.

    ``timescale``: None uses TimescaleDB when the extension is available, True requires it,
    False never uses it. A schema keeps the back-end it was created with. ``gateway_id`` and
    ``site``: the migrating gateway, the owner of catalog rows that have none when no gateway
    is registered yet. ``catalog_owner``: the registered gateway that owns the catalog rows of
    a schema that several gateways shared before rows carried a gateway (migration 0007).
    ``upto``: stop after that version (tests of an upgrade from an older schema).
    """
    settings = {"refineryiq.gateway_id": gateway_id or "", "refineryiq.site": site or "",
                "refineryiq.catalog_owner": catalog_owner or ""}
    async with acquire(executor) as conn, ddl_lock(conn):
        schema = await _current_schema(conn)
        await conn.execute(_BOOTSTRAP)
        backend = await _choose_backend(conn, timescale)
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        applied: list[int] = []
        for migration in load_migrations(backend):
            if migration.version in done:
                continue
            if upto is not None and migration.version > upto:
                break
            try:
                async with conn.transaction():
                    for name, value in settings.items():
                        await conn.execute("SELECT set_config($1, $2, true)", name, value)
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, backend) VALUES ($1, $2, $3)",
                        migration.version, migration.name, backend.value)
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"migration {migration.version:04d}_{migration.name} "
                                     f"({backend.value}) failed: {exc}") from exc
            applied.append(migration.version)
            log.info("migration_applied", version=migration.version, name=migration.name,
                     backend=backend.value, schema=schema)
        await apply_policy(conn, backend, retention)
        return applied


async def storage_backend(executor: Executor) -> Backend:
    """The back-end a migrated schema uses."""
    async with acquire(executor) as conn:
        value = await conn.fetchval("SELECT backend FROM storage_settings")
    if value is None:
        raise MigrationError("the historian schema is not migrated (no storage_settings row)")
    return Backend(value)
