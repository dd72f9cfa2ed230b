// One experiment: its report (GET /api/experiments/{id}/report) drawn from the report's own
// presentation section, its timeline when the report plots one, and its fields and history
// (re-rendered by the server when its status or history changes), refreshed.

import { every, getJSON, localTimes } from "./live.js";
import { needsTimeline, renderReport } from "./report.js";

const id = document.body.dataset.experiment;
const api = `/api/experiments/${encodeURIComponent(id)}`;
let points = [];
let hasTimeline = true;
let lastStatus = null;

async function timeline() {
  if (!hasTimeline) return null;
  const last = points.length ? points[points.length - 1].ts : null;
  const url = `${api}/timeline${last !== null ? `?since=${encodeURIComponent(last)}` : ""}`;
  try {
    const data = await getJSON(url);
    const fresh = (data.points || []).filter((p) => last === null || p.ts > last);
    points = points.concat(fresh);
  } catch (err) {
    if (err.status === 404) { hasTimeline = false; return null; }
    throw err;
  }
  return points;
}

async function fields() {
  const data = await getJSON(api);
  const holder = document.getElementById("experiment-fields");
  const revision = `${data.status}:${(data.history || []).length}`;
  lastStatus = data.status;
  if (holder.dataset.revision === revision) return;
  const response = await fetch(`/ui/experiments/${encodeURIComponent(id)}?fragment=fields`,
    { credentials: "same-origin", cache: "no-store" });
  if (!response.ok) return;
  const focused = document.activeElement && holder.contains(document.activeElement);
  if (focused) return; // do not pull a form from under the reader; try again next time
  holder.innerHTML = await response.text();
  holder.dataset.revision = revision;
  localTimes(holder);
  const badge = document.getElementById("experiment-status");
  if (badge) { badge.textContent = data.status; badge.className = `status status-${data.status}`; }
}

async function report() {
  const data = await getJSON(`${api}/report`);
  const pts = needsTimeline(data) ? await timeline() : [];
  renderReport(document.getElementById("report-body"), data, pts);
  window.champion.report = data;
}

export function start() {
  let ticks = 0;
  every(5, async () => {
    ticks += 1;
    // a stopped experiment's figures no longer move: look again every minute
    if (lastStatus === "stopped" && ticks % 12 !== 1) return;
    await Promise.all([report(), fields()]);
  });
}
