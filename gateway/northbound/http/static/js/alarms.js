// Active alarms with severity colours; acknowledge and shelve for a logged-in operator.

import { getJson, postJson, session } from "./api.js";
import { clockTime, el, num } from "./dom.js";

const SEVERITY_ORDER = { HIGH: 0, MEDIUM: 1, LOW: 2 };
const OPERATOR_ROLES = new Set(["operator", "supervisor", "admin"]);
const SHELVE_CHOICES = [[900, "15 min"], [3600, "1 h"], [8 * 3600, "8 h"]];

export function isOperator() {
  const s = session.get();
  return Boolean(s && OPERATOR_ROLES.has(String(s.role).toLowerCase()));
}

export class AlarmList {
  constructor({ body, count, empty, hint, onError }) {
    this.body = body;
    this.count = count;
    this.empty = empty;
    this.hint = hint;
    this.onError = onError;
    this.alarms = [];
    this.pending = null;
  }

  async refresh() {
    // Transitions arrive in bursts: coalesce the refreshes they ask for.
    if (this.pending) return this.pending;
    this.pending = (async () => {
      try {
        this.render(await getJson("/api/alarms"));
      } catch (err) {
        this.onError(err);
      } finally {
        this.pending = null;
      }
    })();
    return this.pending;
  }

  render(alarms) {
    this.alarms = alarms.slice().sort((a, b) =>
      (SEVERITY_ORDER[a.severity] ?? 9) - (SEVERITY_ORDER[b.severity] ?? 9)
      || (b.raised_at || 0) - (a.raised_at || 0));
    const operator = isOperator();
    this.hint.hidden = operator;
    this.body.replaceChildren(...this.alarms.map((a) => this.row(a, operator)));
    this.empty.hidden = this.alarms.length > 0;
    const unacked = this.alarms.filter((a) => a.state === "ACTIVE_UNACK" || a.state === "RTN_UNACK").length;
    this.count.textContent = `(${this.alarms.length}, ${unacked} unacknowledged)`;
  }

  row(alarm, operator) {
    const actions = el("td", { className: "actions" });
    if (operator) {
      const unacked = alarm.state === "ACTIVE_UNACK" || alarm.state === "RTN_UNACK";
      const ack = el("button", { type: "button", className: "ack", disabled: !unacked,
        on: { click: () => this.act(alarm.key, "acknowledge", {}) } }, "Ack");
      const choice = el("select", { className: "shelve-for", title: "shelve for" },
        ...SHELVE_CHOICES.map(([s, label]) => el("option", { value: String(s) }, label)));
      const shelved = alarm.state === "SHELVED";
      const shelve = el("button", { type: "button", className: "shelve",
        on: { click: () => (shelved
          ? this.act(alarm.key, "unshelve", {})
          : this.act(alarm.key, "shelve", { duration_s: Number(choice.value) })) } },
        shelved ? "Unshelve" : "Shelve");
      actions.append(ack, shelved ? "" : choice, shelve);
    }
    return el("tr", { className: `alarm-${alarm.state}`, dataset: { alarmKey: alarm.key, state: alarm.state } },
      el("td", {}, el("span", { className: `sev sev-${alarm.severity}` }, alarm.severity)),
      el("td", {}, alarm.tag_id), el("td", {}, alarm.kind), el("td", { className: "state" }, alarm.state),
      el("td", { className: "n" }, alarm.value === null || alarm.value === undefined ? "—" : num(alarm.value, 2)),
      el("td", {}, clockTime(alarm.raised_at)), el("td", { className: "msg fill", title: alarm.message || "" }, alarm.message || ""),
      actions);
  }

  async act(key, action, body) {
    try {
      await postJson(`/api/alarms/${encodeURIComponent(key)}/${action}`, body);
    } catch (err) {
      this.onError(err);
    }
    await this.refresh();
  }
}
