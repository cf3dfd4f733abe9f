"""The daily report from a gateway run on the simulator: over HTTP and from `refineryiq report`.

Analytics runs once early and then not again for an hour, so the API's figures and the
report's describe the same stored results and can be compared exactly.
"""

from __future__ import annotations

import io
import subprocess
import sys
import urllib.request
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from tests.support.daemon import ROOT, DaemonProcess

ZONE = ZoneInfo("America/Caracas")
# In reading order: what a shift supervisor looks at first comes first.
SECTION_TITLES = ("Shift summary", "Alarm summary", "Equipment health", "KPIs against targets",
                  "Energy against benchmarks", "OEE per unit", "Tanks", "Mass and energy balance",
                  "Data quality")

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    state = tmp_path_factory.mktemp("reports") / "state"
    d = DaemonProcess(state, env={"REFINERYIQ_OPCUA_SERVER__PORT": "0",
                                  "REFINERYIQ_ANALYTICS__FIRST_RUN_DELAY_S": "3",
                                  "REFINERYIQ_ANALYTICS__KPI_INTERVAL_S": "3600",
                                  "REFINERYIQ_REPORTS__SCHEDULED": "false"}).start()
    d.wait_healthy(timeout=90)
    d.wait_for(lambda: (d.get("/health")[1].get("analytics") or {}).get("runs", 0) >= 1, 30,
               "the first analytics run")
    yield d
    d.kill()


def same(value: float):
    """Equal as a spreadsheet stores it: XLSX keeps about 16 significant digits (Excel 15)."""
    return pytest.approx(value, rel=1e-12, abs=0.0)


def _today() -> str:
    return datetime.now(ZONE).date().isoformat()


def _download(daemon, fmt: str) -> tuple[str, bytes]:
    url = f"{daemon.url}/api/reports/daily?date={_today()}&format={fmt}"
    with urllib.request.urlopen(url, timeout=60) as resp:
        return resp.headers["Content-Type"], resp.read()


def _table(ws, title: str) -> list[dict]:
    """The rows of the table titled ``title`` on a sheet, as {heading: value}."""
    rows = list(ws.iter_rows(values_only=True))
    # Rows 1-3 are the sheet's title and intro; tables start below them.
    start = next(i for i, r in enumerate(rows) if i >= 3 and r[0] == title)
    headings = [h for h in rows[start + 1] if h is not None]
    out = []
    for r in rows[start + 2:]:
        if r[0] is None:
            break
        out.append(dict(zip(headings, r, strict=False)))
    return out


@pytest.fixture(scope="module")
def workbook(daemon):
    content_type, body = _download(daemon, "xlsx")
    assert content_type.startswith("application/vnd.openxmlformats")
    return load_workbook(io.BytesIO(body))


def test_the_xlsx_has_one_sheet_per_section(workbook):
    assert workbook.sheetnames == ["Report", *SECTION_TITLES]


def test_the_xlsx_balance_equals_the_api_balance_of_the_day(daemon, workbook):
    _, api = daemon.get("/api/analytics/balance")
    rows = {r["Unit"]: r for r in _table(workbook["Mass and energy balance"],
                                         "Mass and energy balance per unit")}
    assert set(rows) == {u["unit_id"] for u in api["units"]}
    for unit in api["units"]:
        row = rows[unit["unit_id"]]
        assert isinstance(row["Feed (bbl)"], float)
        assert row["Feed (bbl)"] == same(unit["feed_bbl"])
        assert row["Products (bbl)"] == same(unit["products_bbl"])
        assert row["Energy (kWh)"] == same(unit["energy_kwh"])
        assert row["Closure (%)"] == same(unit["closure_pct"])


def test_the_xlsx_kpi_day_means_equal_the_api_kpi_history(daemon, workbook):
    _, history = daemon.get("/api/analytics/kpis/history?hours=24")
    day_start = datetime.now(ZONE).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    rows = [r for r in history["rows"] if r["ts"] >= day_start]
    table = _table(workbook["KPIs against targets"], "KPIs against targets")
    oee = {r["Unit"]: r["Day mean (%)"] for r in table if r["KPI"] == "OEE"}
    for unit_id in ("CDU-101", "FCC-201", "HT-305", "ALK-400"):
        values = [r["oee_pct"] for r in rows if r["unit_id"] == unit_id and r["oee_pct"] is not None]
        assert oee[unit_id] == pytest.approx(sum(values) / len(values), rel=1e-12)


def test_the_xlsx_hourly_energy_equals_the_api_energy_rows(daemon, workbook):
    _, energy = daemon.get("/api/analytics/energy?hours=24")
    hourly = _table(workbook["Energy against benchmarks"], "Hourly energy")
    day_start = datetime.now(ZONE).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    api = {(r["unit_id"], datetime.fromtimestamp(r["hour_start"], ZONE).strftime("%H:00")):
           r["consumption_kwh"] for r in energy["rows"] if r["hour_start"] >= day_start}
    assert api
    assert {(r["Unit"], r["Hour"]): same(r["Consumption (kWh)"]) for r in hourly} == api


def test_the_xlsx_data_quality_shares_add_up_per_unit(workbook):
    rows = _table(workbook["Data quality"], "Data quality per unit")
    assert {r["Unit"] for r in rows} == {"CDU-101", "FCC-201", "HT-305", "ALK-400"}
    for r in rows:
        assert r["Samples"] > 0
        assert r["Good (%)"] + r["Doubtful (%)"] + r["Bad (%)"] == pytest.approx(100.0)


def test_the_pdf_parses_and_has_every_section(daemon):
    content_type, body = _download(daemon, "pdf")
    assert content_type == "application/pdf"
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)
    for title in SECTION_TITLES:
        assert title in text


def test_the_html_report_is_printable_on_a4_and_has_every_section(daemon):
    content_type, body = _download(daemon, "html")
    assert content_type.startswith("text/html")
    page = body.decode()
    assert "size: A4" in page
    for title in SECTION_TITLES:
        assert f"<h2>{title}</h2>" in page


def test_a_day_that_has_not_begun_is_refused(daemon):
    status, body = daemon.get("/api/reports/daily?date=2999-01-01")
    assert status == 400
    assert "has not begun" in body["detail"]


def test_the_report_command_writes_the_file_and_shows_progress(daemon, tmp_path):
    out = tmp_path / "day.pdf"
    env = {k: v for k, v in daemon.env.items()}
    result = subprocess.run([sys.executable, "-m", "refineryiq.cli", "report", "--date", _today(),
                             "--format", "pdf", "--out", str(out)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr
    assert "[5/5]" in result.stderr
    text = "\n".join(p.extract_text() for p in PdfReader(out).pages)
    assert "Mass and energy balance" in text


def test_the_daemon_renders_reports_without_loading_the_rendering_libraries(daemon):
    for fmt in ("html", "pdf", "xlsx"):
        _download(daemon, fmt)
    maps = Path(f"/proc/{daemon.proc.pid}/maps").read_text()
    # Each library has a compiled extension the daemon would map once it imported them.
    for library in ("matplotlib", "PIL", "fontTools"):
        assert f"/{library}/" not in maps, library
