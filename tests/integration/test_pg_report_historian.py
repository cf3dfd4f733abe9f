"""Central queries of one historian holding several gateways: the site/gateway filters of the
historian reads and `refineryiq report --historian` end to end, against the real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from drivers.quality import Quality
from gateway.services.reports import PlantDay, plant_zone
from gateway.services.reports.sources import HistorianSources
from gateway.settings import load_config
from gateway.store.embedded import EmbeddedStore
from gateway.store.postgres.reads import UnknownGatewayError, quality_counts, select_gateways
from tests.support.pg import *  # noqa: F403  (fixtures)
from tests.support.pg import TEST_DATABASE_URL, drain, scan

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "gateway.toml"
DAY = date(2026, 1, 1)
SCANS = 6
# gateway id -> (site, index of the plant tag it reports BAD in every other scan)
GATEWAYS = {"cardon-gw1": ("cardon", 0), "cardon-gw2": ("cardon", 1), "amuay-gw1": ("amuay", 2)}

pytestmark = pytest.mark.timeout(180)


def plant_tags(catalog) -> np.ndarray:
    return np.array([i for i, t in enumerate(catalog.tags) if not t.id.startswith("SYN-")],
                    dtype=np.int32)


@pytest.fixture
def plant_day() -> PlantDay:
    return PlantDay.of(DAY, plant_zone(load_config(CONFIG).settings))


@pytest.fixture
async def fleet_schema(catalog, pg_schema, tmp_path, plant_day) -> str:
    """Three gateways of two sites, the same tag ids, each with BAD samples on its own tag."""
    tags = plant_tags(catalog)
    for gateway_id, (site, bad_tag) in GATEWAYS.items():
        store = EmbeddedStore(tmp_path / f"{gateway_id}.sqlite", retention_s=86_400 * 3650,
                              max_bytes=1_000_000_000, forwarding=True)
        await store.open()
        try:
            for j in range(SCANS):
                quality = np.full(len(tags), Quality.GOOD, dtype=np.uint8)
                if j % 2:
                    quality[bad_tag] = Quality.BAD
                await store.append(scan(tags, plant_day.start + 3600.0 * (j + 1),
                                        np.arange(len(tags), dtype=float) + j, quality))
            await drain(store, catalog, pg_schema, batch_rows=len(tags) * 2,
                        gateway_id=gateway_id, site=site)
        finally:
            await store.close()
    return pg_schema


async def test_quality_counts_read_only_the_chosen_gateways_rows(catalog, fleet_schema, pg_conn,
                                                                 plant_day):
    tags = plant_tags(catalog)
    for gateway_id, (_, bad_tag) in GATEWAYS.items():
        counts = await quality_counts(pg_conn, plant_day.start, plant_day.end,
                                      gateway_id=gateway_id)
        assert set(counts) == {catalog.tags[i].id for i in tags}
        bad = {tag_id for tag_id, (_, _, n_bad) in counts.items() if n_bad}
        assert bad == {catalog.tags[tags[bad_tag]].id}
        assert counts[catalog.tags[tags[bad_tag]].id] == [SCANS // 2, 0, SCANS // 2]
        assert sum(sum(c) for c in counts.values()) == SCANS * len(tags)
    # The window and the tag list narrow it further.
    first = catalog.tags[tags[0]].id
    two_scans = await quality_counts(pg_conn, plant_day.start, plant_day.start + 3600.0 * 2.5,
                                     gateway_id="cardon-gw1", tag_ids=[first])
    assert two_scans == {first: [1, 0, 1]}
    assert await quality_counts(pg_conn, plant_day.start, plant_day.end,
                                gateway_id="nobody") == {}


async def test_select_gateways_by_site_or_id_and_unknown_ones_list_the_known(fleet_schema,
                                                                             pg_conn):
    by_site = await select_gateways(pg_conn, site="cardon")
    assert [(g.gateway_id, g.site) for g in by_site] == [("cardon-gw1", "cardon"),
                                                         ("cardon-gw2", "cardon")]
    one = await select_gateways(pg_conn, gateway_id="amuay-gw1")
    assert [(g.gateway_id, g.site) for g in one] == [("amuay-gw1", "amuay")]
    assert len(await select_gateways(pg_conn)) == 3
    with pytest.raises(UnknownGatewayError) as err:
        await select_gateways(pg_conn, site="cardon", gateway_id="amuay-gw1")
    assert "gateway 'amuay-gw1' and site 'cardon'" in str(err.value)
    for known in GATEWAYS:
        assert known in str(err.value)
    with pytest.raises(UnknownGatewayError, match="site 'paraguana'"):
        await select_gateways(pg_conn, site="paraguana")


async def test_historian_sources_give_the_day_of_one_gateway(catalog, fleet_schema, plant_day):
    tags = plant_tags(catalog)
    async with HistorianSources(TEST_DATABASE_URL, "cardon-gw2", [t.id for t in catalog.tags],
                                schema=fleet_schema) as sources:
        inputs = await sources.read_day(plant_day, plant_day.end)
    assert inputs.kpis == [] and inputs.transitions == []
    assert {t for t, (_, _, bad) in inputs.quality.items() if bad} == {catalog.tags[tags[1]].id}
    assert not any(t.startswith("SYN-") for t in inputs.quality)


def report(args: list[str], state: Path, schema: str | None, url: str | None = TEST_DATABASE_URL,
           gateway_id: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFINERYIQ_")}
    if gateway_id is not None:
        env["REFINERYIQ_GATEWAY_ID"] = gateway_id
    env["REFINERYIQ_STATE_DIR"] = str(state)
    if url is not None:
        env["REFINERYIQ_DATABASE__URL"] = url
    if schema is not None:
        env["REFINERYIQ_DATABASE__SCHEMA"] = schema
    return subprocess.run([sys.executable, "-m", "refineryiq.cli", "report", "--config",
                           str(CONFIG), "--date", DAY.isoformat(), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_report_command_renders_one_gateway_from_the_historian(catalog, fleet_schema, tmp_path):
    tags = plant_tags(catalog)
    out = tmp_path / "gw2.html"
    result = report(["--historian", "--gateway", "cardon-gw2", "--out", str(out)],
                    tmp_path / "state", fleet_schema)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    html = out.read_text()
    assert "cardon-gw2" in html and "cardon-gw1" not in html
    # The non-good table lists this gateway's BAD tag only, not the other gateways'.
    non_good = html.split("Tags with non-good samples", 1)[1]
    assert catalog.tags[tags[1]].id in non_good
    assert catalog.tags[tags[0]].id not in non_good.split("</table>", 1)[0]
    assert catalog.tags[tags[2]].id not in non_good.split("</table>", 1)[0]


def test_report_command_writes_each_gateway_of_a_site(catalog, fleet_schema, tmp_path):
    out = tmp_path / "cardon"
    result = report(["--historian", "--site", "cardon", "--out", str(out)], tmp_path / "state",
                    fleet_schema)
    assert result.returncode == 0, result.stderr
    paths = [Path(p) for p in result.stdout.split()]
    assert [p.parent.name for p in paths] == ["cardon-gw1", "cardon-gw2"]
    for path in paths:
        assert path.parent.parent == out and path.read_text().count(path.parent.name) >= 1


def test_report_command_defaults_to_the_configured_gateway(fleet_schema, tmp_path):
    state = tmp_path / "state"
    result = report(["--historian", "--format", "xlsx"], state, fleet_schema,
                    gateway_id="amuay-gw1")
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path.parent == state / "reports" / "historian" / "amuay-gw1"
    assert path.suffix == ".xlsx" and path.stat().st_size > 0


def test_report_command_refuses_an_unknown_gateway_and_lists_the_known(fleet_schema, tmp_path):
    result = report(["--historian", "--site", "amuay", "--gateway", "cardon-gw1"],
                    tmp_path / "state", fleet_schema)
    assert result.returncode == 1
    assert "no gateway 'cardon-gw1' and site 'amuay'" in result.stderr
    assert "amuay-gw1 (site amuay)" in result.stderr and "cardon-gw2 (site cardon)" in result.stderr
    assert not (tmp_path / "state" / "reports").exists()


def test_report_command_without_a_database_or_historian_says_so(tmp_path):
    result = report(["--historian", "--gateway", "cardon-gw1"], tmp_path / "state", None, url=None)
    assert result.returncode == 2
    assert "no historian database configured" in result.stderr
    result = report(["--gateway", "cardon-gw1"], tmp_path / "state", None, url=None)
    assert result.returncode == 2
    assert "add --historian" in result.stderr
