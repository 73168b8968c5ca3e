// The JSON API with the bearer token this tab keeps in sessionStorage (never in an address, never in a cookie).

const TOKEN = "syncjobs.token";
const WORKSPACE = "syncjobs.workspace";

export const session = {
  token: () => sessionStorage.getItem(TOKEN),
  workspace: () => sessionStorage.getItem(WORKSPACE),
  save(token, workspace) {
    sessionStorage.setItem(TOKEN, token);
    if (workspace) sessionStorage.setItem(WORKSPACE, workspace);
    else sessionStorage.removeItem(WORKSPACE);
  },
  setWorkspace: (workspace) => sessionStorage.setItem(WORKSPACE, workspace),
  clear() {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(WORKSPACE);
  },
};

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "http_error";
    this.details = error.details ?? null;
  }

  // The router's own 404/405 (aiohttp's reason phrase), as opposed to "no such job": the server predates
  // the endpoint, so the page says "not available on this server" instead of failing.
  get missingEndpoint() {
    return (this.status === 404 && this.message === "Not Found") ||
      (this.status === 405 && this.message === "Method Not Allowed");
  }
}

export async function api(path, { method = "GET", body, ifMatch, signal } = {}) {
  const headers = { Authorization: `Bearer ${session.token()}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (ifMatch !== undefined) headers["If-Match"] = `"${ifMatch}"`;
  const response = await fetch(path, {
    method, headers, signal, cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (response.status === 401 && location.pathname !== "/ui/signin") {
    session.clear();
    location.assign("/ui/signin");
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const workspacePath = (rest = "") =>
  `/api/workspaces/${encodeURIComponent(session.workspace())}${rest}`;

// Roles from least to most; an admin token may do everything.
const RANK = { viewer: 0, operator: 1, editor: 2, owner: 3, admin: 4 };

export function can(who, needed) {
  return (RANK[who.role] ?? -1) >= RANK[needed];
}

export async function whoami() {
  return api("/api/whoami");
}

// Server-sent events read through fetch, since EventSource cannot send an Authorization header.
// Calls onEvent(name, data) for each event; resolves when the stream ends; rejects on HTTP errors.
export async function readEvents(path, onEvent, signal) {
  const response = await fetch(path, {
    headers: { Authorization: `Bearer ${session.token()}`, Accept: "text/event-stream" },
    signal, cache: "no-store",
  });
  if (!response.ok) {
    let data = null;
    try { data = await response.json(); } catch { data = null; }
    throw new ApiError(response.status, data);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}
