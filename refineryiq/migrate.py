"""`refineryiq migrate`: create or upgrade the historian schema and load the plant catalog."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from gateway.runtime.exit_codes import EXIT_CONFIG, EXIT_ERROR, EXIT_OK, report_config_error
from gateway.settings import DEFAULT_CONFIG, load_config
from plant.catalog import Catalog
from plant.errors import ConfigError


async def _migrate(config) -> list[int]:
    from gateway.services.historian import retention_policy
    from gateway.store.postgres import connect, migrate, sync_catalog

    db = config.settings.database
    conn = await connect(db.url.get_secret_value(), schema=db.schema_name)
    try:
        applied = await migrate(conn, timescale=db.timescale, retention=retention_policy(db))
        await sync_catalog(conn, Catalog.build(config.plant), gateway_id=config.settings.gateway_id,
                           site=config.settings.site)
        return applied
    finally:
        await conn.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="refineryiq migrate",
                                     description="create or upgrade the historian schema")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return report_config_error(exc)
    if config.settings.database.url is None:
        print(f"{args.config}: database.url is not set (or REFINERYIQ_DATABASE__URL); "
              "nothing to migrate", file=sys.stderr)
        return EXIT_CONFIG
    try:
        applied = asyncio.run(_migrate(config))
    except Exception as exc:
        print(f"refineryiq migrate: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"migrations applied: {applied or 'none (schema is up to date)'}; catalog synchronised")
    return EXIT_OK
