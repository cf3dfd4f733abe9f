// The status page: wires the panels to the API and the live stream.

import { getJson, openStream, postJson, session } from "./api.js";
import { AlarmList } from "./alarms.js";
import { refreshAnalytics } from "./overview.js";
import { TagTable } from "./tags.js";
import { Trends } from "./trends.js";
import { WritePanel } from "./writes.js";

const ANALYTICS_EVERY_MS = 15000;
const HEALTH_EVERY_MS = 10000;
const WRITES_EVERY_MS = 5000;
const DEFAULT_TRENDS = 2; // the first units' feed tags, when the catalog names them

const $ = (id) => document.getElementById(id);

function showError(err) {
  const footer = $("footer-gateway");
  footer.dataset.error = String(err && err.message ? err.message : err);
  console.warn("status page:", err);
}

const tags = new TagTable({
  body: $("tag-rows"), count: $("tag-count"), unitSelect: $("tag-unit"), filter: $("tag-filter"),
  onTrend: (tagId) => trends.add(tagId),
});
const trends = new Trends({
  chart: $("trend-chart"), chips: $("trend-tags"), note: $("trend-note"),
  ranges: document.querySelectorAll("input[name=trend-range]"), lookup: (t) => tags.tag(t),
});
const alarms = new AlarmList({
  body: $("alarm-rows"), count: $("alarm-count"), empty: $("alarm-empty"), hint: $("alarm-hint"),
  onError: showError,
});
const writes = new WritePanel({
  tagsBody: $("writable-rows"), journalBody: $("write-journal-rows"), hint: $("writes-hint"),
  empty: $("writable-empty"), dialog: $("write-dialog"), onError: showError,
});
const analyticsNodes = {
  plantKpis: $("plant-kpis"), unitCards: $("unit-cards"), equipment: $("equipment-rows"),
  tanks: $("tank-cards"), energy: $("energy-rows"), energyChart: $("energy-chart"),
};
let equipmentNames = {};

function setBadge(node, word) {
  node.textContent = word;
  node.className = `badge ${word}`;
}

async function refreshHealth() {
  try {
    const health = await getJson("/health");
    setBadge($("gateway-status"), health.status);
    $("footer-gateway").textContent = `gateway ${health.gateway_id} · site ${health.site}`;
  } catch (err) {
    // /health answers 503 with a body when unhealthy; getJson throws then.
    setBadge($("gateway-status"), err.status === 503 ? "unhealthy" : "down");
  }
}

function renderSession() {
  const s = session.get();
  $("login-form").hidden = Boolean(s);
  $("session-info").hidden = !s;
  if (s) {
    $("session-user").textContent = s.user || s.username;
    $("session-role").textContent = s.role;
  }
  alarms.render(alarms.alarms);
  writes.render();
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  try {
    const body = await postJson("/api/auth/login", {
      username: $("login-user").value, password: $("login-password").value,
    });
    $("login-password").value = "";
    session.set({ token: body.token, user: body.user, username: body.username, role: body.role });
    stream.restart();
// Charts take the height the panel layout gives them, also after the window changes size.
function fitCharts() {
  for (const id of ["trend-chart", "energy-chart"]) {
    const node = $(id);
    const height = node.clientHeight;
    if (window.Plotly && node.data && height >= 120 && node.layout && node.layout.height !== height) {
      window.Plotly.relayout(node, { height });
    }
  }
}
window.addEventListener("resize", fitCharts);
setInterval(fitCharts, 2000);
  } catch (err) {
    $("login-error").textContent = err.message || "login failed";
  }
});

$("logout").addEventListener("click", async () => {
  try {
    await postJson("/api/auth/logout", {});
  } catch (err) {
    // The token may already have expired: the session ends either way.
  }
  session.set(null);
});

window.addEventListener("session-changed", () => {
  renderSession();
  alarms.refresh();
});

const stream = openStream("/api/stream", (name, data) => {
  if (name === "snapshot" || name === "values") {
    tags.apply(data);
    writes.apply(data);
    if (name === "values") trends.apply(data);
  } else if (name === "alarm") {
    alarms.refresh();
  }
}, (state) => setBadge($("stream-status"), state));

function tickClock() {
  $("clock").textContent = new Date().toLocaleString("en-GB");
  tags.tick();
}

async function start() {
  renderSession();
  tickClock();
  setInterval(tickClock, 1000);
  refreshHealth();
  setInterval(refreshHealth, HEALTH_EVERY_MS);
  try {
    const live = await getJson("/api/tags/live");
    tags.load(live);
    const feeds = live.filter((t) => t.tag_id.startsWith("FI-")).slice(0, DEFAULT_TRENDS);
    for (const t of feeds) trends.add(t.tag_id);
  } catch (err) {
    showError(err);
  }
  try {
    const equipment = await getJson("/api/normalized/equipment");
    if (Array.isArray(equipment)) {
      equipmentNames = Object.fromEntries(equipment.map((q) => [q.id ?? q.equipment_id, q.name]));
    }
  } catch (err) {
    equipmentNames = {};
  }
  alarms.refresh();
  await writes.load();
  setInterval(() => writes.refreshJournal(), WRITES_EVERY_MS);
  refreshAnalytics(analyticsNodes, equipmentNames, showError);
  setInterval(() => refreshAnalytics(analyticsNodes, equipmentNames, showError), ANALYTICS_EVERY_MS);
  setInterval(() => alarms.refresh(), ANALYTICS_EVERY_MS);
  document.body.dataset.ready = "true";
}

start();
// A marker the end-to-end test reads to prove updates arrive without a page reload.
window.refineryiqPageLoadedAt = window.refineryiqPageLoadedAt || Date.now();
