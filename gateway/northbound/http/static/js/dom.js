// Small DOM and formatting helpers (text is always set with textContent: no HTML injection).

/** Create an element: el("td", {className: "n", dataset: {tagId: "TI-101"}}, "text", child). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
    else if (value !== undefined && value !== null) node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const MISSING = "—";

/** A number with `digits` decimals (locale grouping), or an em dash. */
export function num(value, digits = 1) {
  if (value === null || value === undefined || !Number.isFinite(Number(value))) return MISSING;
  return Number(value).toLocaleString("en-US", {
    minimumFractionDigits: digits, maximumFractionDigits: digits,
  });
}

/** Decimals that suit a value of this size (a flow of 9 981 bpd vs a pressure of 19.7 psig). */
export function autoDigits(value) {
  const a = Math.abs(Number(value));
  if (!Number.isFinite(a)) return 1;
  return a >= 1000 ? 0 : a >= 100 ? 1 : 2;
}

/** Seconds as "4 s", "3 min", "2 h". */
export function age(seconds) {
  if (seconds === null || !Number.isFinite(seconds)) return MISSING;
  const s = Math.max(0, seconds);
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

/** An epoch-seconds or ISO time as local HH:MM:SS. */
export function clockTime(value) {
  if (value === null || value === undefined) return MISSING;
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? MISSING : date.toLocaleTimeString("en-GB");
}

/** Replace the children of `node`. */
export function replace(node, children) {
  node.replaceChildren(...children);
}

/** A quality word (good/GOOD/192) as the page's class suffix. */
export function qualityName(quality) {
  if (typeof quality === "number") return quality >= 192 ? "good" : quality >= 128 ? "doubtful" : "bad";
  return String(quality || "bad").toLowerCase();
}

/** The height a chart may take: its box's (sized by the panel layout), else a default. */
export function chartHeight(node, fallback = 300) {
  const height = node.clientHeight;
  return height >= 120 ? height : fallback;
}
