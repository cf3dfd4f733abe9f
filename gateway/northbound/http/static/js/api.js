// The gateway's HTTP API as the page uses it: JSON reads and writes with the session's bearer
// token, and the Server-Sent Events stream read through fetch (EventSource cannot send an
// Authorization header, which a gateway that protects reads requires).

const TOKEN_KEY = "refineryiq.session";

export class ApiError extends Error {
  constructor(status, detail, body = null) {
    super(detail);
    this.status = status;
    this.body = body; // the JSON answer, e.g. {detail, write} of a refused write
  }
}

/** The logged-in session (token, user, role) kept for this browser tab only. */
export const session = {
  get() {
    try {
      return JSON.parse(sessionStorage.getItem(TOKEN_KEY) || "null");
    } catch {
      return null;
    }
  },
  set(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, JSON.stringify(value));
    else sessionStorage.removeItem(TOKEN_KEY);
    window.dispatchEvent(new CustomEvent("session-changed", { detail: value }));
  },
};

function headers(extra = {}) {
  const out = { Accept: "application/json", ...extra };
  const s = session.get();
  if (s && s.token) out.Authorization = `Bearer ${s.token}`;
  return out;
}

async function answer(response) {
  if (response.status === 204) return null;
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    if (response.status === 401 && session.get()) session.set(null);
    throw new ApiError(response.status, (body && body.detail) || response.statusText, body);
  }
  return body;
}

export async function getJson(path) {
  return answer(await fetch(path, { headers: headers(), cache: "no-store" }));
}

export async function postJson(path, body) {
  return answer(await fetch(path, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify(body ?? {}),
  }));
}

/**
 * Read /api/stream and call onEvent(name, data) for each event; reconnects after the server's
 * retry delay. onState(state) reports "live", "reconnecting".
 */
export function openStream(path, onEvent, onState) {
  let retryMs = 3000;
  let stopped = false;
  let controller = null;
  let restarting = false;

  function dispatch(block) {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
      else if (field === "retry" && /^\d+$/.test(value)) retryMs = Number(value);
    }
    if (data.length) onEvent(name, JSON.parse(data.join("\n")));
  }

  async function run() {
    while (!stopped) {
      controller = new AbortController();
      try {
        const response = await fetch(path, {
          headers: headers({ Accept: "text/event-stream" }),
          signal: controller.signal,
          cache: "no-store",
        });
        if (!response.ok || !response.body) throw new ApiError(response.status, "stream refused");
        onState("live");
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n?/g, "\n");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            dispatch(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch (err) {
        if (stopped) return;
      }
      onState("reconnecting");
      if (restarting) {
        restarting = false; // a new session: reconnect at once with the new token
        continue;
      }
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
  }

  run();
  return {
    restart() {
      restarting = true;
      if (controller) controller.abort();
    },
    stop() {
      stopped = true;
      if (controller) controller.abort();
    },
  };
}
