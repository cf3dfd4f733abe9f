"""The analytics results store's ``version``: it moves on with every committed change only."""

from __future__ import annotations

import pytest

from gateway.services.analytics.results import KPIS, AnalyticsStore
from gateway.services.analytics.run import RunRows

DAY_S = 86400.0
T0 = 1_700_000_000.0


@pytest.fixture
async def store(tmp_path):
    s = AnalyticsStore(tmp_path / "analytics.sqlite", retention_s=DAY_S)
    await s.open()
    yield s
    await s.close()


def kpi_row(unit_id: str, ts: float) -> dict:
    return {**dict.fromkeys(KPIS.columns), "unit_id": unit_id, "ts": ts, "status": "OPTIMAL"}


async def test_a_saved_run_moves_the_version_on(store):
    await store.save(RunRows(kpis=[kpi_row("CDU-101", T0)]))
    assert store.version == 1
    await store.save(RunRows(kpis=[kpi_row("CDU-101", T0 + 60)]))
    assert store.version == 2
    assert [r["ts"] for r in await store.kpi_history(T0, "CDU-101")] == [T0, T0 + 60]


async def test_retention_moves_the_version_on_only_when_it_deleted_rows(store):
    await store.save(RunRows(kpis=[kpi_row("CDU-101", T0)]))
    assert await store.enforce_retention(T0 + DAY_S / 2) == 0
    assert store.version == 1
    assert await store.enforce_retention(T0 + 2 * DAY_S) == 1
    assert store.version == 2
