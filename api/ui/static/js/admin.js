// The scheduler (admin tokens only): leader, workers and their heartbeats, pause and resume.
import { api } from "./api.js";
import { el, timeElement } from "./format.js";
import { notice, showUnavailable, start } from "./layout.js";

const $ = (id) => document.getElementById(id);
const REFRESH_MS = 5000;

// Runs going against capacity, and the labels the worker offers: every worker runs syncs, not only the leader.
function workerLoad(worker) {
  const running = (worker.running || []).length;
  const capacity = worker.capacity == null ? "" : ` / ${worker.capacity}`;
  const labels = (worker.labels || []).length ? ` (${worker.labels.join(", ")})` : "";
  return `${running}${capacity}${labels}`;
}

function facts(pairs) {
  return pairs.map(([term, value]) => el("div", {}, el("dt", {}, term), el("dd", {}, value)));
}

function render(state) {
  const leader = state.leader;
  $("leader").replaceChildren(...facts([
    ["Scheduling", state.paused ? "paused" : "running"],
    ["Leader", leader ? leader.owner : "none: no worker holds the lease"],
    ["Term", leader ? String(leader.term) : "—"],
    ["Lease expires", leader ? timeElement(leader.expiresAt) : "—"],
    ["Last heartbeat", leader ? timeElement(leader.heartbeatAt) : "—"],
    ["Reload mode", state.reloadMode ?? "—"],
    ["Jobs loaded", String(state.jobsLoaded ?? "—")],
  ]));
  $("pause").disabled = Boolean(state.paused);
  $("resume").disabled = !state.paused;
  document.querySelector("#workers tbody").replaceChildren(...(state.workers || []).map((worker) =>
    el("tr", {},
      el("th", { scope: "row", "data-label": "Worker" }, worker.workerId),
      el("td", { "data-label": "Host / pid" }, `${worker.host} / ${worker.pid}`),
      el("td", { "data-label": "Version" }, worker.version ?? "—"),
      el("td", { "data-label": "Role" }, worker.leading ? "leader" : "standby (runs syncs)"),
      el("td", { "data-label": "Heartbeat" }, timeElement(worker.heartbeatAt)),
      el("td", { "data-label": "Load" }, workerLoad(worker)),
    )));
  document.querySelector("#admin-fires tbody").replaceChildren(...(state.nextFireTimes || []).map((fire) =>
    el("tr", {},
      el("td", { "data-label": "When" }, timeElement(fire.at)),
      el("td", { "data-label": "Job" }, fire.name || fire.jobId),
      el("td", { "data-label": "Workspace" }, fire.workspaceId),
    )));
}

async function load() {
  try {
    render(await api("/api/admin/scheduler"));
    $("admin").hidden = false;
    return true;
  } catch (error) {
    if (error.missingEndpoint) showUnavailable("admin-unavailable");
    else notice(`Could not read the scheduler: ${error.message}`, "error");
    return false;
  }
}

async function command(action) {
  try {
    await api(`/api/admin/scheduler/${action}`, { method: "POST" });
    notice(action === "pause" ? "Scheduling paused." : "Scheduling resumed.");
  } catch (error) {
    notice(`Could not ${action}: ${error.message}`, "error");
  }
  await load();
}

$("pause").addEventListener("click", () => command("pause"));
$("resume").addEventListener("click", () => command("resume"));

const context = await start();
if (context && !context.who.admin) {
  showUnavailable("admin-denied");
} else if (context && (await load())) {
  setInterval(() => { if (!document.hidden) load(); }, REFRESH_MS);
}
