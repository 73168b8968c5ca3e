// Runs across every job of the workspace, with filters (GET .../executions, where the server has it).
import { api, workspacePath } from "./api.js";
import { badge, duration, el, timeElement } from "./format.js";
import { notice, showUnavailable, start } from "./layout.js";

const $ = (id) => document.getElementById(id);
let cursor = null;
let names = {};

function query(more) {
  const params = new URLSearchParams({ limit: "50" });
  for (const name of ["status", "trigger"]) {
    const value = $(`runs-${name}`).value;
    if (value) params.set(name, value);
  }
  for (const name of ["since", "until"]) {
    const value = $(`runs-${name}`).value; // local wall time from the picker: send it as UTC
    if (value) params.set(name, new Date(value).toISOString());
  }
  if (more && cursor) params.set("cursor", cursor);
  return params;
}

async function load(more = false) {
  let body;
  try {
    body = await api(workspacePath(`/executions?${query(more)}`));
  } catch (error) {
    if (error.missingEndpoint) {
      showUnavailable("runs-unavailable");
      $("runs").hidden = true;
      $("run-filters").hidden = true;
      return;
    }
    notice(`Could not load the runs: ${error.message}`, "error");
    return;
  }
  const rows = body.items.map((run) => el("tr", { "data-execution-id": run.id },
    el("td", { "data-label": "Queued" }, timeElement(run.queuedAt)),
    el("td", { "data-label": "Job" }, el("a", { href: `/ui/jobs/${encodeURIComponent(run.jobId)}` }, names[run.jobId] || run.jobId)),
    el("td", { "data-label": "Trigger" }, run.trigger),
    el("td", { "data-label": "Status" }, badge(run.status)),
    el("td", { "data-label": "Duration" }, duration(run.durationMs)),
  ));
  const tbody = document.querySelector("#runs tbody");
  if (more) tbody.append(...rows);
  else tbody.replaceChildren(...rows);
  cursor = body.nextCursor;
  $("runs-more").hidden = !cursor;
  $("runs-empty").hidden = tbody.children.length > 0;
}

$("run-filters").addEventListener("submit", (event) => {
  event.preventDefault();
  load();
});
$("runs-more").addEventListener("click", () => load(true));

if (await start()) {
  const jobs = await api(workspacePath("/sync-jobs?limit=200")).catch(() => ({ items: [] }));
  names = Object.fromEntries(jobs.items.map((job) => [job.id, job.name]));
  await load();
}
