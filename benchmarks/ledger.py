"""``python -m benchmarks.ledger``: the request log and feedback at volume.

Three figures, each against a baseline measured in the same run:

* request logging on vs off: single-row throughput at concurrency 8 (wrk), median of repeats;
* batch feedback ingestion: items per second through POST /v1/NAME/feedback, 10,000 a call;
* the store's write of a logged request: CPU per row of ``Store.insert_requests`` (the table,
  its indexes and the rollups) against a bare ``executemany`` of the same rows into a table
  without indexes, both on SQLite;
* the metrics API over N logged requests (default 1,000,000, written straight into the store
  spread over a day, rollups included): median seconds per GET .../metrics.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks import loadgen
from benchmarks import model as m
from benchmarks.runner import compile_champion, free_port

TOKEN = "bench-token"


def start(data_dir: Path, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "champion", "serve", "--port", str(port), "--data-dir",
         str(data_dir), "--log-level", "warning", *extra],
        env={**os.environ, "CHAMPION_TOKEN": TOKEN},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if loadgen.get(port, "/readyz", timeout=2) == 200:
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("champion serve did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def deploy(port: int) -> None:
    from champion.client import Client

    with Client(f"http://127.0.0.1:{port}", TOKEN) as c:
        c.deploy(m.predict, "bench")


def logging_ratio(work: Path, repeats: int, duration: int) -> dict[str, Any]:
    body = m.dumps(m.bodies()["single"])
    body_file = work / "single.json"
    body_file.write_bytes(body)
    rates: dict[str, list[float]] = {"on": [], "off": []}
    wrk = loadgen.find_wrk()
    for i in range(repeats):
        for mode in ("on", "off"):
            extra = () if mode == "on" else ("--no-request-log",)
            proc, port = start(work / f"log-{mode}-{i}", *extra)
            try:
                deploy(port)
                loadgen.post(port, "/v1/bench", body)
                loadgen.run_wrk(wrk, f"http://127.0.0.1:{port}/v1/bench", body_file, 8, 1)
                point = loadgen.run_wrk(wrk, f"http://127.0.0.1:{port}/v1/bench", body_file,
                                        8, duration)
                rates[mode].append(point.rps)
            finally:
                stop(proc)
    on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
    return {"rps_logging_on": on, "rps_logging_off": off, "ratio": on / off, "runs": rates}


def feedback_rate(work: Path, items_total: int) -> dict[str, Any]:
    proc, port = start(work / "feedback")
    try:
        deploy(port)
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=120) as http:
            n_requests = 1000
            rids = [http.post("/v1/bench", json=m.bodies()["single"]).json()["request_id"]
                    for _ in range(n_requests)]
            per_rid = max(1, items_total // n_requests)
            items = [{"request_id": r, "metric": f"m{k}", "value": k}
                     for k in range(per_rid) for r in rids]
            times = []
            for i in range(0, len(items), 10_000):
                chunk = items[i : i + 10_000]
                t0 = time.perf_counter()
                r = http.post("/v1/bench/feedback", json=chunk)
                times.append(time.perf_counter() - t0)
                assert r.status_code == 200 and r.json()["accepted"] == len(chunk), r.text
        rate = len(items) / sum(times)
        per_call = statistics.median(times)
        return {"items": len(items), "items_per_s": rate, "median_call_s": per_call,
                "items_per_call": 10_000}
    finally:
        stop(proc)


def _events(n: int, start: int) -> list[dict[str, Any]]:
    """Log rows as a plain endpoint's requests leave them: payloads, no experiment."""
    now = time.time()
    body = m.dumps(m.bodies()["single"]).decode()
    return [{
        "request_id": f"{now_ms:012x}{i:012x}-bench00000", "ts": now + i / 1000,
        "deployment": "bench", "version": 1, "target": "production", "status": 200,
        "latency_ms": 0.5 + (i % 1000) / 100, "batch_size": 1, "unit": None,
        "experiment": None, "arm": None, "variant": "bench:1", "input": body,
        "output": "[0.25]", "error": None, "detail": None,
    } for now_ms in [int(now * 1000)] for i in range(start, start + n)]


def insert_cost(work: Path, n_rows: int, repeats: int) -> dict[str, Any]:
    import sqlite3

    from champion.store import Store
    from champion.store.ledger import REQUEST_COLUMNS

    chunk = 250  # what the server's writer hands the store at a time (INLINE_BATCH)
    store = Store.open(work / "insert")
    bare = sqlite3.connect(work / "bare.db", isolation_level=None)
    bare.execute("PRAGMA journal_mode=WAL")
    bare.execute("PRAGMA synchronous=NORMAL")
    bare.execute(f"CREATE TABLE requests ({', '.join(REQUEST_COLUMNS)})")
    sql = (f"INSERT INTO requests VALUES ({', '.join('?' * len(REQUEST_COLUMNS))})")
    per_row: dict[str, list[float]] = {"champion": [], "bare": []}
    try:
        done = 0
        for _ in range(repeats):
            for name in ("champion", "bare"):
                spent = 0.0
                for _start in range(0, n_rows, chunk):
                    rows = _events(chunk, done)
                    done += chunk
                    t0 = time.process_time()
                    if name == "champion":
                        store.insert_requests(rows, wait=False)
                    else:
                        bare.execute("BEGIN")
                        bare.executemany(sql, [tuple(r[c] for c in REQUEST_COLUMNS)
                                               for r in rows])
                        bare.execute("COMMIT")
                    spent += time.process_time() - t0
                per_row[name].append(spent / n_rows * 1e6)
    finally:
        store.close()
        bare.close()
    ours, base = statistics.median(per_row["champion"]), statistics.median(per_row["bare"])
    return {"us_per_row": ours, "bare_us_per_row": base, "ratio": ours / base,
            "runs": per_row}


def metrics_latency(work: Path, n_rows: int, repeats: int) -> dict[str, Any]:
    from champion.store import Store

    data = work / "metrics"
    store = Store.open(data)
    now = time.time()
    span = 86400.0
    t0 = time.perf_counter()
    batch = 20_000
    for start_i in range(0, n_rows, batch):
        rows = [{
            "request_id": f"{i:024x}-bench00000", "ts": now - span + span * i / n_rows,
            "deployment": "bench", "version": 1 + (i % 2), "target": "production",
            "status": 500 if i % 97 == 0 else 200, "latency_ms": 0.5 + (i % 1000) / 100,
            "batch_size": 1, "unit": None, "experiment": None, "arm": None,
            "variant": f"bench:{1 + i % 2}", "input": None, "output": None, "error": None,
            "detail": None,
        } for i in range(start_i, min(start_i + batch, n_rows))]
        store.insert_requests(rows)
    fill_s = time.perf_counter() - t0
    store.close()
    proc, port = start(data)
    try:
        deploy(port)
        times = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60,
                          headers={"authorization": f"Bearer {TOKEN}"}) as http:
            for _ in range(repeats):
                t = time.perf_counter()
                r = http.get("/api/deployments/bench/metrics",
                             params={"since": "25h", "bucket": "1h"})
                times.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text
            total = sum(v["totals"]["requests"] for v in r.json()["versions"])
        return {"rows": n_rows, "rows_seen": total, "median_s": statistics.median(times),
                "max_s": max(times), "fill_s": fill_s}
    finally:
        stop(proc)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ledger", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--duration", type=int, default=5, help="seconds of wrk per point")
    p.add_argument("--feedback-items", type=int, default=100_000)
    p.add_argument("--rows", type=int, default=1_000_000, help="logged requests for metrics")
    p.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.duration, args.feedback_items, args.rows = 1, 2, 20_000, 50_000
    m.MODEL = m.train()
    compile_champion()  # as an installed champion runs (benchmarks.runner says why)
    with tempfile.TemporaryDirectory(prefix="champion-ledger-") as tmp:
        work = Path(tmp)
        log = logging_ratio(work, args.repeats, args.duration)
        print(f"request logging: {log['rps_logging_on']:,.0f} req/s on, "
              f"{log['rps_logging_off']:,.0f} off: ratio {log['ratio']:.2f}x (target >= 0.95)")
        fb = feedback_rate(work, args.feedback_items)
        print(f"feedback ingestion: {fb['items_per_s']:,.0f} items/s over {fb['items']:,} items "
              f"(median {fb['median_call_s'] * 1000:.0f} ms per 10,000-item call; "
              "target >= 20,000/s)")
        ins = insert_cost(work, 20_000 if args.quick else 100_000, max(3, args.repeats))
        print(f"store write of a logged request: {ins['us_per_row']:.1f} us of CPU a row "
              f"(table, indexes, rollups) against {ins['bare_us_per_row']:.1f} us for a bare "
              f"executemany of the same rows: {ins['ratio']:.2f}x")
        mt = metrics_latency(work, args.rows, max(3, args.repeats))
        print(f"metrics API over {mt['rows']:,} logged requests: median {mt['median_s']:.3f} s, "
              f"max {mt['max_s']:.3f} s (target < 1 s; {mt['rows_seen']:,} counted; "
              f"store filled in {mt['fill_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
