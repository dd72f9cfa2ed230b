// Formatting figures for tables, axes and legends: one function per format name of the
// report's presentation contract (text, int, num, pct, ms, p, time, ci, pct_ci).

const DASH = "—";

function finite(v) {
  return typeof v === "number" && Number.isFinite(v);
}

export function num(v, digits = 4) {
  if (!finite(v)) return DASH;
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (Number.isInteger(v) && a < 1e15) return v.toLocaleString("en-US");
  if (a >= 1e6 || a < 1e-4) return v.toExponential(2);
  return Number(v.toPrecision(digits)).toLocaleString("en-US", { maximumFractionDigits: 8 });
}

export function int(v) {
  return finite(v) ? Math.round(v).toLocaleString("en-US") : DASH;
}

export function pct(v, digits = 2) {
  if (!finite(v)) return DASH;
  const p = v * 100;
  const d = Math.abs(p) >= 10 ? Math.max(digits - 1, 0) : digits;
  return `${p.toFixed(d)}%`;
}

export function ms(v) {
  if (!finite(v)) return DASH;
  if (v >= 1000) return `${(v / 1000).toPrecision(3)} s`;
  return `${Number(v.toPrecision(3))} ms`;
}

export function pvalue(v) {
  if (!finite(v)) return DASH;
  if (v < 0.001) return "< 0.001";
  return v.toFixed(3);
}

function isInterval(v) {
  return v !== null && typeof v === "object" && ("low" in v || "high" in v);
}

export function time(v) {
  if (!finite(v)) return DASH;
  return new Date(v * 1000).toLocaleTimeString();
}

export function interval(v, one = num) {
  if (!isInterval(v)) return one(v);
  return `${one(v.estimate)} [${one(v.low)}, ${one(v.high)}]`;
}

/** The text of ``value`` in ``format`` (unknown formats: as text). */
export function fmt(value, format) {
  if (value === null || value === undefined) return DASH;
  switch (format) {
    case "int": return int(value);
    case "num": return num(value);
    case "pct": return pct(value);
    case "ms": return ms(value);
    case "p": return pvalue(value);
    case "time": return time(value);
    case "ci": return interval(value, num);
    case "pct_ci": return interval(value, pct);
    default:
      if (typeof value === "boolean") return value ? "yes" : "no";
      if (typeof value === "number") return num(value);
      if (typeof value === "object") return JSON.stringify(value);
      return String(value);
  }
}

/** A short axis label for ``v`` in ``format``. */
export function axis(v, format) {
  if (!finite(v)) return "";
  switch (format) {
    case "pct": return `${Number((v * 100).toPrecision(3))}%`;
    case "ms": return v >= 1000 ? `${Number((v / 1000).toPrecision(3))} s` : `${Number(v.toPrecision(3))} ms`;
    case "p": return v < 0.001 ? v.toExponential(0) : String(Number(v.toPrecision(2)));
    case "int": return Math.abs(v) >= 1e4 ? v.toExponential(1) : String(Math.round(v));
    default: return Math.abs(v) >= 1e5 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(1) : String(Number(v.toPrecision(4)));
  }
}

export function when(ts) {
  if (!finite(ts)) return DASH;
  const d = new Date(ts * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "error_rate" -> "error rate", "latency_ms.p50" -> "latency ms › p50". */
export function human(key) {
  return String(key).split(".").map((part) => part.replace(/_/g, " ")).join(" › ");
}
