// Small SVG charts drawn from data (no library): a sparkline of recent runs, stacked bars, two lines.
// Every chart carries a text equivalent (role="img" + aria-label, and <title> per mark for hover).

const SVG = "http://www.w3.org/2000/svg";
export const STATUS_ORDER = ["succeeded", "failed", "timed_out", "abandoned", "canceled", "skipped", "running", "queued"];

function svg(width, height, label) {
  const node = document.createElementNS(SVG, "svg");
  node.setAttribute("viewBox", `0 0 ${width} ${height}`);
  node.setAttribute("role", "img");
  node.setAttribute("aria-label", label);
  node.setAttribute("preserveAspectRatio", "none");
  return node;
}

function mark(tag, attributes, title) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (title) {
    const tip = document.createElementNS(SVG, "title");
    tip.textContent = title;
    node.append(tip);
  }
  return node;
}

function tally(statuses) {
  const counts = {};
  for (const status of statuses) counts[status] = (counts[status] || 0) + 1;
  return Object.entries(counts).map(([status, n]) => `${n} ${status.replace("_", " ")}`).join(", ");
}

// Oldest left, newest right; bar height is the run's duration relative to the longest, at least a sliver.
export function sparkline(runs) {
  const ordered = [...runs].reverse();
  const width = 100, height = 20, slot = width / 20;
  const longest = Math.max(1, ...ordered.map((run) => run.durationMs || 0));
  const label = ordered.length ? `Last ${ordered.length} runs: ${tally(ordered.map((r) => r.status))}` : "No runs yet";
  const chart = svg(width, height, label);
  chart.classList.add("sparkline");
  ordered.forEach((run, i) => {
    const h = Math.max(4, ((run.durationMs || 0) / longest) * height);
    chart.append(mark("rect", {
      x: i * slot + 0.5, y: height - h, width: slot - 1, height: h, class: `fill-${run.status}`,
    }, `${run.status.replace("_", " ")}${run.durationMs != null ? `, ${run.durationMs} ms` : ""}`));
  });
  return chart;
}

export function stackedBars(days) {
  const width = 600, height = 200, pad = 24;
  const totals = days.map((day) => Object.values(day.counts || {}).reduce((a, b) => a + b, 0));
  const top = Math.max(1, ...totals);
  const slot = (width - pad) / Math.max(1, days.length);
  const chart = svg(width, height, `Runs per day over ${days.length} days, ${totals.reduce((a, b) => a + b, 0)} in all`);
  chart.append(mark("text", { x: 0, y: 12, class: "axis" }, null));
  chart.lastChild.textContent = String(top);
  days.forEach((day, i) => {
    let y = height - pad;
    for (const status of STATUS_ORDER) {
      const n = (day.counts || {})[status] || 0;
      if (!n) continue;
      const h = (n / top) * (height - pad - 16);
      y -= h;
      chart.append(mark("rect", { x: pad + i * slot + 1, y, width: Math.max(1, slot - 2), height: h, class: `fill-${status}` },
        `${day.date}: ${n} ${status.replace("_", " ")}`));
    }
  });
  return chart;
}

export function durationLines(days) {
  const width = 600, height = 200, pad = 24;
  const values = days.flatMap((day) => [day.durationMs?.p50, day.durationMs?.p95]).filter((v) => v != null);
  const top = Math.max(1, ...values);
  const step = (width - pad) / Math.max(1, days.length - 1);
  const chart = svg(width, height, `Daily p50 and p95 duration; the highest p95 is ${top} ms`);
  for (const [key, cls] of [["p95", "line-p95"], ["p50", "line-p50"]]) {
    const points = days.map((day, i) => [pad + i * step, day.durationMs?.[key]])
      .filter(([, v]) => v != null)
      .map(([x, v]) => `${x},${height - pad - (v / top) * (height - pad - 16)}`);
    if (points.length) chart.append(mark("polyline", { points: points.join(" "), class: cls, fill: "none" }, key));
  }
  return chart;
}
