// Runs per day by status and p50/p95 durations (GET .../statistics, where the server has it).
import { api, workspacePath } from "./api.js";
import { durationLines, stackedBars, STATUS_ORDER } from "./charts.js";
import { duration, el } from "./format.js";
import { notice, showUnavailable, start } from "./layout.js";

const $ = (id) => document.getElementById(id);

function legend(items) {
  return el("ul", { class: "legend" }, ...items.map(([cls, text]) =>
    el("li", {}, el("span", { class: `swatch ${cls}`, "aria-hidden": "true" }), text)));
}

async function load() {
  let stats;
  try {
    stats = await api(workspacePath(`/statistics?days=${encodeURIComponent($("stats-days").value)}`));
  } catch (error) {
    if (error.missingEndpoint) {
      showUnavailable("stats-unavailable");
      document.querySelector(".toolbar").hidden = true;
      return;
    }
    notice(`Could not load the statistics: ${error.message}`, "error");
    return;
  }
  $("stats").hidden = false;
  const rate = stats.successRate == null ? "—" : `${Math.round(stats.successRate * 100)} %`;
  const facts = [["Runs", stats.total], ["Success rate", rate], ["p50 duration", duration(stats.durationMs?.p50)],
    ["p95 duration", duration(stats.durationMs?.p95)], ["Longest", duration(stats.durationMs?.max)],
    ["Records written", stats.recordsWritten ?? "—"]];
  $("stats-facts").replaceChildren(...facts.map(([term, value]) => el("div", {}, el("dt", {}, term), el("dd", {}, String(value)))));
  const present = STATUS_ORDER.filter((status) => stats.perDay.some((day) => (day.counts || {})[status]));
  $("per-day-chart").replaceChildren(stackedBars(stats.perDay),
    legend(present.map((status) => [`fill-${status}`, status.replace("_", " ")])));
  $("duration-chart").replaceChildren(durationLines(stats.perDay, duration),
    legend([["line-p50", "p50 (median)"], ["line-p95", "p95"]]));
  $("stats-table").replaceChildren(...stats.perDay.map((day) => el("tr", {},
    el("th", { scope: "row" }, day.date),
    el("td", {}, present.map((status) => `${(day.counts || {})[status] || 0} ${status.replace("_", " ")}`).join(", ") || "none"),
    el("td", {}, duration(day.durationMs?.p50)),
    el("td", {}, duration(day.durationMs?.p95)))));
}

$("stats-days").addEventListener("change", load);
if (await start()) await load();
