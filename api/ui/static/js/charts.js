// Small SVG charts drawn from data (no library): a sparkline of recent runs, stacked bars, two lines.
// Every chart carries a text equivalent (role="img" + aria-label, and <title> per mark for hover).

const SVG = "http://www.w3.org/2000/svg";
export const STATUS_ORDER = ["succeeded", "failed", "timed_out", "abandoned", "canceled", "skipped", "running", "queued"];

function svg(width, height, label, stretch = false) {
  const node = document.createElementNS(SVG, "svg");
  node.setAttribute("viewBox", `0 0 ${width} ${height}`);
  node.setAttribute("role", "img");
  node.setAttribute("aria-label", label);
  if (stretch) node.setAttribute("preserveAspectRatio", "none");
  return node;
}

function text(x, y, content, anchor = "start") {
  const node = mark("text", { x, y, class: "axis", "text-anchor": anchor });
  node.textContent = content;
  return node;
}

// The first, middle and last dates under the plot, and the top of the scale at its left.
function axes(chart, days, { left, right, bottom, top, topLabel }) {
  chart.append(text(left - 4, top + 4, topLabel, "end"), text(left - 4, bottom, "0", "end"));
  chart.append(mark("line", { x1: left, y1: bottom, x2: right, y2: bottom, class: "axis-line" }));
  const picks = [...new Set([0, Math.floor((days.length - 1) / 2), days.length - 1])].filter((i) => i >= 0);
  for (const i of picks) {
    const x = left + ((i + 0.5) * (right - left)) / days.length;
    chart.append(text(x, bottom + 14, days[i].date.slice(5), "middle"));
  }
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

// Oldest left, newest at the right edge; bar height is the run's duration relative to the longest, at least
// a sliver.
export function sparkline(runs) {
  const ordered = [...runs].reverse();
  const width = 100, height = 20, slot = width / 20, offset = 20 - ordered.length;
  const longest = Math.max(1, ...ordered.map((run) => run.durationMs || 0));
  const label = ordered.length ? `Last ${ordered.length} runs: ${tally(ordered.map((r) => r.status))}` : "No runs yet";
  const chart = svg(width, height, label, true);
  chart.classList.add("sparkline");
  ordered.forEach((run, i) => {
    const h = Math.max(4, ((run.durationMs || 0) / longest) * height);
    chart.append(mark("rect", {
      x: (offset + i) * slot + 0.5, y: height - h, width: slot - 1, height: h, class: `fill-${run.status}`,
    }, `${run.status.replace("_", " ")}${run.durationMs != null ? `, ${run.durationMs} ms` : ""}`));
  });
  return chart;
}

export function stackedBars(days) {
  const width = 640, height = 220, left = 44, right = 636, top = 10, bottom = 196;
  const totals = days.map((day) => Object.values(day.counts || {}).reduce((a, b) => a + b, 0));
  const most = Math.max(1, ...totals);
  const slot = (right - left) / Math.max(1, days.length);
  const chart = svg(width, height, `Runs per day over ${days.length} days, ${totals.reduce((a, b) => a + b, 0)} in all; the busiest day had ${most}`);
  axes(chart, days, { left, right, bottom, top, topLabel: String(most) });
  days.forEach((day, i) => {
    let y = bottom;
    for (const status of STATUS_ORDER) {
      const n = (day.counts || {})[status] || 0;
      if (!n) continue;
      const h = (n / most) * (bottom - top);
      y -= h;
      chart.append(mark("rect", { x: left + i * slot + 1, y, width: Math.max(1, slot - 2), height: h, class: `fill-${status}` },
        `${day.date}: ${n} ${status.replace("_", " ")}`));
    }
  });
  return chart;
}

export function durationLines(days, formatDuration) {
  const width = 640, height = 220, left = 44, right = 636, top = 10, bottom = 196;
  const values = days.flatMap((day) => [day.durationMs?.p50, day.durationMs?.p95]).filter((v) => v != null);
  const most = Math.max(1, ...values);
  const slot = (right - left) / Math.max(1, days.length);
  const chart = svg(width, height, `Daily p50 and p95 duration; the highest p95 is ${formatDuration(most)}`);
  axes(chart, days, { left, right, bottom, top, topLabel: formatDuration(most) });
  for (const key of ["p95", "p50"]) {
    const points = days.map((day, i) => [left + (i + 0.5) * slot, day.durationMs?.[key], day.date])
      .filter(([, v]) => v != null);
    const y = (v) => bottom - (v / most) * (bottom - top);
    if (points.length > 1) {
      chart.append(mark("polyline", { points: points.map(([x, v]) => `${x},${y(v)}`).join(" "), class: `line-${key}`, fill: "none" }));
    }
    for (const [x, v, date] of points) {
      chart.append(mark("circle", { cx: x, cy: y(v), r: 3, class: `dot-${key}` }, `${date}: ${key} ${formatDuration(v)}`));
    }
  }
  return chart;
}
