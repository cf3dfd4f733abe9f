// Setpoints and commands: the writable tags with their limits, a change dialog that asks for
// confirmation showing the old and the new value, and the write journal. Writes go through
// POST /api/tags/{tag_id}/write (the gateway validates, journals and reads back every one).

import { ApiError, getJson, postJson, session } from "./api.js";
import { autoDigits, clockTime, el, num } from "./dom.js";

const ROLE_RANK = { viewer: 1, operator: 2, supervisor: 3, admin: 4 };
const JOURNAL_ROWS = 25;

function mayWrite(tag) {
  const s = session.get();
  if (!s) return false;
  return (ROLE_RANK[String(s.role).toLowerCase()] || 0) >= (ROLE_RANK[tag.write_role] || 9);
}

function fmt(value, units) {
  if (value === null || value === undefined || !Number.isFinite(Number(value))) return "—";
  return `${num(value, autoDigits(value))}${units ? ` ${units}` : ""}`;
}

function coilWord(value) {
  return Number(value) >= 0.5 ? "1 (on / start)" : "0 (off / stop)";
}

export class WritePanel {
  constructor({ tagsBody, journalBody, hint, empty, dialog, onError }) {
    this.tagsBody = tagsBody;
    this.journalBody = journalBody;
    this.hint = hint;
    this.empty = empty;
    this.dialog = dialog;
    this.onError = onError;
    this.tags = new Map(); // tag_id -> writable tag (with .value, .quality)
    this.cells = new Map(); // tag_id -> value cell
    this.current = null; // the tag the dialog is changing
    this.available = true;
    this.bindDialog();
  }

  async load() {
    try {
      const rows = await getJson("/api/tags/writable");
      this.tags = new Map(rows.map((t) => [t.tag_id, t]));
      this.available = true;
    } catch (err) {
      this.available = false;
      if (!(err instanceof ApiError && err.status === 503)) this.onError(err);
    }
    this.render();
    await this.refreshJournal();
  }

  render() {
    const rows = [...this.tags.values()];
    this.cells.clear();
    this.empty.hidden = rows.length > 0;
    if (!this.available) this.empty.textContent = "Writes are switched off on this gateway.";
    const anyAllowed = rows.some((t) => mayWrite(t));
    this.hint.hidden = anyAllowed || rows.length === 0;
    this.tagsBody.replaceChildren(...rows.map((t) => {
      const value = el("td", { className: "n value" }, t.coil ? coilWord(t.value) : fmt(t.value, t.engineering_units));
      this.cells.set(t.tag_id, value);
      const range = t.coil ? "0 / 1" : `${num(t.write_min, autoDigits(t.write_min))} … ${num(t.write_max, autoDigits(t.write_max))}`;
      const step = t.max_step === null || t.max_step === undefined ? "" : ` · step ≤ ${num(t.max_step, autoDigits(t.max_step))}`;
      const action = mayWrite(t)
        ? el("button", { type: "button", className: "write-open", on: { click: () => this.open(t.tag_id) } },
          t.coil ? "Command…" : "Change…")
        : el("span", { className: "hint", title: `needs the ${t.write_role} role` }, t.write_role);
      return el("tr", { dataset: { tagId: t.tag_id } },
        el("td", { className: "tag-id" }, t.tag_id),
        el("td", { className: "name fill", title: t.tag_name }, t.tag_name),
        value,
        el("td", { className: "range", title: `${range} ${t.engineering_units}${step}` }, `${range}${step}`),
        el("td", { className: "actions" }, action));
    }));
  }

  /** Stream values: keep the shown current values live. */
  apply(body) {
    for (const v of body.values || []) {
      const tag = this.tags.get(v.tag_id);
      if (!tag) continue;
      tag.value = v.value;
      tag.quality = v.quality;
      const cell = this.cells.get(v.tag_id);
      if (cell) cell.textContent = tag.coil ? coilWord(v.value) : fmt(v.value, tag.engineering_units);
    }
  }

  async refreshJournal() {
    if (!this.available) return;
    try {
      const page = await getJson(`/api/tags/writes?limit=${JOURNAL_ROWS}`);
      this.journalBody.replaceChildren(...page.writes.map((w) => this.journalRow(w)));
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 503)) this.onError(err);
    }
  }

  journalRow(w) {
    const units = (this.tags.get(w.tag_id) || {}).engineering_units || "";
    return el("tr", { className: `write-${w.outcome}`, dataset: { writeId: String(w.id), outcome: w.outcome } },
      el("td", { title: w.requested_at_iso || "" }, clockTime(w.requested_at)),
      el("td", { className: "tag-id" }, w.tag_id),
      el("td", { className: "user", title: `${w.user} via ${w.origin}${w.client ? ` from ${w.client}` : ""}` }, w.user),
      el("td", { className: "n" }, `${fmt(w.old_value, "")} → ${fmt(w.requested_value, units)}`),
      el("td", { className: "n" }, fmt(w.read_back_value, "")),
      el("td", {}, el("span", { className: `outcome outcome-${w.outcome}` }, w.outcome)),
      el("td", { className: "msg fill", title: `${w.detail || ""}${w.reason ? ` — reason: ${w.reason}` : ""}` }, w.detail || ""));
  }

  // ------------------------------------------------------------------ the change dialog

  bindDialog() {
    const d = this.dialog;
    this.$ = (id) => d.querySelector(`#${id}`);
    this.$("write-review").addEventListener("click", () => this.review());
    this.$("write-back").addEventListener("click", () => this.step("edit"));
    this.$("write-confirm").addEventListener("click", () => this.confirm());
    for (const id of ["write-cancel", "write-close"]) {
      this.$(id).addEventListener("click", () => d.close());
    }
    d.addEventListener("close", () => { this.current = null; });
  }

  step(name) {
    this.dialog.dataset.step = name;
    for (const part of this.dialog.querySelectorAll("[data-part]")) part.hidden = part.dataset.part !== name;
  }

  open(tagId) {
    const tag = this.tags.get(tagId);
    if (!tag) return;
    this.current = tag;
    this.dialog.querySelector("#write-dialog-title").textContent = tag.coil ? "Send a command" : "Change a setpoint";
    this.$("write-tag").textContent = `${tag.tag_id} — ${tag.tag_name}`;
    this.$("write-old").textContent = tag.coil ? coilWord(tag.value) : fmt(tag.value, tag.engineering_units);
    this.$("write-limits").textContent = tag.coil ? "0 or 1"
      : `${num(tag.write_min, autoDigits(tag.write_min))} … ${num(tag.write_max, autoDigits(tag.write_max))} ${tag.engineering_units}`
        + (tag.max_step ? `, at most ${num(tag.max_step, autoDigits(tag.max_step))} per write` : "");
    const input = this.$("write-value");
    const choice = this.$("write-coil");
    input.hidden = tag.coil;
    choice.hidden = !tag.coil;
    input.min = String(tag.write_min);
    input.max = String(tag.write_max);
    input.value = tag.value === null || tag.value === undefined ? "" : String(tag.value);
    choice.value = Number(tag.value) >= 0.5 ? "0" : "1";
    this.$("write-reason").value = "";
    this.$("write-error").textContent = "";
    this.step("edit");
    this.dialog.showModal();
    (tag.coil ? choice : input).focus();
  }

  requested() {
    const tag = this.current;
    const raw = tag.coil ? this.$("write-coil").value : this.$("write-value").value;
    return raw.trim() === "" ? NaN : Number(raw);
  }

  review() {
    const tag = this.current;
    const value = this.requested();
    const reason = this.$("write-reason").value.trim();
    const error = this.$("write-error");
    if (!Number.isFinite(value)) { error.textContent = "Enter a number."; return; }
    if (!reason) { error.textContent = "Give a reason for the change (it is journaled)."; return; }
    error.textContent = "";
    const words = tag.coil ? coilWord : (v) => fmt(v, tag.engineering_units);
    this.$("confirm-tag").textContent = tag.tag_id;
    this.$("confirm-old").textContent = words(tag.value);
    this.$("confirm-new").textContent = words(value);
    this.$("confirm-reason").textContent = reason;
    this.step("confirm");
    this.$("write-confirm").focus();
  }

  async confirm() {
    const tag = this.current;
    const value = this.requested();
    const reason = this.$("write-reason").value.trim();
    const button = this.$("write-confirm");
    button.disabled = true;
    let row = null;
    let detail = "";
    try {
      row = await postJson(`/api/tags/${encodeURIComponent(tag.tag_id)}/write`, { value, reason });
      detail = row.detail;
    } catch (err) {
      detail = err.message;
      row = err.body && err.body.write ? err.body.write : null;
    } finally {
      button.disabled = false;
    }
    const outcome = row ? row.outcome : "error";
    const result = this.$("write-result");
    result.className = `outcome outcome-${outcome}`;
    result.textContent = outcome;
    result.dataset.outcome = outcome;
    this.$("write-result-detail").textContent = detail;
    this.step("done");
    this.$("write-close").focus();
    await this.refreshJournal();
  }
}
