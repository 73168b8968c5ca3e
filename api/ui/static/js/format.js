// Times in the viewer's zone (the job's zone on hover), durations, and status badges that say their status in
// words as well as colour.

export const viewerZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

const SHORT = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" };

export function formatIn(iso, timeZone, withZone = false) {
  const options = { ...SHORT, timeZone };
  if (withZone) options.timeZoneName = "short";
  return new Intl.DateTimeFormat(undefined, options).format(new Date(iso));
}

const RELATIVE = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const UNITS = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];

export function relative(iso, now = Date.now()) {
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === "second") return RELATIVE.format(Math.round(seconds / size), unit);
  }
  return "";
}

// <time> in the viewer's zone; hovering (or a screen reader's title) gives it in the job's zone too.
export function timeElement(iso, jobZone, { showRelative = false } = {}) {
  const time = document.createElement("time");
  if (!iso) {
    time.textContent = "—";
    return time;
  }
  time.dateTime = iso;
  const local = formatIn(iso, viewerZone);
  time.textContent = showRelative ? `${relative(iso)} (${local})` : local;
  const zones = [`${formatIn(iso, viewerZone, true)} (${viewerZone}, your zone)`];
  if (jobZone && jobZone !== viewerZone) zones.push(`${formatIn(iso, jobZone, true)} (${jobZone}, the job's zone)`);
  time.title = zones.join("\n");
  return time;
}

export function duration(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${ms} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

const ICONS = {
  queued: "…", running: "▶", succeeded: "✓", failed: "✕", timed_out: "⏱", canceled: "⊘", abandoned: "⚠",
  skipped: "↷", never: "–",
};

export function statusText(status) {
  return status ? status.replace("_", " ") : "never ran";
}

export function badge(status) {
  const key = status || "never";
  const span = document.createElement("span");
  span.className = `badge status-${key}`;
  span.dataset.status = key;
  const icon = document.createElement("span");
  icon.setAttribute("aria-hidden", "true");
  icon.textContent = ICONS[key] ?? "?";
  span.append(icon, " ", statusText(status));
  return span;
}

// nextFireTimes entries are ISO strings, or {utc, local} objects from newer servers.
export const fireTimeUtc = (entry) => (typeof entry === "string" ? entry : entry && entry.utc);

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

export function records(stats) {
  if (!stats || !stats.entities) return "—";
  let written = 0;
  for (const entity of Object.values(stats.entities)) written += entity.written || 0;
  return String(written);
}
