// A job: status, next fire times, run / cancel / enable / disable, the schedule editor with a live preview,
// the execution history and the log tail.
import { api, ApiError, can, workspacePath } from "./api.js";
import { badge, duration, el, fireTimeUtc, records, timeElement } from "./format.js";
import { cancelRun, jobPath, runNow, setEnabled } from "./job_actions.js";
import { notice, start } from "./layout.js";
import { liveUpdates } from "./live.js";

const PAGE = 20;
const jobId = document.getElementById("job").dataset.jobId;
const $ = (id) => document.getElementById(id);
let who = null;
let job = null;
let status = null;
let historyCursor = null;
let olderLoaded = false;
let openLog = null; // {id, button}
let formFilled = false;
let words = { key: null, text: "" };

const zone = () => job?.schedule?.timezone;

function fill(id, ...nodes) {
  $(id).replaceChildren(...nodes);
}

function renderStatus() {
  $("job-name").textContent = job.name;
  document.title = `${job.name} · syncjobs`;
  $("job-schedule").textContent = status.scheduleText ?? "";
  fill("fact-enabled", job.enabled ? "Enabled" : "Disabled: not scheduled");
  const active = status.activeExecution;
  fill("fact-active", ...(active ? [badge(active.status), " since ", timeElement(active.startedAt || active.queuedAt, zone())] : ["none"]));
  const last = [badge(status.lastRunStatus), " "];
  if (status.lastRunAt) last.push(timeElement(status.lastRunAt, zone()));
  if (status.lastError) last.push(el("span", { class: "error-text" }, ` ${status.lastError}`));
  fill("fact-last", ...last);
  const fires = (status.nextFireTimes || []).map(fireTimeUtc).filter(Boolean);
  fill("fact-next", job.enabled && fires.length ? timeElement(fires[0], zone(), { showRelative: true }) : "not scheduled");
  const applied = status.scheduleAppliedVersion;
  fill("fact-live", status.scheduleLive
    ? `Live: the scheduler runs version ${job.version}`
    : applied == null
      ? `Version ${job.version} saved; not yet picked up by the scheduler`
      : `Version ${job.version} saved; the scheduler still runs version ${applied}`);
  fill("next-fires", ...(job.enabled
    ? fires.map((iso) => el("li", {}, timeElement(iso, zone())))
    : [el("li", { class: "muted" }, "not scheduled (the job is disabled)")]));
  $("toggle-enabled").textContent = job.enabled ? "Disable" : "Enable";
  $("cancel-run").hidden = !active || !can(who, "operator");
  if (!formFilled) {
    $("cron").value = job.schedule.cron;
    $("timezone").value = job.schedule.timezone;
    formFilled = true;
    preview();
  } else if ($("cron").value === job.schedule.cron && $("timezone").value === job.schedule.timezone) {
    preview(); // nobody is editing: keep the preview's fire times from falling into the past
  }
}

async function loadStatus() {
  [job, status] = await Promise.all([api(jobPath(jobId)), api(jobPath(jobId, "/status"))]);
  const key = `${job.schedule.cron}|${job.schedule.timezone}`;
  if (words.key !== key) {
    const body = await api(previewPath(job.schedule.cron, job.schedule.timezone)).catch(() => null);
    words = { key, text: body ? body.description : `${job.schedule.cron}, ${job.schedule.timezone}` };
  }
  status.scheduleText = words.text;
  renderStatus();
}

function historyRow(run) {
  const button = el("button", { type: "button", class: "link", "aria-label": `Show the log of the run queued ${new Date(run.queuedAt).toLocaleString()}` }, "Log");
  button.addEventListener("click", () => showLog(run.id, button));
  return el("tr", { "data-execution-id": run.id },
    el("td", { "data-label": "Queued" }, timeElement(run.queuedAt, zone())),
    el("td", { "data-label": "Trigger" }, run.trigger + (run.attempt > 1 ? ` (attempt ${run.attempt})` : "")),
    el("td", { "data-label": "Status" }, badge(run.status), run.reason ? el("span", { class: "muted" }, ` ${run.reason}`) : null,
      run.error ? el("span", { class: "error-text" }, ` ${run.error}`) : null),
    el("td", { "data-label": "Duration" }, duration(run.durationMs)),
    el("td", { "data-label": "Records" }, records(run.stats)),
    el("td", { "data-label": "Log" }, button),
  );
}

async function loadHistory({ more = false } = {}) {
  const params = new URLSearchParams({ limit: String(PAGE) });
  if ($("history-status").value) params.set("status", $("history-status").value);
  if (more && historyCursor) params.set("cursor", historyCursor);
  const body = await api(jobPath(jobId, `/executions?${params}`));
  const rows = body.items.map(historyRow);
  const tbody = document.querySelector("#history tbody");
  if (more) tbody.append(...rows);
  else tbody.replaceChildren(...rows);
  historyCursor = body.nextCursor;
  olderLoaded = more || olderLoaded;
  $("history-more").hidden = !historyCursor;
  $("history-empty").hidden = tbody.children.length > 0;
}

async function showLog(executionId, button) {
  openLog = { id: executionId, button };
  $("log").hidden = false;
  await refreshLog();
  $("log-heading").focus();
}

async function refreshLog() {
  if (!openLog) return;
  const run = await api(jobPath(jobId, `/executions/${encodeURIComponent(openLog.id)}`));
  fill("log-meta", `Run ${run.id} · `, badge(run.status), ` · ${run.logTail.length} lines`);
  $("log-text").textContent = run.logTail.length ? run.logTail.join("\n") : "(no log lines yet)";
}

async function refresh() {
  await loadStatus();
  if (!olderLoaded) await loadHistory();
  await refreshLog();
}

// Schedule editor -------------------------------------------------------------------------------------------

const FIELD_ERRORS = { "schedule.cron": "cron", "schedule.timezone": "timezone" };

function showFieldErrors(details) {
  const rest = [];
  for (const name of Object.values(FIELD_ERRORS)) {
    $(`${name}-error`).textContent = "";
    $(name).removeAttribute("aria-invalid");
  }
  for (const detail of details || []) {
    const name = FIELD_ERRORS[detail.field];
    if (name) {
      $(`${name}-error`).textContent = detail.message;
      $(name).setAttribute("aria-invalid", "true");
    } else {
      rest.push(`${detail.field}: ${detail.message}`);
    }
  }
  return rest;
}

const previewPath = (cron, timezone) =>
  workspacePath(`/dashboard/schedule-preview?${new URLSearchParams({ cron, timezone })}`);

let previewTimer = null;
let previewSeq = 0;

async function preview() {
  const seq = ++previewSeq;
  try {
    const body = await api(previewPath($("cron").value, $("timezone").value));
    if (seq !== previewSeq) return; // a newer keystroke's answer wins
    showFieldErrors([]);
    $("preview-text").textContent = body.description;
    fill("preview-fires", ...body.nextFireTimes.map((iso) => el("li", {}, timeElement(iso, body.timezone))));
  } catch (error) {
    if (seq !== previewSeq) return;
    if (error instanceof ApiError && error.status === 422) showFieldErrors(error.details);
    else $("preview-text").textContent = `No preview: ${error.message}`;
    if (error.status === 422) $("preview-text").textContent = "Fix the schedule to see when it fires.";
    fill("preview-fires");
  }
}

function schedulePreview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(preview, 250);
}

async function saveSchedule(event) {
  event.preventDefault();
  $("save-result").textContent = "";
  try {
    job = await api(jobPath(jobId), {
      method: "PATCH", ifMatch: job.version,
      body: { schedule: { cron: $("cron").value.trim(), timezone: $("timezone").value.trim() } },
    });
    showFieldErrors([]);
    $("save-result").textContent = `Saved as version ${job.version}.`;
    await loadStatus();
  } catch (error) {
    if (error.status === 422) {
      const rest = showFieldErrors(error.details);
      $("save-result").textContent = rest.length ? rest.join("; ") : "Not saved: fix the fields marked above.";
      $(error.details?.some((d) => d.field === "schedule.timezone") ? "timezone" : "cron").focus();
    } else if (error.status === 412) {
      $("save-result").textContent = "Not saved: the job changed since this page read it. It has been re-read; save again to overwrite.";
      await loadStatus();
    } else {
      $("save-result").textContent = `Not saved: ${error.message}`;
    }
  }
}

// Actions ----------------------------------------------------------------------------------------------------

async function act(button, work, done) {
  button.disabled = true;
  try {
    await work();
    notice(done);
    await refresh();
  } catch (error) {
    notice(error.status === 409 ? `${error.message}.` : `Failed: ${error.message}`, "error");
  } finally {
    button.disabled = false;
  }
}

$("run-now").addEventListener("click", () => act($("run-now"), () => runNow(jobId), "Run queued."));
$("cancel-run").addEventListener("click", () => act($("cancel-run"),
  () => cancelRun(jobId, status.activeExecution.id), "Cancel requested."));
$("toggle-enabled").addEventListener("click", () => {
  const wanted = !job.enabled;
  act($("toggle-enabled"), () => setEnabled(jobId, wanted), wanted ? "Enabled." : "Disabled: not scheduled.");
});
$("cron").addEventListener("input", schedulePreview);
$("timezone").addEventListener("input", schedulePreview);
$("schedule-form").addEventListener("submit", saveSchedule);
$("history-status").addEventListener("change", () => { olderLoaded = false; loadHistory(); });
$("history-more").addEventListener("click", () => loadHistory({ more: true }));
$("log-close").addEventListener("click", () => {
  $("log").hidden = true;
  openLog?.button?.focus();
  openLog = null;
});

const context = await start();
if (context) {
  who = context.who;
  if (Intl.supportedValuesOf) {
    fill("zones", ...Intl.supportedValuesOf("timeZone").map((name) => el("option", { value: name })));
  }
  try {
    await refresh();
  } catch (error) {
    notice(error.status === 404 ? "No such job in this workspace." : `Could not load the job: ${error.message}`, "error");
  }
  liveUpdates({ onRows: () => refresh().catch(() => {}), poll: refresh });
}
