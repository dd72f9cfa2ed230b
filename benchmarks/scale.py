"""``python -m benchmarks.scale``: how the cost grows with deployments and with the log.

Two sweeps, each point a fresh ``champion serve``:

* deployments: 1, 10, 100 deployments of the benchmark model, every one with traffic (wrk
  sends each request to the next deployment in turn, concurrency 8): throughput, p99, and the
  memory of the server's process tree (PSS: shared pages split between the processes that
  share them, so a sum means something) in total and per deployment;
* the request log: 10k, 1M, 10M logged requests (written straight into the store, spread
  over a day, rollups included): throughput and p99 of one deployment with logging on, the
  metrics API's median time, and the store's size per logged request.

Each sweep ends with the slope between its first and last points. Absolute figures move with
the machine's load; compare points of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks import loadgen
from benchmarks import model as m
from benchmarks.ledger import TOKEN, start, stop
from benchmarks.runner import compile_champion


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry.name}/stat").read_bytes()
        except OSError:
            continue
        parent = int(text[text.rfind(b")") + 2:].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def pss_mib(root: int) -> float:
    """Proportional set size of a process and its descendants, MiB."""
    total = 0
    for pid in _tree(root):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _deploy(port: int, names: list[str]) -> float:
    from champion.client import Client

    t0 = time.perf_counter()
    with Client(f"http://127.0.0.1:{port}", TOKEN) as c:
        for name in names:
            c.deploy(m.predict, name)
            c.predict(name, m.rows(1)[0])
    return (time.perf_counter() - t0) / len(names)


def deployments_point(work: Path, n: int, duration: int) -> dict[str, Any]:
    body = work / "single.json"
    body.write_bytes(m.dumps(m.bodies()["single"]))
    proc, port = start(work / f"deployments-{n}", "--idle-timeout", "3600")
    try:
        names = [f"m{i}" for i in range(n)]
        deploy_s = _deploy(port, names)
        base = pss_mib(proc.pid)
        wrk = loadgen.find_wrk()
        paths = [f"/v1/{name}" for name in names]
        url = f"http://127.0.0.1:{port}{paths[0]}"
        loadgen.run_wrk(wrk, url, body, 8, 1, paths=paths)
        point = loadgen.run_wrk(wrk, url, body, 8, duration, paths=paths)
        after = pss_mib(proc.pid)
        return {"deployments": n, "rps": point.rps, "p99_ms": point.p99_ms,
                "pss_mib": after, "pss_mib_per_deployment": after / n,
                "pss_mib_before_traffic": base, "deploy_and_first_answer_s": deploy_s}
    finally:
        stop(proc)


def fill(data: Path, n_rows: int) -> float:
    from champion.store import Store

    store = Store.open(data)
    now = time.time()
    span = 86400.0
    t0 = time.perf_counter()
    batch = 20_000
    try:
        for start_i in range(0, n_rows, batch):
            store.insert_requests([{
                "request_id": f"{i:024x}-scale00000", "ts": now - span + span * i / n_rows,
                "deployment": "bench", "version": 1, "target": "production",
                "status": 500 if i % 97 == 0 else 200, "latency_ms": 0.5 + (i % 1000) / 100,
                "batch_size": 1, "unit": None, "experiment": None, "arm": None,
                "variant": "bench:1", "input": None, "output": None, "error": None,
                "detail": None,
            } for i in range(start_i, min(start_i + batch, n_rows))])
    finally:
        store.close()
    return time.perf_counter() - t0


def log_point(work: Path, rows: int, duration: int) -> dict[str, Any]:
    data = work / f"log-{rows}"
    fill_s = fill(data, rows)
    size = sum(f.stat().st_size for f in data.glob("champion.db*"))
    body = work / "single.json"
    body.write_bytes(m.dumps(m.bodies()["single"]))
    proc, port = start(data)
    try:
        _deploy(port, ["bench"])
        wrk = loadgen.find_wrk()
        url = f"http://127.0.0.1:{port}/v1/bench"
        loadgen.run_wrk(wrk, url, body, 8, 1)
        point = loadgen.run_wrk(wrk, url, body, 8, duration)
        times = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120,
                          headers={"authorization": f"Bearer {TOKEN}"}) as h:
            for _ in range(3):
                t = time.perf_counter()
                r = h.get("/api/deployments/bench/metrics", params={"since": "25h",
                                                                   "bucket": "1h"})
                times.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text
        return {"logged": rows, "rps": point.rps, "p99_ms": point.p99_ms,
                "metrics_median_s": statistics.median(times),
                "store_bytes_per_row": size / rows, "fill_s": fill_s}
    finally:
        stop(proc)


def slope(points: list[dict[str, Any]], x: str, y: str) -> float:
    """Change of ``y`` per tenfold ``x``, as a ratio (1.0: flat)."""
    import math

    a, b = points[0], points[-1]
    decades = math.log10(b[x] / a[x])
    return (b[y] / a[y]) ** (1 / decades) if decades and a[y] else float("nan")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--deployments", default="1,10,100")
    p.add_argument("--logged", default="10000,1000000,10000000")
    p.add_argument("--duration", type=int, default=5, help="seconds of wrk per point")
    p.add_argument("--quick", action="store_true", help="1,5 deployments; 10k,100k rows")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = p.parse_args(argv)
    if args.quick:
        args.deployments, args.logged, args.duration = "1,5", "10000,100000", 2
    m.MODEL = m.train()
    compile_champion()  # as an installed champion runs (benchmarks.runner says why)
    results: dict[str, Any] = {"deployments": [], "logged": []}
    with tempfile.TemporaryDirectory(prefix="champion-scale-") as tmp:
        work = Path(tmp)
        for n in (int(x) for x in args.deployments.split(",")):
            pt = deployments_point(work, n, args.duration)
            results["deployments"].append(pt)
            print(f"{n:>5} deployments: {pt['rps']:,.0f} req/s, p99 {pt['p99_ms']:.1f} ms, "
                  f"PSS {pt['pss_mib']:,.0f} MiB ({pt['pss_mib_per_deployment']:.1f} MiB per "
                  f"deployment), deploy + first answer {pt['deploy_and_first_answer_s']:.2f} s",
                  flush=True)
        for rows in (int(x) for x in args.logged.split(",")):
            pt = log_point(work, rows, args.duration)
            results["logged"].append(pt)
            print(f"{rows:>10,} logged: {pt['rps']:,.0f} req/s, p99 {pt['p99_ms']:.1f} ms, "
                  f"metrics API {pt['metrics_median_s']:.3f} s, "
                  f"{pt['store_bytes_per_row']:.0f} bytes per logged request", flush=True)
    d, lg = results["deployments"], results["logged"]
    if len(d) > 1:
        results["slope_deployments"] = {
            "rps_per_10x": slope(d, "deployments", "rps"),
            "pss_per_deployment_per_10x": slope(d, "deployments", "pss_mib_per_deployment")}
        print("per tenfold deployments: throughput x{rps_per_10x:.2f}, memory per deployment "
              "x{pss_per_deployment_per_10x:.2f}".format(**results["slope_deployments"]))
    if len(lg) > 1:
        results["slope_logged"] = {"rps_per_10x": slope(lg, "logged", "rps"),
                                   "metrics_s_per_10x": slope(lg, "logged", "metrics_median_s")}
        print("per tenfold logged requests: throughput x{rps_per_10x:.2f}, metrics API time "
              "x{metrics_s_per_10x:.2f}".format(**results["slope_logged"]))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"scale-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
