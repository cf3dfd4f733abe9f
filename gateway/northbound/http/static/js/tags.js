// The live tag table: every catalog tag with value, engineering unit, quality and age,
// updated from the stream's snapshot and values events.

import { age, autoDigits, el, num, qualityName } from "./dom.js";

const STALE_S = 30;

export class TagTable {
  constructor({ body, count, unitSelect, filter, onTrend }) {
    this.body = body;
    this.count = count;
    this.unitSelect = unitSelect;
    this.filter = filter;
    this.onTrend = onTrend;
    this.rows = new Map(); // tag_id -> {tr, value, quality, age, sourceTs, tag}
    unitSelect.addEventListener("change", () => this.applyFilter());
    filter.addEventListener("input", () => this.applyFilter());
  }

  /** Build one row per tag of /api/tags/live (the catalog order). */
  load(tags) {
    const units = new Set();
    const rows = [];
    for (const tag of tags) {
      if (tag.tag_id.startsWith("SYN-")) continue; // benchmark tags belong to no unit
      if (tag.unit_id) units.add(tag.unit_id);
      const cells = {
        value: el("td", { className: "n value" }),
        quality: el("td", { className: "quality" }),
        age: el("td", { className: "n age" }),
      };
      const trend = el("button", { type: "button", className: "trend-add", title: "add to trends",
        on: { click: () => this.onTrend(tag.tag_id) } }, "+");
      const tr = el("tr", { dataset: { tagId: tag.tag_id, unitId: tag.unit_id || "" } },
        el("td", { className: "tag-id" }, tag.tag_id), el("td", { className: "name fill", title: tag.tag_name }, tag.tag_name),
        el("td", {}, tag.unit_id || ""), cells.value, el("td", {}, tag.engineering_units),
        cells.quality, cells.age, el("td", {}, trend));
      const row = { tr, ...cells, tag, sourceTs: null, text: null };
      this.rows.set(tag.tag_id, row);
      rows.push(tr);
      this.update(tag.tag_id, tag.value, tag.quality_text || tag.quality,
        tag.source_timestamp ? Date.parse(tag.source_timestamp) / 1000 : null);
    }
    this.body.replaceChildren(...rows);
    const current = this.unitSelect.value;
    this.unitSelect.replaceChildren(el("option", { value: "" }, "all"),
      ...[...units].sort().map((u) => el("option", { value: u }, u)));
    this.unitSelect.value = current;
    this.applyFilter();
  }

  /** One tag's new sample (value null when the reading is not usable). */
  update(tagId, value, quality, sourceTs) {
    const row = this.rows.get(tagId);
    if (!row) return;
    const q = qualityName(quality);
    const text = value === null || value === undefined ? "—" : num(value, autoDigits(value));
    if (row.text !== null && text !== row.text) {
      row.tr.classList.remove("changed");
      void row.tr.offsetWidth; // restart the highlight animation
      row.tr.classList.add("changed");
    }
    row.text = text;
    row.value.textContent = text;
    row.tr.dataset.quality = q;
    row.tr.classList.remove("q-row-good", "q-row-doubtful", "q-row-bad");
    row.tr.classList.add(`q-row-${q}`);
    const badge = row.quality.firstChild || row.quality.appendChild(el("span"));
    badge.className = `q q-${q}`;
    badge.textContent = q.toUpperCase();
    row.sourceTs = sourceTs;
    this.refreshAge(row, Date.now() / 1000);
  }

  refreshAge(row, now) {
    const seconds = row.sourceTs ? now - row.sourceTs : null;
    row.age.textContent = age(seconds);
    row.tr.classList.toggle("stale", seconds !== null && seconds > STALE_S);
  }

  /** Re-compute every row's age (called every second). */
  tick() {
    const now = Date.now() / 1000;
    for (const row of this.rows.values()) this.refreshAge(row, now);
  }

  /** Apply a stream event body: {values: [{tag_id, value, quality, source_ts}]} */
  apply(body) {
    for (const v of body.values || []) this.update(v.tag_id, v.value, v.quality, v.source_ts);
  }

  applyFilter() {
    const unit = this.unitSelect.value;
    const text = this.filter.value.trim().toLowerCase();
    let shown = 0;
    for (const row of this.rows.values()) {
      const visible = (!unit || row.tag.unit_id === unit) && (!text
        || row.tag.tag_id.toLowerCase().includes(text) || row.tag.tag_name.toLowerCase().includes(text));
      row.tr.hidden = !visible;
      if (visible) shown += 1;
    }
    this.count.textContent = `(${shown} of ${this.rows.size})`;
  }

  tag(tagId) {
    const row = this.rows.get(tagId);
    return row ? row.tag : null;
  }
}
