// Trend charts of selected tags: the last hour (history, then extended live from the stream)
// or the last 24 h (history reduced on the gateway to at most MAX_POINTS per tag).

import { getJson } from "./api.js";
import { chartHeight, el } from "./dom.js";

const MAX_TAGS = 4;
const MAX_POINTS = 600;
const LIVE_RANGE_S = 3600;
const COLORS = ["#4aa3ff", "#3fb950", "#f0883e", "#d2a8ff"];

export class Trends {
  constructor({ chart, chips, note, ranges, lookup }) {
    this.chart = chart;
    this.chips = chips;
    this.note = note;
    this.lookup = lookup; // tag_id -> tag (for names and units)
    this.tags = [];
    this.series = new Map(); // tag_id -> {x: [], y: []}
    this.rangeS = LIVE_RANGE_S;
    for (const input of ranges) {
      input.addEventListener("change", () => {
        if (input.checked) {
          this.rangeS = Number(input.value);
          this.reload();
        }
      });
    }
  }

  get live() {
    return this.rangeS <= LIVE_RANGE_S;
  }

  add(tagId) {
    if (this.tags.includes(tagId)) return;
    if (this.tags.length >= MAX_TAGS) this.tags.shift();
    this.tags.push(tagId);
    this.reload();
  }

  remove(tagId) {
    this.tags = this.tags.filter((t) => t !== tagId);
    this.series.delete(tagId);
    this.reload();
  }

  renderChips() {
    this.chips.replaceChildren(...this.tags.map((tagId) =>
      el("span", { className: "chip", dataset: { tagId } }, tagId,
        el("button", { type: "button", title: `remove ${tagId}`, on: { click: () => this.remove(tagId) } }, "×"))));
  }

  async reload() {
    this.renderChips();
    const end = Date.now() / 1000;
    const start = end - this.rangeS;
    const loaded = await Promise.all(this.tags.map(async (tagId) => {
      const h = await getJson(`/api/tags/${encodeURIComponent(tagId)}/history?start=${start}&end=${end}&max_points=${MAX_POINTS}`);
      return [tagId, {
        x: h.points.map((p) => new Date(p.timestamp)),
        y: h.points.map((p) => (p.mean ?? p.value)),
      }];
    }));
    this.series = new Map(loaded);
    this.note.textContent = this.live
      ? "Last hour from history, extended live."
      : "Last 24 h from history (bucket means).";
    this.draw();
  }

  /** Extend the live series with a stream values event. */
  apply(body) {
    if (!this.live || !this.tags.length) return;
    let changed = false;
    const cutoff = new Date(Date.now() - this.rangeS * 1000);
    for (const v of body.values || []) {
      const s = this.series.get(v.tag_id);
      if (!s || v.source_ts === null) continue;
      s.x.push(new Date(v.source_ts * 1000));
      s.y.push(v.value);
      while (s.x.length && s.x[0] < cutoff) {
        s.x.shift();
        s.y.shift();
      }
      changed = true;
    }
    if (changed) this.draw();
  }

  draw() {
    if (!window.Plotly) {
      this.note.textContent = "Charts are unavailable (plotly is not installed on the gateway).";
      return;
    }
    const units = [...new Set(this.tags.map((t) => (this.lookup(t) || {}).engineering_units || ""))];
    const traces = this.tags.map((tagId, i) => {
      const s = this.series.get(tagId) || { x: [], y: [] };
      const tag = this.lookup(tagId) || {};
      const axis = units.indexOf(tag.engineering_units || "");
      return { type: "scatter", mode: "lines", name: `${tagId} (${tag.engineering_units || ""})`,
        x: s.x, y: s.y, line: { color: COLORS[i % COLORS.length], width: 1.5 },
        yaxis: axis > 0 ? "y2" : "y", connectgaps: false };
    });
    window.Plotly.react(this.chart, traces, {
      margin: { l: 50, r: 50, t: 24, b: 30 }, height: chartHeight(this.chart), paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)", font: { color: "#c9d5e0", size: 11 },
      xaxis: { gridcolor: "#2a3540" },
      yaxis: { title: { text: units[0] || "" }, gridcolor: "#2a3540" },
      yaxis2: { title: { text: units[1] || "" }, overlaying: "y", side: "right", showgrid: false },
      legend: { orientation: "h", x: 0, y: 1.0, yanchor: "bottom" }, uirevision: "trends",
    }, { displayModeBar: false, responsive: true });
  }
}
