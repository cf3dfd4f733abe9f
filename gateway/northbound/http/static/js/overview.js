// Analytics panels: plant and unit KPIs with OEE, equipment health (with the condition
// baseline of /api/maintenance/baseline), tanks, energy per unit.
// Analytics runs on a schedule (about a minute), so these are polled, not streamed.

import { getJson } from "./api.js";
import { chartHeight, el, num } from "./dom.js";

const PLANT_KPIS = [
  ["oee_pct", "Plant OEE", "%", 1], ["availability_pct", "Availability", "%", 1],
  ["performance_pct", "Performance", "%", 1], ["oee_quality_pct", "Quality", "%", 1],
  ["throughput_bpd", "Throughput", "bpd", 0], ["stability_index", "Stability", "", 1],
];
const UNIT_KPIS = [
  ["oee_pct", "OEE %", 1], ["throughput_bpd", "Throughput bpd", 0],
  ["throughput_pct_of_design", "% of design", 1], ["energy_efficiency", "Energy eff.", 1],
  ["kwh_per_bbl", "kWh/bbl", 2], ["quality_score", "Quality", 1],
];

function status(word) {
  return el("span", { className: `status-${word || "NO_DATA"}` }, word || "NO_DATA");
}

export function renderKpis(plantNode, unitsNode, body) {
  const plant = body.plant || {};
  plantNode.replaceChildren(...PLANT_KPIS.map(([key, label, unit, digits]) =>
    el("div", { className: "kpi", dataset: { kpi: key } },
      el("div", { className: "label" }, label),
      el("div", { className: "value" }, num(plant[key], digits), unit ? ` ${unit}` : ""))));
  unitsNode.replaceChildren(...(body.units || []).map((u) =>
    el("div", { className: "unit-card", dataset: { unitId: u.unit_id } },
      el("h3", {}, u.unit_id, status(u.status)),
      el("dl", {}, ...UNIT_KPIS.flatMap(([key, label, digits]) =>
        [el("dt", {}, label), el("dd", {}, num(u[key], digits))])))));
}

/** The condition baseline's cell: "learning 12 %", or the score and the signal that moved most. */
export function baselineCell(b) {
  if (!b) return el("td", { className: "fill baseline", title: "no condition baseline" }, "—");
  let text, title, cls = "fill baseline";
  if (b.state === "learning") {
    text = `learning ${num(b.progress_pct, 0)} %`;
    title = `Condition baseline learning: ${num(b.learned_h, 1)} of ${num(b.learning_h, 0)} h of good running data`
      + (b.running === false ? " (not running now)" : "") + (b.reason ? ` — ${b.reason}` : "");
  } else if (b.state === "active") {
    const top = (b.top_signals || [])[0];
    const arrow = top ? (top.direction === "above" ? "▲" : "▼") : "";
    text = b.score === null || b.score === undefined ? "active"
      : `${num(b.score, 2)}${top && b.score > 1 ? ` ${arrow} ${top.signal}` : ""}`;
    title = `Condition baseline: score ${num(b.score, 2)} (1.00 = edge of the learned normal envelope)`
      + (b.deviating ? ", DEVIATING" : "") + ((b.top_signals || []).length
        ? `; moved most: ${b.top_signals.map((t) => `${t.signal} ${t.tag_id} ${t.direction} ${num(t.contribution_pct, 0)} %`).join(", ")}` : "")
      + (b.running === false ? "; not running now" : "");
    if (b.deviating) cls += " baseline-deviating";
  } else {
    text = "unavailable";
    title = b.reason || "no condition baseline";
  }
  // The cell gives way when the panel is narrow: its title starts with the whole text.
  return el("td", { className: cls, title: `${text} — ${title}`, dataset: { state: b.state } }, text);
}

export function renderEquipment(node, rows, names, baselines = {}) {
  node.replaceChildren(...rows.map((r) =>
    el("tr", { dataset: { equipmentId: r.equipment_id } },
      el("td", { title: `${names[r.equipment_id] || ""} (${r.unit_id || ""})` }, r.equipment_id),
      el("td", { className: "n" }, num(r.score, 1)),
      el("td", {}, status(r.status)), el("td", {}, r.zone || "—"),
      // The tag id alone (its kind is in the title): the baseline column needs the width.
      el("td", { className: "worst", title: r.worst_tag ? `${r.worst_kind} ${r.worst_tag}` : "" },
        r.worst_tag || "—"),
      el("td", { className: "n" }, r.failure_probability_pct === null
        || r.failure_probability_pct === undefined ? "—" : `${num(r.failure_probability_pct, 1)} %`),
      baselineCell(baselines[r.equipment_id]))));
}

/** The condition baseline by equipment_id ({} when the route is unavailable). */
async function baselineMap() {
  try {
    const rows = await getJson("/api/maintenance/baseline");
    return Object.fromEntries((rows || []).map((b) => [b.equipment_id, b]));
  } catch {
    return {};
  }
}

export function renderTanks(node, rows) {
  node.replaceChildren(...rows.map((t) => {
    const fill = el("div", { className: "fill" });
    fill.style.height = `${Math.max(0, Math.min(100, t.level_pct ?? 0))}%`;
    const hours = t.trend === "FILLING" ? t.hours_to_full : t.trend === "DRAINING" ? t.hours_to_empty : null;
    return el("div", { className: "tank", dataset: { tankId: t.tank_id } },
      el("h3", {}, t.tank_id),
      el("div", { className: "gauge", title: `${num(t.level_pct, 1)} %` }, fill),
      el("div", {}, `${num(t.level_pct, 1)} %  ·  ${num(t.volume_l, 0)} L`),
      el("div", { className: `trend trend-${t.trend}` }, t.trend || "—"),
      el("div", { className: "hint" }, hours === null || hours === undefined
        ? status(t.status) : `${num(hours, 1)} h to ${t.trend === "FILLING" ? "full" : "empty"}`));
  }));
}

/** The newest hourly row of each unit. */
export function latestEnergy(rows) {
  const byUnit = new Map();
  for (const r of rows) {
    const prev = byUnit.get(r.unit_id);
    if (!prev || r.hour_start >= prev.hour_start) byUnit.set(r.unit_id, r);
  }
  return [...byUnit.values()].sort((a, b) => a.unit_id.localeCompare(b.unit_id));
}

export function renderEnergy(node, chartNode, rows) {
  node.replaceChildren(...rows.map((r) =>
    el("tr", { dataset: { unitId: r.unit_id }, title: r.recommendation || "" },
      el("td", {}, r.unit_id), el("td", { className: "n" }, num(r.kwh_per_bbl, 2)),
      el("td", { className: "n" }, num(r.target_kwh_bbl, 1)),
      el("td", { className: "n" }, num(r.efficiency_score, 1)), el("td", {}, status(r.status)))));
  if (!window.Plotly || !rows.length) return;
  const units = rows.map((r) => r.unit_id);
  window.Plotly.react(chartNode, [
    { type: "bar", name: "actual", x: units, y: rows.map((r) => r.kwh_per_bbl), marker: { color: "#4aa3ff" } },
    { type: "bar", name: "benchmark", x: units, y: rows.map((r) => r.benchmark_kwh_bbl), marker: { color: "#6e7681" } },
    { type: "bar", name: "target", x: units, y: rows.map((r) => r.target_kwh_bbl), marker: { color: "#f0883e" } },
  ], {
    barmode: "group", margin: { l: 40, r: 10, t: 10, b: 30 }, height: chartHeight(chartNode), paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)", font: { color: "#c9d5e0", size: 11 },
    yaxis: { title: { text: "kWh/bbl" }, gridcolor: "#2a3540" }, legend: { orientation: "h" },
  }, { displayModeBar: false, responsive: true });
}

/** Poll every analytics route once; a 503 (analytics off) leaves the panel as it is. */
export async function refreshAnalytics(nodes, names, onError) {
  const jobs = [
    getJson("/api/analytics/kpis").then((b) => renderKpis(nodes.plantKpis, nodes.unitCards, b)),
    Promise.all([getJson("/api/analytics/equipment"), baselineMap()])
      .then(([b, baselines]) => renderEquipment(nodes.equipment, b.equipment, names, baselines)),
    getJson("/api/analytics/tanks").then((b) => renderTanks(nodes.tanks, b.tanks)),
    getJson("/api/analytics/energy?hours=1").then((b) => renderEnergy(nodes.energy, nodes.energyChart, latestEnergy(b.rows))),
  ];
  for (const result of await Promise.allSettled(jobs)) {
    if (result.status === "rejected" && result.reason && result.reason.status !== 503) onError(result.reason);
  }
}
