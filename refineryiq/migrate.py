"""`refineryiq migrate`: create or upgrade the historian schema and load the plant catalog.

    refineryiq migrate [--config PATH] [--catalog-owner GATEWAY_ID]

The configured gateway (``gateway_id``, ``site``) is registered and its catalog rows are
upserted. Rows of a schema from before rows carried a gateway (migration 0007) go to the one
registered gateway, or to this one when none is registered; when several gateways shared that
schema, ``--catalog-owner`` says whose catalog the rows are (the others get a copy that their
next start corrects).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from gateway.runtime.exit_codes import EXIT_CONFIG, EXIT_ERROR, EXIT_OK, report_config_error
from gateway.settings import DEFAULT_CONFIG, load_config
from plant.catalog import Catalog
from plant.errors import ConfigError


async def _migrate(config, catalog_owner: str | None = None) -> list[int]:
    from gateway.services.historian import retention_policy
    from gateway.store.postgres import connect, migrate, sync_catalog

    db = config.settings.database
    conn = await connect(db.url.get_secret_value(), schema=db.schema_name)
    try:
        applied = await migrate(conn, timescale=db.timescale, retention=retention_policy(db),
                                gateway_id=config.settings.gateway_id, site=config.settings.site,
                                catalog_owner=catalog_owner)
        await sync_catalog(conn, Catalog.build(config.plant), gateway_id=config.settings.gateway_id,
                           site=config.settings.site)
        return applied
    finally:
        await conn.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="refineryiq migrate",
                                     description="create or upgrade the historian schema")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--catalog-owner", metavar="GATEWAY_ID",
                        help="the registered gateway whose catalog the rows of an older schema "
                             "shared by several gateways are (migration 0007)")
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
        applied = asyncio.run(_migrate(config, args.catalog_owner))
    except Exception as exc:
        print(f"refineryiq migrate: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"migrations applied: {applied or 'none (schema is up to date)'}; catalog synchronised")
    return EXIT_OK
