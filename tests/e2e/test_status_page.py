"""The status page end to end: `refineryiq run --simulate` and the page in real headless
Chromium, driven over the Chrome DevTools Protocol (a WebSocket, with aiohttp).

Chromium is Debian's package; when it is missing the module installs it with apt-get and skips
with the reason where that is impossible. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from gateway.services.accounts.users import Role
from tests.support.daemon import ROOT, DaemonProcess, post_json, state_with_users

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
OPERATOR, PASSWORD = "olga", "valve lineup 42"
SUPERVISOR = "sam"
SETPOINT = "TIC-101.SP"  # writable, supervisor, 330..370 °C, at most 10 per write
FAULT_TAG = "TI-101"
VIEWPORT = (1920, 1080)
DEVTOOLS_URL = re.compile(r"DevTools listening on (ws://\S+)")

pytestmark = pytest.mark.timeout(120)


def chromium_path() -> str | None:
    """Debian's chromium, installed with apt-get when missing (we run as root in CI)."""
    found = shutil.which("chromium") or (CHROMIUM if os.path.exists(CHROMIUM) else None)
    if found or shutil.which("apt-get") is None or os.geteuid() != 0:
        return found
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600, check=False)
    return shutil.which("chromium")


class Browser:
    """Headless Chromium with one page, driven over CDP; console errors are collected."""

    def __init__(self, executable: str):
        self.executable = executable
        self.errors: list[str] = []
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future] = {}

    async def start(self) -> Browser:
        self._profile = tempfile.mkdtemp(prefix="cdp-")
        self.proc = await asyncio.create_subprocess_exec(
            self.executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={self._profile}",
            f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}", "--remote-debugging-port=0",
            "about:blank", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        url = None
        while url is None:
            line = await asyncio.wait_for(self.proc.stderr.readline(), 30)
            if not line:
                raise RuntimeError("chromium exited before DevTools listened")
            if m := DEVTOOLS_URL.search(line.decode(errors="replace")):
                url = m.group(1)
        self._drain = asyncio.create_task(self._drain_stderr())
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(url, max_msg_size=64 * 1024 * 1024)
        self._reader = asyncio.create_task(self._read())
        target = await self.send("Target.createTarget", url="about:blank")
        attached = await self.send("Target.attachToTarget", targetId=target["targetId"], flatten=True)
        self.session = attached["sessionId"]
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            await self.send(domain, session=self.session)
        await self.send("Emulation.setDeviceMetricsOverride", session=self.session,
                        width=VIEWPORT[0], height=VIEWPORT[1], deviceScaleFactor=1, mobile=False)
        return self

    async def _drain_stderr(self) -> None:
        while await self.proc.stderr.readline():
            pass

    async def _read(self) -> None:
        async for msg in self._ws:
            data = json.loads(msg.data)
            if "id" in data and data["id"] in self._waiting:
                self._waiting.pop(data["id"]).set_result(data)
            else:
                self._event(data)

    def _event(self, data: dict) -> None:
        method, params = data.get("method"), data.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                        for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.errors.append(details.get("exception", {}).get("description") or details.get("text", ""))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")

    async def send(self, method: str, session: str | None = None, **params) -> dict:
        msg_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = future
        message = {"id": msg_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        await self._ws.send_str(json.dumps(message))
        answer = await asyncio.wait_for(future, 30)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", session=self.session, url=url)

    async def js(self, expression: str):
        """The value of a JavaScript expression in the page (awaited when it is a promise)."""
        result = await self.send("Runtime.evaluate", session=self.session, expression=expression,
                                 returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 30.0, what: str = ""):
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = await self.js(expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what or expression}")
            await asyncio.sleep(0.25)

    async def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        shot = await self.send("Page.captureScreenshot", session=self.session, format="png")
        path = ARTIFACTS / f"status-page-{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    async def close(self) -> None:
        for task in (self._reader, self._drain):
            task.cancel()
        await self._ws.close()
        await self._http.close()
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        shutil.rmtree(self._profile, ignore_errors=True)


@pytest.fixture(scope="module")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.skip("Debian's chromium is not installed and could not be installed with apt-get")
    return path


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, chromium):
    state = state_with_users(tmp_path_factory.mktemp("status-page") / "state", PASSWORD,
                             {OPERATOR: Role.OPERATOR, SUPERVISOR: Role.SUPERVISOR})
    d = DaemonProcess(state, env={"REFINERYIQ_OPCUA_SERVER__PORT": "0",
                                  "REFINERYIQ_ALARMS__BAD_QUALITY_DELAY_S": "1",
                                  "REFINERYIQ_ANALYTICS__FIRST_RUN_DELAY_S": "1"}).start()
    health = d.wait_healthy(timeout=90)
    d.control = f"http://127.0.0.1:{health['simulator']['control_port']}"
    yield d
    d.kill()


@pytest.fixture
async def page(daemon, chromium):
    browser = await Browser(chromium).start()
    await browser.goto(daemon.url + "/")
    await browser.wait_for("document.body && document.body.dataset.ready === 'true'", 30, "page ready")
    yield browser
    await browser.close()


def _catalog_tag_ids(daemon) -> list[str]:
    _, live = daemon.get("/api/tags/live")
    return [t["tag_id"] for t in live if not t["tag_id"].startswith("SYN-")]


ROW_IDS = "[...document.querySelectorAll('#tag-rows tr')].map(r => r.dataset.tagId)"


async def test_the_page_loads_without_console_errors_and_lists_every_catalog_tag(daemon, page):
    await page.wait_for("document.querySelectorAll('#unit-cards .unit-card').length > 0", 30,
                        "unit KPI cards")
    assert await page.js(ROW_IDS) == _catalog_tag_ids(daemon)
    await page.screenshot("loaded")
    await page.send("Emulation.setDeviceMetricsOverride", session=page.session, width=1366,
                    height=768, deviceScaleFactor=1, mobile=False)
    await page.screenshot("laptop")
    assert page.errors == []


async def test_the_equipment_table_shows_the_condition_baseline_from_the_first_minutes(daemon, page):
    # A new installation: no trained model yet, the baseline learning from the first run on.
    cells = "[...document.querySelectorAll('#equipment-rows td.baseline')]"
    await page.wait_for(f"{cells}.some(c => c.textContent.startsWith('learning'))", 60,
                        "a baseline cell saying it is learning")
    status, rows = daemon.get("/api/maintenance/baseline")
    assert status == 200 and {r["state"] for r in rows} == {"learning"}
    shown = await page.js(f"Object.fromEntries({cells}.map(c => [c.closest('tr').dataset.equipmentId, "
                          "[c.textContent, c.title]]))")
    for r in rows:
        if r["equipment_id"] in shown:
            text, title = shown[r["equipment_id"]]
            assert text.startswith("learning") and text.endswith("%") and "good running data" in title
    assert page.errors == []


async def test_a_browser_gets_the_page_at_root_while_json_clients_keep_the_seed_answer(daemon):
    status, body = daemon.get("/")
    assert status == 200 and body["status"] == "online"
    request = urllib.request.Request(daemon.url + "/", headers={"Accept": "text/html,*/*;q=0.8"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/html")
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


async def test_a_live_value_changes_without_a_page_reload(page):
    loaded_at = await page.js("window.refineryiqPageLoadedAt")
    before = await page.js("Object.fromEntries([...document.querySelectorAll('#tag-rows tr')]"
                           ".map(r => [r.dataset.tagId, r.querySelector('td.value').textContent]))")
    changed = (f"(() => {{ const before = {json.dumps(before)}; return [...document.querySelectorAll"
               "('#tag-rows tr')].some(r => before[r.dataset.tagId] !== "
               "r.querySelector('td.value').textContent); })()")
    await page.wait_for(changed, 20, "a value cell to change")
    assert await page.js("window.refineryiqPageLoadedAt") == loaded_at
    assert await page.js("document.getElementById('stream-status').textContent") == "live"


async def test_an_injected_fault_shows_bad_quality(daemon, page):
    status, _ = post_json(f"{daemon.control}/faults",
                      {"tag_id": FAULT_TAG, "kind": "out_of_range", "duration_s": 60})
    assert status == 200
    row = f"document.querySelector('#tag-rows tr[data-tag-id=\"{FAULT_TAG}\"]')"
    await page.wait_for(f"{row}.dataset.quality === 'bad'", 30, f"{FAULT_TAG} shown bad")
    assert await page.js(f"{row}.querySelector('.q').textContent") == "BAD"
    await page.screenshot("bad-quality")


async def test_an_operator_logs_in_and_acknowledges_an_alarm(daemon, page):
    key = f"{FAULT_TAG}/BAD_QUALITY"
    post_json(f"{daemon.control}/faults", {"tag_id": FAULT_TAG, "kind": "out_of_range", "duration_s": 60})
    daemon.wait_for(lambda: any(a["key"] == key and a["state"] in ("ACTIVE_UNACK", "RTN_UNACK")
                                for a in daemon.get("/api/alarms")[1]), 30, f"{key} unacknowledged")
    await page.js(f"document.getElementById('login-user').value = {json.dumps(OPERATOR)};"
                  f"document.getElementById('login-password').value = {json.dumps(PASSWORD)};"
                  "document.getElementById('login-submit').click(); true")
    await page.wait_for("!document.getElementById('session-info').hidden", 15, "logged in")
    ack = f"document.querySelector('#alarm-rows tr[data-alarm-key=\"{key}\"] button.ack')"
    await page.wait_for(f"{ack} && !{ack}.disabled", 20, "the Ack button")
    await page.screenshot("alarm-before-ack")
    await page.js(f"{ack}.click(); true")
    acked = daemon.wait_for(lambda: next(
        (t for t in daemon.get(f"/api/alarms/journal?tag_id={FAULT_TAG}")[1]["transitions"]
         if t["key"] == key and t["user"] == OPERATOR), None), 15, "the acknowledge in the API")
    assert acked["to_state"] in ("ACTIVE_ACK", "NORMAL")
    standing = [a for a in daemon.get("/api/alarms")[1] if a["key"] == key]
    assert all(a["state"] == "ACTIVE_ACK" and a["acked_by"] == OPERATOR for a in standing)
    await page.wait_for(f"(() => {{ const r = document.querySelector('#alarm-rows tr[data-alarm-key="
                        f"\"{key}\"]'); return !r || r.dataset.state !== 'ACTIVE_UNACK'; }})()",
                        15, "the page to show the acknowledged state")
    await page.screenshot("alarm-acknowledged")
    assert page.errors == []


# --------------------------------------------------------------------------- layout, writes

# Every table inside its box (no horizontal scroll bar, no column cut off), and every cell whose
# text is cut by an ellipsis carries its full text as a title.
LAYOUT = """(() => {
  const out = {overflowing: [], untitled: []};
  for (const table of document.querySelectorAll('table.data')) {
    if (!table.offsetParent) continue;
    const box = table.closest('.scroll') || table.parentElement;
    const panel = table.closest('.panel');
    if (table.scrollWidth > box.clientWidth + 1 || panel.scrollWidth > panel.clientWidth + 1) {
      const widest = [...(table.tBodies[0].rows[0] || table.tHead.rows[0]).cells]
        .map((c) => `${c.textContent.trim().slice(0, 20)}=${c.offsetWidth}`).join(' ');
      out.overflowing.push(`${table.id || table.tBodies[0].id}: table ${table.scrollWidth} px ` +
                           `in ${box.clientWidth} px (panel ${panel.scrollWidth}/` +
                           `${panel.clientWidth}; first row ${widest})`);
    }
    for (const cell of table.querySelectorAll('td')) {
      const text = cell.textContent.trim();
      if (cell.scrollWidth > cell.clientWidth + 1 && text && !(cell.title || '').includes(text)) {
        out.untitled.push(`${table.id || table.tBodies[0].id}: ${text}`);
      }
    }
  }
  return out;
})()"""


async def _login(page, user: str) -> None:
    await page.js(f"document.getElementById('login-user').value = {json.dumps(user)};"
                  f"document.getElementById('login-password').value = {json.dumps(PASSWORD)};"
                  "document.getElementById('login-submit').click(); true")
    await page.wait_for("!document.getElementById('session-info').hidden", 15, "logged in")


@pytest.mark.parametrize("size", [(1366, 768), (1600, 900), (1920, 1080)])
async def test_no_table_overflows_its_panel_and_cut_text_has_a_title(daemon, page, size):
    await page.send("Emulation.setDeviceMetricsOverride", session=page.session, width=size[0],
                    height=size[1], deviceScaleFactor=1, mobile=False)
    await page.wait_for("document.querySelectorAll('#equipment-rows tr').length > 0", 60,
                        "the equipment health rows")
    await page.wait_for("document.querySelectorAll('#writable-rows tr').length > 0", 30,
                        "the writable tags")
    _, login = post_json(daemon.url + "/api/auth/login",
                         {"username": SUPERVISOR, "password": PASSWORD})
    post_json(f"{daemon.url}/api/tags/{SETPOINT}/write",  # a refused write: a long detail text
              {"value": 999.0, "reason": "layout"}, {"Authorization": f"Bearer {login['token']}"})
    await page.wait_for("document.querySelectorAll('#write-journal-rows tr').length > 0", 15,
                        "the write journal")
    await asyncio.sleep(0.5)  # one layout pass after the last rows arrived
    layout = await page.js(LAYOUT)
    await page.screenshot(f"layout-{size[0]}x{size[1]}")
    assert layout["overflowing"] == [], layout["overflowing"]
    assert layout["untitled"] == [], layout["untitled"]
    assert page.errors == []


async def test_without_the_role_the_page_offers_no_write(daemon, page):
    await page.wait_for("document.querySelectorAll('#writable-rows tr').length > 0", 30,
                        "the writable tags")
    assert await page.js("document.querySelectorAll('#writable-rows button.write-open').length") == 0
    assert await page.js("!document.getElementById('writes-hint').hidden")
    await _login(page, OPERATOR)  # operator: the operator-role tags only, not the setpoint
    row = f"document.querySelector('#writable-rows tr[data-tag-id=\"{SETPOINT}\"]')"
    await page.wait_for(f"{row} && !{row}.querySelector('button.write-open')", 10,
                        "the setpoint row without a button")
    assert await page.js("document.querySelectorAll('#writable-rows button.write-open').length") > 0


async def test_a_supervisor_changes_a_setpoint_after_confirming_old_and_new_value(daemon, page):
    _, writable = daemon.get("/api/tags/writable")
    old = next(t["value"] for t in writable if t["tag_id"] == SETPOINT)
    new = round(old + 2 if old + 2 <= 370 else old - 2, 1)
    await _login(page, SUPERVISOR)
    button = (f"document.querySelector('#writable-rows tr[data-tag-id=\"{SETPOINT}\"] "
              "button.write-open')")
    await page.wait_for(f"!!{button}", 10, "the Change button")
    await page.js(f"{button}.click(); true")
    await page.wait_for("document.getElementById('write-dialog').open", 5, "the dialog")
    await page.js(f"document.getElementById('write-value').value = '{new}';"
                  "document.getElementById('write-reason').value = 'e2e: raise outlet';"
                  "document.getElementById('write-review').click(); true")
    await page.wait_for("document.getElementById('write-dialog').dataset.step === 'confirm'", 5,
                        "the confirmation step")
    shown_old = await page.js("document.getElementById('confirm-old').textContent")
    shown_new = await page.js("document.getElementById('confirm-new').textContent")
    assert shown_new.startswith(f"{new:.1f}") and shown_new.endswith("°C")
    assert float(shown_old.split()[0].replace(",", "")) == pytest.approx(old, abs=0.5)
    await page.screenshot("write-confirm")
    await page.js("document.getElementById('write-confirm').click(); true")
    await page.wait_for("document.getElementById('write-dialog').dataset.step === 'done'", 15,
                        "the outcome")
    assert await page.js("document.getElementById('write-result').dataset.outcome") == "confirmed"
    await page.screenshot("write-done")
    _, journal = daemon.get(f"/api/tags/writes?tag_id={SETPOINT}&limit=1")
    row = journal["writes"][0]
    assert (row["user"], row["origin"], row["outcome"], row["reason"]) == (
        SUPERVISOR, "http", "confirmed", "e2e: raise outlet")
    assert row["requested_value"] == pytest.approx(new)
    shown = f"document.querySelector('#write-journal-rows tr[data-write-id=\"{row['id']}\"]')"
    await page.wait_for(f"{shown} && {shown}.dataset.outcome === 'confirmed'", 10,
                        "the write in the page's journal")
    await page.js("document.getElementById('write-close').click(); true")
    assert not await page.js("document.getElementById('write-dialog').open")
    assert page.errors == []
