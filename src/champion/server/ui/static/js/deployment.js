// One deployment: per-version requests, latency percentiles and error rate over time (from
// GET /api/deployments/{name}/metrics) and the latest requests with their feedback (from
// GET /api/deployments/{name}/logs?feedback=1), refreshed.

import { draw } from "./charts.js";
import { fmt, int, ms, num, pct, when } from "./format.js";
import { every, getJSON, el } from "./live.js";

const name = document.body.dataset.deployment;
const base = `/api/deployments/${encodeURIComponent(name)}`;

function rangeSeconds() {
  const select = document.getElementById("range");
  return Number(select && select.value) || 3600;
}

function label(v) {
  return v.version === null ? "no version" : `version ${v.version}`;
}

export function metricsCharts(data) {
  const versions = data.versions || [];
  const xs = (v) => v.buckets.map((b) => b.start);
  const requests = {
    id: "requests", title: "Requests per bucket", kind: "line", x_format: "time", y_format: "int",
    series: versions.map((v, i) => ({ label: label(v), color: i, x: xs(v), y: v.buckets.map((b) => b.requests) })),
  };
  const dashes = { p50: [2, 3], p90: [6, 4], p99: undefined };
  const latency = {
    id: "latency", title: "Latency", kind: "line", x_format: "time", y_format: "ms", log_y: true,
    series: versions.flatMap((v, i) => ["p50", "p90", "p99"].map((q) => ({
      label: `${label(v)} ${q}`, color: i, dash: dashes[q], x: xs(v),
      y: v.buckets.map((b) => b.latency_ms[q]),
    }))),
  };
  const errors = {
    id: "errors", title: "Error rate", kind: "line", x_format: "time", y_format: "pct",
    series: versions.map((v, i) => ({ label: label(v), color: i, x: xs(v), y: v.buckets.map((b) => b.error_rate) })),
  };
  return [requests, latency, errors];
}

function totals(data) {
  const body = document.querySelector("#version-totals tbody");
  const versions = data.versions || [];
  if (!versions.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: "8", class: "muted" }, "No requests in this range.")));
    return;
  }
  body.replaceChildren(...versions.map((v) => {
    const t = v.totals;
    const feedback = Object.entries(t.feedback || {}).map(([m, f]) => `${m}: ${num(f.mean)} (${int(f.count)})`).join(", ");
    return el("tr", {},
      el("th", { scope: "row" }, label(v)),
      el("td", { class: "num" }, int(t.requests)),
      el("td", { class: "num" }, int(t.errors)),
      el("td", { class: "num" }, pct(t.error_rate)),
      el("td", { class: "num" }, ms(t.latency_ms.p50)),
      el("td", { class: "num" }, ms(t.latency_ms.p90)),
      el("td", { class: "num" }, ms(t.latency_ms.p99)),
      el("td", {}, [feedback, t.accuracy ? `accuracy ${pct(t.accuracy.accuracy)} of ${int(t.accuracy.labels)}` : ""].filter(Boolean).join("; ") || "—"));
  }));
}

async function figures() {
  const until = Math.ceil(Date.now() / 1000);  // ceil: the range holds every request up to now
  const since = until - rangeSeconds();
  const url = `${base}/metrics?since=${since}&until=${until}`;
  const data = await getJSON(url);
  totals(data);
  for (const spec of metricsCharts(data)) {
    draw(document.querySelector(`figure[data-chart="${spec.id}"]`), spec);
    window.champion.charts[spec.id].source = url;
  }
}

function clip(text, n = 120) {
  if (text === null || text === undefined) return "";
  const s = String(text);
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

async function latest() {
  const data = await getJSON(`${base}/logs?limit=25&feedback=1`);
  const body = document.querySelector("#latest-requests tbody");
  const rows = data.requests || [];
  if (!rows.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: "10", class: "muted" }, "No requests yet.")));
    return;
  }
  body.replaceChildren(...rows.map((r) => {
    const feedback = Object.entries(r.feedback || {}).map(([k, v]) => `${k}: ${fmt(v, null)}`).join(", ");
    const out = r.error || r.output;
    return el("tr", { "data-request": r.request_id },
      el("td", { class: "nowrap" }, when(r.ts)),
      el("td", { class: "rid" }, el("code", {}, r.request_id)),
      el("td", { class: "num" }, r.version ?? "—"),
      el("td", {}, r.arm ? `${r.arm} (${r.variant})` : r.variant || "—"),
      el("td", {}, r.unit || "—"),
      el("td", { class: "num" }, String(r.status)),
      el("td", { class: "num" }, ms(r.latency_ms)),
      el("td", { class: "clip", title: clip(r.input, 2000) }, clip(r.input) || "—"),
      el("td", { class: "clip", title: clip(out, 2000) }, clip(out) || "—"),
      el("td", {}, feedback || "—"));
  }));
}

export function start() {
  const refresh = () => Promise.all([figures(), latest()]);
  const select = document.getElementById("range");
  if (select) select.addEventListener("change", () => figures());
  every(5, refresh);
}
