// The deployments page: each deployment's traffic and error rate over the last hour, from
// GET /api/deployments/{name}/metrics (its per-version totals, added up), refreshed.

import "./charts.js"; // window.champion.charts, where the sparklines are kept
import { int, pct } from "./format.js";
import { every, getJSON, pool } from "./live.js";

const HOUR = 3600;

async function aliases(row, name) {
  const data = await getJSON(`/api/deployments/${encodeURIComponent(name)}/aliases`);
  const other = Object.entries(data.aliases || {})
    .filter(([alias]) => alias !== "latest" && alias !== "production")
    .sort(([a], [b]) => a.localeCompare(b));
  const cell = row.querySelector('[data-field="aliases"]');
  cell.replaceChildren(...other.map(([alias, v]) => {
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.textContent = `${alias} → ${v}`;
    return chip;
  }));
  if (!other.length) cell.textContent = "—";
}

async function figures(row, name) {
  const until = Math.ceil(Date.now() / 1000);  // ceil: the range holds every request up to now
  const url = `/api/deployments/${encodeURIComponent(name)}/metrics?since=${until - HOUR}&until=${until}&bucket=60`;
  const data = await getJSON(url);
  let requests = 0;
  let errors = 0;
  const perMinute = new Map();
  for (const v of data.versions || []) {
    requests += v.totals.requests;
    errors += v.totals.errors;
    for (const b of v.buckets) perMinute.set(b.start, (perMinute.get(b.start) || 0) + b.requests);
  }
  row.querySelector('[data-field="requests"]').textContent = int(requests);
  row.querySelector('[data-field="error_rate"]').textContent = requests ? pct(errors / requests) : "—";
  const xs = [...perMinute.keys()].sort((a, b) => a - b);
  const spark = row.querySelector('[data-field="spark"]');
  spark.setAttribute("role", "img");
  spark.setAttribute("aria-label", `${int(requests)} requests in the last hour`);
  sparkline(spark, name, xs, xs.map((x) => perMinute.get(x)));
}

const sparks = new Map();

function sparkline(node, name, xs, ys) {
  const data = [xs, ys];
  const existing = sparks.get(node);
  if (existing) { existing.setData(data); return; }
  if (!xs.length) return;
  const color = getComputedStyle(document.documentElement).getPropertyValue("--series-1").trim() || "#2563eb";
  const plot = new uPlot({
    width: 140, height: 32, legend: { show: false }, cursor: { show: false },
    axes: [{ show: false }, { show: false }],
    scales: { x: { time: true } },
    series: [{}, { stroke: color, width: 1.5, points: { show: xs.length < 3, size: 4 } }],
  }, data, node);
  sparks.set(node, plot);
  window.champion.charts[`spark-${name}`] = { series: [{ label: "requests", x: xs, y: ys }], data };
}

export function start() {
  const rows = [...document.querySelectorAll("tr[data-deployment]")];
  pool(rows, 4, (row) => aliases(row, row.dataset.deployment));
  every(5, () => pool(rows, 4, (row) => figures(row, row.dataset.deployment)));
}
