"""Medians over repeats, ratios to the floor, and the markdown table."""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.systems import REFERENCE, SYSTEMS

KIND_LABEL = {"single": "1 row", "batch": "batch of 100"}
CHAMPION_PREFIX = "champion"


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """Per system: the median over repeats of every figure."""
    out: dict[str, Any] = {}
    for name, entry in results["systems"].items():
        runs = entry.get("runs", [])
        s: dict[str, Any] = {"status": entry["status"], "reason": entry.get("reason"),
                             "repeats": len(runs), "points": {}}
        for kind in results["meta"]["options"]["kinds"]:
            s["points"][kind] = {}
            for c in results["meta"]["options"]["concurrency"]:
                pts = [r["points"][kind][str(c)] for r in runs
                       if str(c) in r.get("points", {}).get(kind, {})]
                if not pts:
                    continue
                s["points"][kind][str(c)] = {
                    k: _median([p[k] for p in pts])
                    for k in ("rps", "p50_ms", "p90_ms", "p99_ms")
                } | {"errors": sum(p["errors"] for p in pts),
                     "requests": sum(p["requests"] for p in pts)}
        complete = [r for r in runs if "start" in r]
        s["peak_rss_mib"] = _median([r["peak_rss_bytes"] / 2**20 for r in complete])
        s["start"] = {k: _median([r["start"].get(k) for r in complete])
                      for k in (complete[0]["start"] if complete else {})}
        raw = [r["raw_single"]["p50_s"] for r in runs if "raw_single" in r]
        s["raw_single_p50_s"] = _median(raw)
        out[name] = s
    return out


def in_process_summary(results: dict[str, Any]) -> dict[str, float | None]:
    rows = results["in_process"]
    keys = rows[0].keys() if rows else []
    return {k: _median([r[k] for r in rows]) for k in keys}


# ---------------------------------------------------------------------------- formatting


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _ms(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def _time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{_ms(seconds * 1e3)} ms"
    return f"{seconds:.2f} s"


def _point(summary: dict[str, Any], name: str, kind: str, c: int, key: str) -> float | None:
    s = summary.get(name)
    if not s or not s.get("repeats"):
        return None
    value: float | None = s["points"].get(kind, {}).get(str(c), {}).get(key)
    return value


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


# (figure, target, how it is read from one run); "ge"/"le": the ratio must be >= / <= target
TARGETS: list[tuple[str, str, float, Any]] = [
    ("champion ÷ floor with 2 workers, 1 row, c=8", "ge", 0.8,
     lambda s: _div(_point(s, "champion", "single", 8, "rps"),
                    _point(s, "floor-2w", "single", 8, "rps"))),
    ("champion with a running A/B ÷ champion without, c=8", "ge", 0.95,
     lambda s: _div(_point(s, "champion-ab", "single", 8, "rps"),
                    _point(s, "champion", "single", 8, "rps"))),
    ("live p50 with a 100 % shadow of equal cost ÷ without, c=1", "le", 1.15,
     lambda s: _div((s.get("champion-shadow") or {}).get("raw_single_p50_s"),
                    (s.get("champion") or {}).get("raw_single_p50_s"))),
    ("throughput with a 10 % shadow of equal cost ÷ without, c=8", "ge", 0.9,
     lambda s: _div(_point(s, "champion-shadow10", "single", 8, "rps"),
                    _point(s, "champion", "single", 8, "rps"))),
    ("request log on ÷ off, c=8", "ge", 0.95,
     lambda s: _div(_point(s, "champion", "single", 8, "rps"),
                    _point(s, "champion-nolog", "single", 8, "rps"))),
    ("micro-batched ÷ floor, c=64", "ge", 3.0,
     lambda s: _div(_point(s, "champion-batched", "single", 64, "rps"),
                    _point(s, "floor", "single", 64, "rps"))),
    ("one request at a time: champion p50 ÷ floor p50, c=1", "le", 1.5,
     lambda s: _div((s.get("champion") or {}).get("raw_single_p50_s"),
                    (s.get("floor") or {}).get("raw_single_p50_s"))),
    ("batch of 100 rows, vectorised (micro-batching) ÷ MLflow, c=8", "ge", 3.0,
     lambda s: _div(_point(s, "champion-batched", "batch", 8, "rps"),
                    _point(s, "mlflow", "batch", 8, "rps"))),
    ("canary ÷ champion without experiment, c=8", "ge", 0.95,
     lambda s: _div(_point(s, "champion-canary", "single", 8, "rps"),
                    _point(s, "champion", "single", 8, "rps"))),
    ("bandit ÷ champion without experiment, c=8", "ge", 0.95,
     lambda s: _div(_point(s, "champion-bandit", "single", 8, "rps"),
                    _point(s, "champion", "single", 8, "rps"))),
    ("interleaved p50 ÷ one ranker's p50, c=8", "le", 1.3,
     lambda s: _div(_point(s, "champion-interleave", "single", 8, "p50_ms"),
                    _point(s, "champion-ranker", "single", 8, "p50_ms"))),
    ("interleaved p50 ÷ one ranker's p50, rankers waiting 5 ms, c=1", "le", 1.3,
     lambda s: _div((s.get("champion-interleave-io") or {}).get("raw_single_p50_s"),
                    (s.get("champion-ranker-io") or {}).get("raw_single_p50_s"))),
    ("`champion serve` → ready, s", "le", 1.0,
     lambda s: ((s.get("champion") or {}).get("start") or {}).get("serve_ready_s")),
    ("deploy → first answer, s", "le", 0.5,
     lambda s: ((s.get("champion") or {}).get("start") or {}).get("deploy_first_answer_s")),
]


def targets(summary: dict[str, Any], pairs: dict[str, Any] | None = None) -> list[str]:
    """The table of targets (issue: Performance II) from this run: the ratio of the main
    table's medians and, where measured, the paired figure, which decides "met"."""
    pairs = pairs or {}
    lines = ["", "**Targets** (from this run. *medians*: the ratio of the table's medians, "
             "the systems measured minutes apart; *paired*: both systems up, the idle one "
             "stopped, alternating rounds, the median of the per-round ratios (see "
             "benchmarks/pairs.py), which decides *met* where it was measured. `-`: a system "
             "it needs was not run):", "",
             "| figure | medians | paired | rounds | target | met |",
             "|---|---:|---:|---|---:|:---:|"]
    for label, how, goal, read in TARGETS:
        value = read(summary)
        pair = pairs.get(label) or {}
        paired = pair.get("median")
        judged = paired if paired is not None else value
        met = "-" if judged is None else ("yes" if (judged >= goal if how == "ge"
                                                    else judged <= goal) else "no")
        rounds = ", ".join(f"{x:.2f}" for x in pair.get("ratios", []))
        lines.append(f"| {label} | {'-' if value is None else f'{value:.2f}'} | "
                     f"{'-' if paired is None else f'{paired:.2f}'} | {rounds or '-'} | "
                     f"{'≥' if how == 'ge' else '≤'} {goal:g} | {met} |")
    return lines


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    opts = meta["options"]
    conc = opts["concurrency"]
    summary = summarise(results)
    inproc = in_process_summary(results)
    mach = meta["machine"]
    lines = [
        f"Run {meta['date']} on {mach['nproc']} x {mach['cpu']} ({mach['memory']}), "
        f"Python {mach['python']}, {meta['wrk']}. `{meta['command']}` "
        f"({meta.get('elapsed_s', '?')} s).",
        "",
        f"Each figure is the median of {opts['repeats']} repeat(s); each load point is "
        f"{opts['duration']:g} s of wrk after a {opts['warmup']:g} s warm-up per request kind. "
        "req/s = successful answers per second. Latency is **wrk's view** (its histogram after "
        "its coordinated-omission correction, which adds synthetic samples for every request "
        "slower than the mean interval and so inflates p90/p99 when latency varies). "
        "Peak RSS: the server process and all its descendants, summed, sampled every 0.1 s "
        "over the whole run. Cold start: command start to the first 200 answer "
        "(champion: including the deploy). champion's modules are run from compiled "
        "bytecode, as an installed champion's are (the runner compiles the checkout first).",
        "",
    ]
    head = ["system", "request"] + [f"req/s c={c}" for c in conc] + [
        f"ms p50 / p90 / p99 c={c}" for c in conc] + ["peak RSS MiB", "cold start s"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|")
    ref = summary.get(REFERENCE)
    for name, s in summary.items():
        if s["status"] == "skipped":
            continue
        if not s["repeats"]:
            lines.append(f"| {name} | failed: {(s['reason'] or '').splitlines()[0][:120]} |"
                         + " |" * (len(head) - 2))
            continue
        for kind in opts["kinds"]:
            pts = s["points"][kind]
            if not pts:  # a kind this system does not answer (a ranker: no batches)
                continue
            cells = [name, KIND_LABEL[kind]]
            cells += [_num(pts.get(str(c), {}).get("rps")) for c in conc]
            cells += [" / ".join(_ms(pts.get(str(c), {}).get(k))
                                 for k in ("p50_ms", "p90_ms", "p99_ms")) for c in conc]
            cells += [_num(s["peak_rss_mib"]), _num(s["start"].get("cold_start_s"))]
            lines.append("| " + " | ".join(cells) + " |")
            to_floor = name.startswith(CHAMPION_PREFIX) or getattr(
                SYSTEMS.get(name), "vs_floor", False)
            if to_floor and ref and ref["repeats"] and name != REFERENCE:
                rp = ref["points"][kind]
                cells = [f"*{name} ÷ {REFERENCE}*", KIND_LABEL[kind]]
                cells += [_ratio(pts.get(str(c), {}).get("rps"), rp.get(str(c), {}).get("rps"))
                          for c in conc]
                cells += [" / ".join(_ratio(pts.get(str(c), {}).get(k), rp.get(str(c), {}).get(k))
                                     for k in ("p50_ms", "p90_ms", "p99_ms")) for c in conc]
                cells += [_ratio(s["peak_rss_mib"], ref["peak_rss_mib"]),
                          _ratio(s["start"].get("cold_start_s"),
                                 ref["start"].get("cold_start_s"))]
                lines.append("| " + " | ".join(cells) + " |")
            base_name = getattr(SYSTEMS.get(name), "baseline", None)
            base = summary.get(base_name) if base_name else None
            if base and base["repeats"] and base["points"].get(kind):
                bp = base["points"][kind]
                cells = [f"*{name} ÷ {base_name}*", KIND_LABEL[kind]]
                cells += [_ratio(pts.get(str(c), {}).get("rps"), bp.get(str(c), {}).get("rps"))
                          for c in conc]
                cells += [" / ".join(_ratio(pts.get(str(c), {}).get(k), bp.get(str(c), {}).get(k))
                                     for k in ("p50_ms", "p90_ms", "p99_ms")) for c in conc]
                cells += [_ratio(s["peak_rss_mib"], base["peak_rss_mib"]), "-"]
                lines.append("| " + " | ".join(cells) + " |")
    errors = [f"{n} {k} c={c}: {p['errors']} of {p['requests']}"
              for n, s in summary.items() for k, pk in s["points"].items()
              for c, p in pk.items() if p["errors"]]
    if errors:
        lines += ["", "Errors (non-2xx or socket errors) seen by wrk: " + "; ".join(errors) + "."]

    champs = [n for n, s in summary.items() if n.startswith(CHAMPION_PREFIX) and s["repeats"]]
    others = [n for n, s in summary.items()
              if not n.startswith(CHAMPION_PREFIX) and s["repeats"]]
    for champ in champs:
        cs = summary[champ]
        if others:
            lines += ["", f"**{champ} against each system** (ratio {champ} ÷ other; "
                      "req/s above 1 = champion faster, p50 above 1 = champion slower):", ""]
            head2 = ["other", "request"] + [f"req/s c={c}" for c in conc] + [
                f"p50 c={c}" for c in conc]
            lines.append("| " + " | ".join(head2) + " |")
            lines.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(head2) - 2)) + "|")
            for other in others:
                for kind in opts["kinds"]:
                    a, b = cs["points"][kind], summary[other]["points"][kind]
                    if not a:
                        continue
                    cells = [other, KIND_LABEL[kind]]
                    cells += [_ratio(a.get(str(c), {}).get("rps"), b.get(str(c), {}).get("rps"))
                              for c in conc]
                    cells += [_ratio(a.get(str(c), {}).get("p50_ms"),
                                     b.get(str(c), {}).get("p50_ms")) for c in conc]
                    lines.append("| " + " | ".join(cells) + " |")
        st = cs["start"]
        lines += [
            "",
            f"**{champ}, one request at a time** (plain sequential client on one keep-alive "
            "connection, no wrk, no correction; median):",
            "",
            f"- in-process `predict(x)` (timeit, same run): {_time(inproc.get('single_s'))}",
            f"- through `POST {'/v1/bench'}`: {_time(cs['raw_single_p50_s'])}"
            + (f"; the floor over HTTP: {_time(ref['raw_single_p50_s'])}"
               if ref and ref.get("raw_single_p50_s") else ""),
        ]
        base_name = getattr(SYSTEMS.get(champ), "baseline", None)
        base = summary.get(base_name) if base_name else None
        if base and base.get("raw_single_p50_s") and cs.get("raw_single_p50_s"):
            lines.append(f"- {base_name} through the same path: "
                         f"{_time(base['raw_single_p50_s'])}; ratio "
                         f"{_ratio(cs['raw_single_p50_s'], base['raw_single_p50_s'])}")
        lines += [
            f"- a batch of 100 in-process: {_time(inproc.get('batch_per_row_s'))} as 100 calls "
            f"of `predict` (what champion and the floor do), "
            f"{_time(inproc.get('batch_vectorised_s'))} as one vectorised `predict_proba` "
            "(what MLflow and BentoML do)",
            f"- `champion serve` start → /readyz 200: {_time(st.get('serve_ready_s'))}; "
            f"deploy → first answer: {_time(st.get('deploy_first_answer_s'))} "
            f"(the deploy call itself {_time(st.get('deploy_s'))}); "
            f"command start → first answer: {_time(st.get('cold_start_s'))}"
            + (f"; a second version deployed 2 s later → its first answer: "
               f"{_time(st['next_deploy_first_answer_s'])}"
               if st.get("next_deploy_first_answer_s") else ""),
        ]
    lines += targets(summary, results.get("pairs"))
    gone = [(n, s) for n, s in summary.items() if s["status"] != "ok"]
    if gone:
        lines += [""]
        for n, s in gone:
            lines.append(f"- **{n} {s['status']}**: {(s['reason'] or '').strip()[:600]}")
    lines += ["", "Versions: " + "; ".join(
        f"{n}: " + ", ".join(f"{k} {v}" for k, v in e.get("versions", {}).items())
        for n, e in results["systems"].items() if e.get("versions"))
        + f"; model: scikit-learn {meta['model']['sklearn']}, numpy {meta['model']['numpy']}."]
    return "\n".join(lines) + "\n"
