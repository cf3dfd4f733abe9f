"""The daily report's building blocks: the plant day, the schedule, quality counts read from a
real embedded store, and a report of a state directory without any data."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from openpyxl import load_workbook

from drivers.batch import Batch
from drivers.quality import Quality, Reason
from gateway.services.reports import PlantDay, ReportError, ReportFormat, ReportSources, generate
from gateway.services.reports import sources as sources_module
from gateway.services.reports.service import expired, next_run
from gateway.settings import load_config
from gateway.store.embedded import EmbeddedStore
from plant.catalog import Catalog
from refineryiq.report import parse_day

CARACAS = ZoneInfo("America/Caracas")
CONFIG = Path(__file__).resolve().parents[2] / "config" / "gateway.toml"


def test_a_caracas_plant_day_runs_from_local_midnight_for_24_hours():
    day = PlantDay.of(date(2026, 3, 5), CARACAS)
    assert datetime.fromtimestamp(day.start, UTC) == datetime(2026, 3, 5, 4, 0, tzinfo=UTC)
    assert day.end - day.start == 86400


def test_a_plant_day_spans_25_hours_when_the_clocks_go_back():
    day = PlantDay.of(date(2026, 10, 25), ZoneInfo("Europe/Madrid"))
    assert day.end - day.start == 25 * 3600


def test_the_next_run_is_today_before_the_time_and_tomorrow_after_it():
    morning = datetime(2026, 3, 5, 5, 0, tzinfo=CARACAS).timestamp()
    assert next_run(morning, "06:00", CARACAS) == datetime(2026, 3, 5, 6, 0, tzinfo=CARACAS).timestamp()
    evening = datetime(2026, 3, 5, 6, 0, tzinfo=CARACAS).timestamp()
    assert next_run(evening, "06:00", CARACAS) == datetime(2026, 3, 6, 6, 0, tzinfo=CARACAS).timestamp()


def test_only_report_files_older_than_the_kept_days_expire():
    files = [Path("daily-report-2026-03-01.pdf"), Path("daily-report-2026-03-05.xlsx"),
             Path("notes.txt")]
    assert expired(files, date(2026, 3, 2)) == [files[0]]


def test_the_report_command_reads_iso_dates_today_and_yesterday():
    today = date(2026, 3, 5)
    assert parse_day("yesterday", today) == date(2026, 3, 4)
    assert parse_day("today", today) == today
    assert parse_day("2026-01-31", today) == date(2026, 1, 31)


@pytest.fixture
def config():
    return load_config(CONFIG)


async def test_quality_shares_are_counted_per_tag_from_the_embedded_store(tmp_path, config):
    catalog = Catalog.build(config.plant)
    ids = [t.id for t in catalog.tags]
    store = EmbeddedStore(tmp_path / "history.sqlite", retention_s=86400 * 30, max_bytes=10**9,
                          tag_ids=ids)
    await store.open()
    day = PlantDay.of(date(2026, 3, 5), CARACAS)
    tags = np.array([0, 1], dtype=np.int32)
    for k, quality in enumerate([(Quality.GOOD, Quality.BAD), (Quality.GOOD, Quality.DOUBTFUL),
                                 (Quality.BAD, Quality.GOOD)]):
        ts = day.start + 60 * k
        await store.append(Batch.build("g", "d", ts, ts, tags, np.array([1.0, 2.0]),
                                       np.array(quality, dtype=np.uint8),
                                       np.array([0, Reason.TIMEOUT], dtype=np.uint8)))
    await store.append(Batch.build("g", "d", day.end + 5, day.end + 5, tags, np.array([1.0, 2.0]),
                                   np.full(2, Quality.BAD, dtype=np.uint8), np.zeros(2, np.uint8)))
    await store.close()
    async with ReportSources(tmp_path, ids) as sources:
        inputs = await sources.read_day(day, day.end)
    assert inputs.quality == {ids[0]: [2, 0, 1], ids[1]: [1, 1, 1]}


async def test_quality_is_counted_in_chunks_of_scans_for_plant_tags_only(tmp_path, config, monkeypatch):
    monkeypatch.setattr(sources_module, "QUALITY_CHUNK_SCANS", 2)  # 5 scans: chunks of 2, 2, 1
    catalog = Catalog.build(config.plant, synthetic_tags=3)
    ids = [t.id for t in catalog.tags]
    store = EmbeddedStore(tmp_path / "history.sqlite", retention_s=86400 * 30, max_bytes=10**9,
                          tag_ids=ids)
    await store.open()
    day = PlantDay.of(date(2026, 3, 5), CARACAS)
    first_synthetic = len(config.plant.tags)
    mixed = np.array([0, first_synthetic], dtype=np.int32)  # a plant tag beside a synthetic one
    synthetic = np.arange(first_synthetic, len(ids), dtype=np.int32)
    codes = [Quality.GOOD, Quality.DOUBTFUL, Quality.BAD, Quality.GOOD, Quality.GOOD]
    for k, code in enumerate(codes):
        ts = day.start + 60 * k
        await store.append(Batch.build("mixed", "d", ts, ts, mixed, np.array([1.0, 2.0]),
                                       np.array([code, Quality.BAD], dtype=np.uint8),
                                       np.zeros(2, np.uint8)))
        await store.append(Batch.build("synthetic", "d", ts, ts, synthetic, np.ones(3),
                                       np.full(3, Quality.GOOD, dtype=np.uint8), np.zeros(3, np.uint8)))
    await store.close()
    async with ReportSources(tmp_path, ids) as sources:
        inputs = await sources.read_day(day, day.end)
    assert inputs.quality == {ids[0]: [3, 1, 1]}


async def test_a_state_directory_without_data_gives_a_report_that_says_so(tmp_path, config):
    catalog = Catalog.build(config.plant)
    settings = config.settings.model_copy(update={"state_dir": tmp_path})
    day = date(2026, 3, 5)
    now = PlantDay.of(day, CARACAS).end + 3600
    async with ReportSources(tmp_path, [t.id for t in catalog.tags]) as sources:
        html = await generate(sources, settings, catalog, day, ReportFormat.HTML, now=now)
        xlsx = await generate(sources, settings, catalog, day, ReportFormat.XLSX, now=now)
    assert b"No analytics results were stored for this day" in html.content
    assert not html.report.partial
    cover = load_workbook(io.BytesIO(xlsx.content))["Report"]
    assert cover["B3"].value == "2026-03-05"


async def test_a_day_that_has_not_begun_cannot_be_reported(tmp_path, config):
    catalog = Catalog.build(config.plant)
    settings = config.settings.model_copy(update={"state_dir": tmp_path})
    now = PlantDay.of(date(2026, 3, 5), CARACAS).start - 1
    async with ReportSources(tmp_path, []) as sources:
        with pytest.raises(ReportError, match="has not begun"):
            await generate(sources, settings, catalog, date(2026, 3, 5), ReportFormat.PDF, now=now)
