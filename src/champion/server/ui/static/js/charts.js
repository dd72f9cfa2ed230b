// Charts with uPlot, from one spec shape (the report's presentation contract):
//   {id, title, kind: line|step|band|bar, x_format: time|num|text, y_format, log_y,
//    series: [{label, x: [...], y: [...], low?: [...], high?: [...], dashed?}]}
// Each drawn chart is kept in ``window.champion.charts[id]`` with exactly the series it was
// given, so a test (or a curious reader at the console) can compare it with the API's data.

import { axis, fmt, when } from "./format.js";
import { el } from "./live.js";

window.champion = window.champion || { charts: {} };
const registry = window.champion.charts;
const live = new Map(); // figure element -> Chart

function css(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

function palette() {
  return Array.from({ length: 8 }, (_, i) => css(`--series-${i + 1}`, "#2563eb"));
}

function withAlpha(color, alpha) {
  const m = /^#([0-9a-f]{6})$/i.exec(color);
  if (!m) return color;
  const n = parseInt(m[1], 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

/** The series as uPlot's aligned data: [x, y0, (low0, high0), y1, ...]; the categories of a
 *  text x axis; and which columns hold each series. */
export function align(spec) {
  const text = spec.x_format === "text";
  const cats = [];
  if (text) {
    for (const s of spec.series) for (const x of s.x || []) if (!cats.includes(x)) cats.push(x);
  }
  const logY = !!spec.log_y;
  const clean = (v) => (typeof v === "number" && Number.isFinite(v) && (!logY || v > 0) ? v : null);
  const tables = [];
  const columns = [];
  let col = 1;
  for (const s of spec.series) {
    const xs = (s.x || []).map((x) => (text ? cats.indexOf(x) : x));
    const order = xs.map((_, i) => i).filter((i) => typeof xs[i] === "number")
      .sort((a, b) => xs[a] - xs[b]);
    const seen = new Set();
    const keep = order.filter((i) => (seen.has(xs[i]) ? false : seen.add(xs[i])));
    const table = [keep.map((i) => xs[i]), keep.map((i) => clean((s.y || [])[i]))];
    const band = Array.isArray(s.low) && Array.isArray(s.high);
    if (band) {
      table.push(keep.map((i) => clean(s.low[i])), keep.map((i) => clean(s.high[i])));
    }
    columns.push({ y: col, low: band ? col + 1 : null, high: band ? col + 2 : null });
    col += band ? 3 : 1;
    tables.push(table);
  }
  let data;
  if (tables.length === 0) data = [[]];
  else if (tables.length === 1) data = tables[0];
  else data = uPlot.join(tables);
  return { data, cats, columns };
}

function whiskers(columns, colors) {
  // bars with intervals: a vertical line from low to high at each bar
  return (u) => {
    const ctx = u.ctx;
    ctx.save();
    columns.forEach((c, si) => {
      if (c.low === null) return;
      ctx.strokeStyle = colors[si];
      ctx.lineWidth = 2 * devicePixelRatio;
      const xs = u.data[0];
      for (let i = 0; i < xs.length; i++) {
        const lo = u.data[c.low][i];
        const hi = u.data[c.high][i];
        if (lo === null || hi === null || lo === undefined || hi === undefined) continue;
        const x = u.valToPos(xs[i], "x", true);
        ctx.beginPath();
        ctx.moveTo(x, u.valToPos(lo, "y", true));
        ctx.lineTo(x, u.valToPos(hi, "y", true));
        ctx.stroke();
      }
    });
    ctx.restore();
  };
}

function options(spec, aligned, width) {
  const colors = palette();
  const fg = css("--fg", "#1b1f24");
  const grid = css("--grid", "rgba(0,0,0,.08)");
  const kind = spec.kind || "line";
  const yf = spec.y_format || "num";
  const series = [{ label: spec.x_format === "time" ? "time" : "x",
    value: (u, v) => (v === null ? "—" : spec.x_format === "time" ? when(v)
      : spec.x_format === "text" ? String(aligned.cats[v] ?? "") : fmt(v, "num")) }];
  const bands = [];
  const seriesColors = [];
  spec.series.forEach((s, i) => {
    const color = colors[(s.color ?? i) % colors.length];
    seriesColors.push(color);
    let paths;
    if (kind === "step") paths = uPlot.paths.stepped({ align: 1 });
    else if (kind === "bar") paths = uPlot.paths.bars({ size: [0.6, 80] });
    const dash = s.dash || (s.dashed ? [6, 4] : undefined);
    const n = (s.x || []).length;
    series.push({
      label: s.label,
      stroke: color,
      width: 2,
      dash,
      paths,
      fill: kind === "bar" ? withAlpha(color, 0.5) : undefined,
      spanGaps: kind !== "bar",
      points: { show: kind !== "bar" && n <= 40, size: 5 },
      value: (u, v) => fmt(v, yf),
    });
    const c = aligned.columns[i];
    if (c.low !== null) {
      const edge = { stroke: withAlpha(color, 0.45), width: kind === "bar" ? 0 : 1,
        points: { show: false }, spanGaps: true, value: (u, v) => fmt(v, yf) };
      series.push({ ...edge, label: `${s.label} low` });
      series.push({ ...edge, label: `${s.label} high` });
      if (kind !== "bar") bands.push({ series: [c.high, c.low], fill: withAlpha(color, 0.16) });
    }
  });
  const xAxis = { stroke: fg, grid: { stroke: grid }, ticks: { stroke: grid } };
  const scales = { x: { time: spec.x_format === "time" }, y: {} };
  if (spec.x_format === "text") {
    const n = aligned.cats.length;
    scales.x.range = () => [-0.5, Math.max(n - 0.5, 0.5)];
    xAxis.incrs = [1];
    xAxis.values = (u, splits) => splits.map((v) => (Number.isInteger(v) ? String(aligned.cats[v] ?? "") : ""));
  } else if (spec.x_format === "num") {
    xAxis.values = (u, splits) => splits.map((v) => axis(v, "num"));
  }
  if (spec.log_y) scales.y.distr = 3;
  if (kind === "bar") scales.y.range = (u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1];
  else if (yf === "pct" && !spec.log_y) {
    // a rate: from 0, and at least up to 1 % (all-zero error rates stay readable)
    scales.y.range = (u, min, max) => [Math.min(0, min ?? 0), Math.max(max ?? 0, 0.01) * 1.05];
  }
  return {
    width,
    height: 240,
    series,
    bands,
    scales,
    axes: [xAxis, { stroke: fg, grid: { stroke: grid }, ticks: { stroke: grid }, size: 64,
      values: (u, splits) => splits.map((v) => axis(v, yf)) }],
    legend: { live: true },
    cursor: { focus: { prox: 24 } },
    hooks: kind === "bar" ? { draw: [whiskers(aligned.columns, seriesColors)] } : {},
  };
}

function dataTable(spec, aligned) {
  const head = ["x", ...spec.series.flatMap((s, i) =>
    aligned.columns[i].low !== null ? [s.label, `${s.label} low`, `${s.label} high`] : [s.label])];
  const rows = aligned.data[0].map((x, r) => [x, ...aligned.data.slice(1).map((col) => col[r])]);
  const shown = rows.slice(-200);
  const table = el("table", { class: "data" },
    el("caption", {}, rows.length > shown.length ? `the last ${shown.length} of ${rows.length} points` : `${rows.length} points`),
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...shown.map((row) => el("tr", {}, ...row.map((v, i) => el("td", { class: i ? "num" : "" },
      i === 0 ? (spec.x_format === "time" ? when(v) : spec.x_format === "text" ? String(aligned.cats[v] ?? v) : fmt(v, "num"))
        : fmt(v, spec.y_format || "num")))))));
  return table;
}

class Chart {
  constructor(figure, spec) {
    this.figure = figure;
    this.plotEl = figure.querySelector(".plot") || figure.appendChild(el("div", { class: "plot" }));
    this.details = el("details", {}, el("summary", {}, "Data"));
    this.details.addEventListener("toggle", () => this.fillTable());
    figure.append(this.details);
    this.note = null;
    this.plot = null;
    this.shape = "";
    this.update(spec);
    this.resizer = new ResizeObserver(() => {
      if (this.plot) this.plot.setSize({ width: this.width(), height: 240 });
    });
    this.resizer.observe(this.plotEl);
  }

  width() {
    return Math.max(this.plotEl.clientWidth || this.figure.clientWidth || 600, 200);
  }

  update(spec) {
    this.spec = spec;
    const aligned = align(spec);
    this.aligned = aligned;
    const shape = JSON.stringify([spec.kind, spec.x_format, spec.y_format, spec.log_y,
      spec.series.map((s) => [s.label, s.color, s.dashed, s.dash, aligned.columns.length]),
      aligned.columns, aligned.cats]);
    const empty = aligned.data[0].length === 0;
    this.figure.dataset.points = String(aligned.data[0].length);
    registry[spec.id] = { spec, series: spec.series, data: aligned.data, cats: aligned.cats };
    this.setNote(empty ? "No data yet." : null);
    if (this.plot && shape === this.shape) {
      this.plot.setData(aligned.data);
    } else {
      if (this.plot) this.plot.destroy();
      this.plot = new uPlot(options(spec, aligned, this.width()), aligned.data, this.plotEl);
      this.shape = shape;
    }
    registry[spec.id].plot = this.plot;
    if (this.details.open) this.fillTable();
  }

  fillTable() {
    if (!this.details.open) return;
    for (const t of this.details.querySelectorAll("table")) t.remove();
    this.details.append(dataTable(this.spec, this.aligned));
  }

  setNote(text) {
    if (!text) {
      if (this.note) this.note.remove();
      this.note = null;
      return;
    }
    if (!this.note) {
      this.note = el("p", { class: "note" });
      this.plotEl.before(this.note);
    }
    this.note.textContent = text;
  }

  redraw() {
    if (this.plot) this.plot.destroy();
    this.plot = null;
    this.shape = "";
    this.update(this.spec);
  }
}

/** Draw (or update) ``spec`` in ``figure`` (a <figure> with a .plot inside). */
export function draw(figure, spec) {
  let chart = live.get(figure);
  if (chart) chart.update(spec);
  else {
    figure.setAttribute("role", "group");
    figure.setAttribute("aria-label", spec.title || spec.id);
    chart = new Chart(figure, spec);
    live.set(figure, chart);
  }
  return chart;
}

export function forget(figure) {
  const chart = live.get(figure);
  if (chart) {
    chart.resizer.disconnect();
    if (chart.plot) chart.plot.destroy();
  }
  live.delete(figure);
}

// Colours follow the reader's scheme: redraw when it changes.
window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
  for (const chart of live.values()) chart.redraw();
});
