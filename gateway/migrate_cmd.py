"""`refineryiq migrate`: create or upgrade the historian schema and load the plant catalog."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from gateway.catalog import Catalog
from gateway.settings import DEFAULT_CONFIG, ConfigError, load_config


async def _migrate(config) -> list[int]:
    from gateway.database_service import retention_policy
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
        print(f"configuration error: {exc.path}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    if config.settings.database.url is None:
        print(f"{args.config}: database.url is not set (or REFINERYIQ_DATABASE__URL); "
              "nothing to migrate", file=sys.stderr)
        return 2
    try:
        applied = asyncio.run(_migrate(config))
    except Exception as exc:
        print(f"refineryiq migrate: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"migrations applied: {applied or 'none (schema is up to date)'}; catalog synchronised")
    return 0
