// The jobs list: one row per job, live through a server-sent event stream (5 s polling where the stream
// fails), paused while the tab is hidden.
import { api, can, workspacePath } from "./api.js";
import { sparkline } from "./charts.js";
import { badge, duration, el, timeElement } from "./format.js";
import { runNow, setEnabled } from "./job_actions.js";
import { notice, start } from "./layout.js";
import { liveUpdates } from "./live.js";

const tbody = document.querySelector("#jobs tbody");
const statusFilter = document.getElementById("status-filter");
const nameFilter = document.getElementById("name-filter");
let who = null;
let rows = [];
let sort = { key: "name", direction: 1 };

const lastRun = (row) => row.recentRuns[0] || null;
const when = (run) => run && (run.finishedAt || run.startedAt || run.queuedAt);
const FAILED = new Set(["failed", "timed_out", "abandoned"]);

const SORT_KEYS = {
  name: (row) => row.job.name.toLowerCase(),
  enabled: (row) => (row.job.enabled ? 0 : 1),
  lastRun: (row) => when(lastRun(row)) || "",
  nextRun: (row) => row.nextFireAt || "~",
  successRate: (row) => row.successRate ?? -1,
};

function matches(row) {
  const name = nameFilter.value.trim().toLowerCase();
  if (name && !row.job.name.toLowerCase().includes(name)) return false;
  const status = lastRun(row)?.status;
  switch (statusFilter.value) {
    case "never": return !status;
    case "active": return status === "queued" || status === "running";
    case "succeeded": return status === "succeeded";
    case "failed": return FAILED.has(status);
    case "canceled": return status === "canceled" || status === "skipped";
    case "disabled": return !row.job.enabled;
    default: return true;
  }
}

function enabledCell(row) {
  const { job } = row;
  if (!can(who, "operator")) return el("span", {}, job.enabled ? "on" : "off");
  const button = el("button", {
    type: "button", role: "switch", class: "switch", "aria-checked": String(job.enabled),
    "aria-label": `Enabled: ${job.name}`, "data-focus": `enabled-${job.id}`,
  }, el("span", { "aria-hidden": "true", class: "knob" }), job.enabled ? "on" : "off");
  // aria-disabled, not disabled, while busy: a disabled button loses the keyboard focus.
  button.addEventListener("click", async () => {
    if (button.getAttribute("aria-disabled") === "true") return;
    button.setAttribute("aria-disabled", "true");
    try {
      await setEnabled(job.id, !job.enabled);
      notice(`${job.name} is now ${job.enabled ? "disabled" : "enabled"}.`);
      await refreshOnce();
    } catch (error) {
      notice(`Could not change ${job.name}: ${error.message}`, "error");
      button.removeAttribute("aria-disabled");
    }
  });
  return button;
}

function lastRunCell(row) {
  const run = lastRun(row);
  if (!run) return el("td", { "data-label": "Last run", class: "last-run" }, badge(null));
  return el("td", { "data-label": "Last run", class: "last-run" },
    badge(run.status), " ", timeElement(when(run), row.job.schedule.timezone), " ",
    el("span", { class: "muted" }, duration(run.durationMs)));
}

function nextRunCell(row) {
  const cell = el("td", { "data-label": "Next run", class: "next-run" });
  if (!row.job.enabled) cell.append(el("span", { class: "muted" }, "not scheduled"));
  else if (!row.nextFireAt) cell.append(el("span", { class: "muted" }, "never fires"));
  else cell.append(timeElement(row.nextFireAt, row.job.schedule.timezone, { showRelative: true }));
  return cell;
}

function successCell(row) {
  const rate = row.successRate == null ? "—" : `${Math.round(row.successRate * 100)} %`;
  return el("td", { "data-label": "Success (last 20)", class: "success" },
    el("span", { class: "rate" }, rate), " ", sparkline(row.recentRuns));
}

function actionsCell(row) {
  if (!can(who, "operator")) return null;
  const { job } = row;
  const active = ["queued", "running"].includes(lastRun(row)?.status);
  const button = el("button", {
    type: "button", "aria-label": `Run ${job.name} now`, "data-focus": `run-${job.id}`,
    "aria-disabled": active ? "true" : null,
  }, "Run now");
  button.addEventListener("click", async () => {
    if (button.getAttribute("aria-disabled") === "true") return;
    button.setAttribute("aria-disabled", "true");
    try {
      const { execution } = await runNow(job.id);
      showQueued(job.id, execution);
      notice(`${job.name}: run queued.`);
    } catch (error) {
      notice(`${job.name}: ${error.message}`, "error");
      button.removeAttribute("aria-disabled");
    }
  });
  return el("td", { "data-label": "Actions" }, button);
}

// Runs queued from this page that the stream has not shown yet: jobId -> {execution, until}.
const queuedHere = new Map();
const QUEUED_HERE_MS = 60000;

// Show a run just queued at once: the worker may start it before the stream's next look. Either side may be
// first: rows that know the run already are newer than the POST's answer (a queued badge would step back),
// and a snapshot taken before the run was queued may still arrive after it (it must not hide the run).
function showQueued(jobId, execution) {
  queuedHere.set(jobId, { execution, until: Date.now() + QUEUED_HERE_MS });
  if (withQueuedHere(rows)) render();
}

function withQueuedHere(items) {
  let changed = false;
  for (const row of items) {
    const here = queuedHere.get(row.job.id);
    if (!here) continue;
    if (row.recentRuns.some((run) => run.id === here.execution.id) || Date.now() > here.until) {
      queuedHere.delete(row.job.id);
    } else {
      row.recentRuns = [here.execution, ...row.recentRuns].slice(0, 20);
      changed = true;
    }
  }
  return changed;
}

function render() {
  const focused = document.activeElement?.dataset?.focus;
  const key = SORT_KEYS[sort.key];
  const shown = rows.filter(matches).sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0) * sort.direction);
  tbody.replaceChildren(...shown.map((row) => el("tr", { "data-job-id": row.job.id },
    el("th", { scope: "row", "data-label": "Name" }, el("a", { href: `/ui/jobs/${encodeURIComponent(row.job.id)}` }, row.job.name)),
    el("td", { "data-label": "Schedule" }, row.scheduleText),
    el("td", { "data-label": "Enabled" }, enabledCell(row)),
    lastRunCell(row),
    nextRunCell(row),
    successCell(row),
    actionsCell(row),
  )));
  document.getElementById("empty").hidden = shown.length > 0;
  document.getElementById("count").textContent = `${shown.length} of ${rows.length} jobs`;
  if (focused) document.querySelector(`[data-focus="${CSS.escape(focused)}"]`)?.focus();
}

function accept(body) {
  rows = body.items;
  withQueuedHere(rows);
  document.getElementById("more").hidden = !body.nextCursor;
  render();
}

async function refreshOnce() {
  accept(await api(workspacePath("/dashboard/jobs")));
}

for (const button of document.querySelectorAll("[data-sort]")) {
  button.addEventListener("click", () => {
    const key = button.dataset.sort;
    sort = { key, direction: sort.key === key ? -sort.direction : 1 };
    for (const th of document.querySelectorAll("#jobs thead th[aria-sort]")) {
      const mine = th.querySelector("button").dataset.sort === key;
      th.setAttribute("aria-sort", mine ? (sort.direction > 0 ? "ascending" : "descending") : "none");
    }
    render();
  });
}
statusFilter.addEventListener("change", render);
nameFilter.addEventListener("input", render);

const context = await start();
if (context) {
  who = context.who;
  try {
    await refreshOnce();
  } catch (error) {
    notice(`Could not load the jobs: ${error.message}`, "error");
  }
  liveUpdates({
    onRows: accept,
    poll: refreshOnce,
    onError: (error) => notice(`Could not refresh: ${error.message}`, "error"),
  });
  setInterval(() => { if (!document.hidden) render(); }, 15000); // relative times move on
}
