// An experiment's report, drawn without knowing its strategy.
//
// A report with a presentation section ``view`` is drawn from it: the headline, the alerts
// (an "error" one as a banner, greying the charts it names), the tables and the charts (data
// inline, or read by path from each point of the experiment's timeline). A report without
// one is shown as what it is: its scalar fields, then each list or object as a table, and any
// object with ``fired: true`` as a loud alert.

import { draw, forget } from "./charts.js";
import { fmt, human, interval, num, pvalue } from "./format.js";
import { el } from "./live.js";

const LEVELS = ["error", "warning", "info"];

function same(node, key, value) {
  const text = JSON.stringify(value);
  if (node.dataset[key] === text) return true;
  node.dataset[key] = text;
  return false;
}

function setHeadline(headline) {
  const node = document.getElementById("headline");
  if (!node || same(node, "value", headline || "")) return;
  node.textContent = headline || "";
  node.hidden = !headline;
}

function setAlerts(alerts) {
  const box = document.getElementById("alerts");
  if (!box || same(box, "value", alerts)) return;
  box.replaceChildren(...alerts.map((a) => {
    const level = LEVELS.includes(a.level) ? a.level : "info";
    return el("div", {
      class: `alert alert-${level}`,
      role: level === "error" ? "alert" : "status",
      "data-alert": a.id || "",
      "data-level": level,
    }, el("strong", {}, a.title || a.id || "Alert"), a.message || "");
  }));
}

// ------------------------------------------------------------------ tables

function ciBar(v, scale) {
  if (!scale || v === null || typeof v !== "object") return null;
  const { lo, hi } = scale;
  const span = hi - lo || 1;
  const pos = (x) => `${Math.min(Math.max((x - lo) / span, 0), 1) * 100}%`;
  if (typeof v.low !== "number" || typeof v.high !== "number") return null;
  const bar = el("span", { class: "ci-bar", "aria-hidden": "true" });
  const range = el("span");
  range.style.left = pos(v.low);
  range.style.width = `calc(${pos(v.high)} - ${pos(v.low)})`;
  bar.append(range);
  if (lo < 0 && hi > 0) {
    const zero = el("b");
    zero.style.left = pos(0);
    bar.append(zero);
  }
  if (typeof v.estimate === "number") {
    const mark = el("i");
    mark.style.left = pos(v.estimate);
    bar.append(mark);
  }
  return bar;
}

function scaleOf(rows, key) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const row of rows) {
    const v = row[key];
    if (v && typeof v === "object") {
      for (const x of [v.low, v.high, v.estimate]) {
        if (typeof x === "number" && Number.isFinite(x)) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
      }
    }
  }
  return Number.isFinite(lo) ? { lo, hi } : null;
}

function tableNode(spec) {
  const columns = spec.columns || [];
  const rows = spec.rows || [];
  const scales = {};
  for (const c of columns) if (c.format === "ci" || c.format === "pct_ci") scales[c.key] = scaleOf(rows, c.key);
  const numeric = new Set(["int", "num", "pct", "ms", "p", "ci", "pct_ci"]);
  return el("div", { class: "table-wrap" }, el("table", { class: "data", "data-table": spec.id || "" },
    spec.title ? el("caption", {}, spec.title) : null,
    el("thead", {}, el("tr", {}, ...columns.map((c) =>
      el("th", { scope: "col", class: numeric.has(c.format) ? "num" : "" }, c.label ?? c.key)))),
    el("tbody", {}, ...rows.map((row) => el("tr", {}, ...columns.map((c, i) => {
      const v = row[c.key];
      const cell = el(i === 0 ? "th" : "td", { scope: i === 0 ? "row" : null,
        class: numeric.has(c.format) ? "num" : "" }, fmt(v, c.format));
      const bar = ciBar(v, scales[c.key]);
      if (bar) cell.append(bar);
      return cell;
    }))))));
}

// ------------------------------------------------------------------ charts

function at(point, path) {
  if (!path) return null;
  if (Object.prototype.hasOwnProperty.call(point, path)) return point[path];
  let v = point;
  for (const part of String(path).split(".")) {
    if (v === null || typeof v !== "object") return null;
    v = v[part];
  }
  return v === undefined ? null : v;
}

/** A chart spec with its series' data: inline, or read from the timeline's points. */
export function resolveChart(spec, points) {
  if (spec.source !== "timeline") return spec;
  const xs = (points || []).map((p) => p.ts);
  return {
    ...spec,
    series: (spec.series || []).map((s) => ({
      label: s.label,
      dashed: !!s.dashed,
      x: xs,
      y: points.map((p) => at(p, s.path)),
      ...(s.low_path && s.high_path ? {
        low: points.map((p) => at(p, s.low_path)),
        high: points.map((p) => at(p, s.high_path)),
      } : {}),
    })),
  };
}

function chartFigure(container, spec) {
  const id = `chart-${spec.id}`;
  let figure = container.querySelector(`figure[data-chart="${CSS.escape(spec.id)}"]`);
  if (!figure) {
    figure = el("figure", { class: "chart", id, "data-chart": spec.id },
      el("figcaption", {}, spec.title || spec.id), el("div", { class: "plot" }));
    container.append(figure);
  }
  return figure;
}

function grey(node, reasons) {
  const greyed = reasons.length > 0;
  node.classList.toggle("greyed", greyed);
  node.dataset.greyed = greyed ? "true" : "false";
  let note = node.previousElementSibling;
  if (!note || !note.classList.contains("greyed-note")) note = null;
  if (greyed && !note) {
    note = el("p", { class: "greyed-note" });
    node.before(note);
  }
  if (note) {
    if (greyed) note.textContent = `Greyed out: ${reasons.join("; ")}. Do not read it until that is resolved.`;
    else note.remove();
  }
}

// ------------------------------------------------------------------ view

function section(body, key, title) {
  let node = body.querySelector(`section[data-key="${CSS.escape(key)}"]`);
  if (!node) {
    node = el("section", { "data-key": key }, el("h3", {}, title));
    body.append(node);
  }
  return node;
}

export function renderView(body, view, points) {
  setHeadline(view.headline);
  const alerts = Array.isArray(view.alerts) ? view.alerts : [];
  setAlerts(alerts);
  const greys = {};
  for (const a of alerts) for (const id of a.greys || []) (greys[id] = greys[id] || []).push(a.title || a.id);
  const wanted = new Set();
  for (const t of view.tables || []) {
    const key = `table:${t.id}`;
    wanted.add(key);
    const node = section(body, key, t.title || t.id);
    if (!same(node, "value", t)) {
      node.replaceChildren(el("h3", {}, t.title || t.id), tableNode({ ...t, title: null }));
    }
    grey(node.querySelector(".table-wrap"), greys[t.id] || []);
  }
  const charts = view.charts || [];
  if (charts.length) {
    const key = "charts";
    wanted.add(key);
    const node = section(body, key, "Charts");
    let grid = node.querySelector(".charts");
    if (!grid) { grid = el("div", { class: "charts" }); node.append(grid); }
    const ids = new Set(charts.map((c) => c.id));
    for (const f of grid.querySelectorAll("figure[data-chart]")) {
      if (!ids.has(f.dataset.chart)) { forget(f); f.remove(); }
    }
    for (const spec of charts) {
      const figure = chartFigure(grid, spec);
      const resolved = resolveChart(spec, points);
      if (spec.source === "timeline" && points === null) {
        figure.dataset.points = "0";
        let note = figure.querySelector(".note");
        if (!note) {
          note = el("p", { class: "note" });
          figure.querySelector(".plot").before(note);
        }
        note.textContent = "This experiment has no timeline yet.";
        continue;
      }
      draw(figure, resolved);
      const plot = figure.querySelector(".plot");
      grey(plot, greys[spec.id] || []);
    }
  }
  for (const node of body.querySelectorAll("section[data-key]")) {
    if (!wanted.has(node.dataset.key)) node.remove();
  }
  const loading = body.querySelector(".loading");
  if (loading) loading.remove();
}

// ------------------------------------------------------------------ without a view

function isScalar(v) {
  return v === null || ["string", "number", "boolean"].includes(typeof v);
}

function isIntervalObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v) && "ci_low" in v && "ci_high" in v;
}

function flatten(obj, prefix = "", out = {}, depth = 0) {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isIntervalObject(v)) {
      out[key] = { estimate: v.estimate ?? v.mean ?? null, low: v.ci_low, high: v.ci_high };
    } else if (v !== null && typeof v === "object" && !Array.isArray(v) && depth < 2) {
      flatten(v, key, out, depth + 1);
    } else {
      out[key] = v;
    }
  }
  return out;
}

function cellText(key, v) {
  if (v !== null && typeof v === "object" && !Array.isArray(v) && "low" in v && "high" in v) return interval(v, num);
  if (typeof v === "number" && /(^|[._])p_value$/.test(key)) return pvalue(v);
  if (Array.isArray(v)) {
    if (!v.length) return "—";
    return v.every(isScalar) ? v.join(", ") : JSON.stringify(v);
  }
  return fmt(v, null);
}

function itemLabel(item, fallback) {
  const strings = Object.values(item).filter((v) => typeof v === "string").slice(0, 2);
  return strings.length ? strings.join(" · ") : String(fallback);
}

function genericTable(value) {
  // value: a list of objects, or an object of objects
  const entries = Array.isArray(value)
    ? value.map((item, i) => [itemLabel(item, i + 1), item])
    : Object.entries(value).map(([k, item]) => [k, item]);
  const flat = entries.map(([label, item]) => [label, flatten(item)]);
  const keys = [];
  for (const [, f] of flat) for (const k of Object.keys(f)) if (!keys.includes(k)) keys.push(k);
  const shown = keys.filter((k) => flat.some(([, f]) => f[k] !== null && f[k] !== undefined));
  const transpose = shown.length > 8;
  let head;
  let rows;
  if (transpose) {
    head = ["", ...flat.map(([label]) => label)];
    rows = shown.map((k) => [human(k), ...flat.map(([, f]) => [k, f[k]])]);
  } else {
    head = ["", ...shown.map(human)];
    rows = flat.map(([label, f]) => [label, ...shown.map((k) => [k, f[k]])]);
  }
  return el("div", { class: "table-wrap" }, el("table", { class: "data" },
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...rows.map(([first, ...cells]) => el("tr", {},
      el("th", { scope: "row" }, first),
      ...cells.map(([k, v]) => el("td", { class: typeof v === "number" || (v && typeof v === "object") ? "num" : "" }, cellText(k, v))))))));
}

function kvList(obj) {
  return el("dl", { class: "kvlist" }, ...Object.entries(obj).map(([k, v]) =>
    el("div", {}, el("dt", {}, human(k)), el("dd", {}, cellText(k, v)))));
}

/** Objects anywhere in the report (three levels deep) with ``fired: true``. */
export function firedChecks(report) {
  const found = [];
  const walk = (v, key, depth) => {
    if (v === null || typeof v !== "object" || depth > 3) return;
    if (!Array.isArray(v) && v.fired === true) {
      found.push({ id: key, level: "error", title: key.length <= 4 ? key.toUpperCase() : human(key),
        message: typeof v.message === "string" ? v.message : JSON.stringify(v) });
    }
    for (const [k, child] of Object.entries(v)) walk(child, Array.isArray(v) ? key : k, depth + 1);
  };
  walk(report, "report", 0);
  return found;
}

function fallbackHeadline(report) {
  if (typeof report.headline === "string") return report.headline;
  const d = report.decision;
  if (typeof d === "string") return d;
  if (d && typeof d === "object") return d.reason || d.code || d.action || "";
  return "";
}

export function renderFallback(body, report) {
  setHeadline(fallbackHeadline(report));
  const alerts = firedChecks(report);
  setAlerts(alerts);
  if (same(body, "value", report)) return;
  const fired = new Set(alerts.map((a) => a.id));
  const reasons = alerts.map((a) => a.title);
  const scalars = {};
  const parts = [];
  for (const [key, value] of Object.entries(report)) {
    if (key === "view") continue;
    if (isScalar(value)) { scalars[key] = value; continue; }
    let node;
    if (Array.isArray(value)) {
      if (value.length === 0) node = el("p", { class: "muted" }, "none");
      else if (value.every((v) => v !== null && typeof v === "object" && !Array.isArray(v))) node = genericTable(value);
      else node = el("p", {}, value.map((v) => (isScalar(v) ? fmt(v, null) : JSON.stringify(v))).join(", "));
    } else if (Object.values(value).length && Object.values(value).every((v) => v !== null && typeof v === "object" && !Array.isArray(v))) {
      node = genericTable(value);
    } else {
      node = kvList(flatten(value));
    }
    const part = el("section", { "data-key": key }, el("h3", {}, human(key)), node);
    if (reasons.length && !fired.has(key)) {
      part.classList.add("greyed");
      part.dataset.greyed = "true";
      part.prepend(el("p", { class: "greyed-note" }, `Greyed out: ${reasons.join("; ")}. Do not read it until that is resolved.`));
    }
    parts.push(part);
  }
  const summary = el("section", { "data-key": "summary" }, el("h3", {}, "Summary"), kvList(scalars));
  body.replaceChildren(summary, ...parts);
}

/** Draw ``report`` into ``body``; ``points`` is the timeline (null when there is none). */
export function renderReport(body, report, points) {
  if (report && report.view && typeof report.view === "object") {
    if (body.dataset.mode !== "view") { body.replaceChildren(); body.dataset.mode = "view"; delete body.dataset.value; }
    renderView(body, report.view, points);
  } else {
    if (body.dataset.mode !== "fallback") { body.replaceChildren(); body.dataset.mode = "fallback"; }
    renderFallback(body, report || {});
  }
}

/** Whether drawing ``report`` needs the experiment's timeline. */
export function needsTimeline(report) {
  const charts = (report && report.view && report.view.charts) || [];
  return charts.some((c) => c.source === "timeline");
}
