"""How long the dashboard's pages take on the server, with a large request log.

    python scripts/dashboard_timing.py [--requests 1000000] [--runs 7] [--database-url URL]

Starts ``champion serve`` on a temporary store, deploys two versions, starts an A/B
experiment, writes ``--requests`` logged requests (spread over the last 24 hours, all in the
experiment, 10 % with feedback) straight into the store as the server's log writer would,
then signs in and asks for every page ``--runs`` times. A page's server time is its
``Server-Timing: page;dur=`` header (from the request reaching the page's handler to its
HTML being ready); the JSON endpoints the pages' scripts fetch afterwards are timed from
the client, over loopback. Prints the medians (and the slowest run) as a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def score(x):
    return 1


def score_v2(x):
    return 2


def fill(data: Path, database_url: str, name: str, experiment: str, n: int) -> float:
    """Write ``n`` requests (and feedback for 10 %) into the store; seconds it took."""
    from champion.store import Store

    store = Store.open(data, database_url)
    rng = random.Random(3)
    now = time.time()
    started = time.perf_counter()
    batch = 20_000
    units = max(n // 5, 1)
    for first in range(0, n, batch):
        rows, feedback = [], []
        for i in range(first, min(first + batch, n)):
            k = rng.randrange(units)
            unit = f"user-{k}"
            arm = "control" if k % 2 else "candidate"
            status = 500 if rng.random() < 0.005 else 200
            rid = f"t{i:09d}{secrets.token_hex(6)}"
            ts = now - 86400 * (1 - i / n)
            rows.append({
                "request_id": rid, "ts": ts, "deployment": name,
                "version": 1 if arm == "control" else 2, "target": "production",
                "status": status, "latency_ms": rng.lognormvariate(0.5, 0.6), "batch_size": 1,
                "unit": unit, "experiment": experiment, "arm": arm,
                "variant": f"{name}:{1 if arm == 'control' else 2}",
                "input": '{"data":0}', "output": None if status == 500 else "1",
                "error": "model_error: boom" if status == 500 else None,
            })
            if i % 10 == 0:
                feedback.append({"ts": ts + 5, "deployment": name, "request_id": rid,
                                 "unit": unit, "metric": "reward",
                                 "value": float(rng.random() < 0.3), "label": None,
                                 "dedup": rid})
        store.insert_requests(rows)
        store.insert_feedback(feedback)
        print(f"  {min(first + batch, n):>9,} requests written", end="\r", flush=True)
    store.checkpoint()
    store.close()
    print()
    return time.perf_counter() - started


def timed(http: httpx.Client, path: str, runs: int) -> tuple[list[float], list[float], int]:
    """Server-timing and wall-clock milliseconds of ``runs`` GETs of ``path``."""
    server, wall = [], []
    status = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        r = http.get(path)
        wall.append((time.perf_counter() - t0) * 1000)
        status = r.status_code
        match = re.search(r"page;dur=([\d.]+)", r.headers.get("server-timing", ""))
        if match:
            server.append(float(match.group(1)))
    return server, wall, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="champion-timing-"))
    token = "timing-" + secrets.token_hex(8)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "CHAMPION_TOKEN": token}
    env.pop("CHAMPION_DATABASE_URL", None)
    if args.database_url:
        env["CHAMPION_DATABASE_URL"] = args.database_url
    proc = subprocess.Popen([sys.executable, "-m", "champion.cli", "serve", "--port", str(port),
                             "--data-dir", str(data), "--log-level", "warning"], env=env)
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        from champion.client import Client

        client = Client(url, token)
        name = "churn"
        client.deploy(score, name)
        client.deploy(score_v2, name)
        e = client.create_experiment(name, "ab", {"control": f"{name}:1",
                                                  "candidate": f"{name}:2"},
                                     metrics={"primary": "reward"})
        client.close()
        print(f"writing {args.requests:,} requests ...")
        seconds = fill(data, args.database_url, name, e["id"], args.requests)
        print(f"written in {seconds:.0f} s")
        backend = "PostgreSQL" if args.database_url else "SQLite"
        with httpx.Client(base_url=url, timeout=600) as http:
            r = http.post("/ui/login", data={"token": token})
            assert r.status_code == 303, r.text
            pages = ["/ui/", f"/ui/deployments/{name}", "/ui/experiments",
                     f"/ui/experiments/{e['id']}"]
            until = int(time.time())
            fetched = [
                "/api/deployments",
                f"/api/deployments/{name}/metrics?since={until - 3600}&until={until}&bucket=60",
                f"/api/deployments/{name}/metrics?since={until - 86400}&until={until}",
                f"/api/deployments/{name}/logs?limit=25&feedback=1",
                f"/api/experiments/{e['id']}",
                f"/api/experiments/{e['id']}/report",
            ]
            notes = {fetched[1]: ", last hour", fetched[2]: ", last 24 h"}
            for path in pages + fetched:  # warm caches, compile templates
                http.get(path)
            print(f"\n{args.requests:,} logged requests, {backend}, median of {args.runs} "
                  "(slowest)\n")
            print("| what | server time (ms) | wall time over loopback (ms) |")
            print("|---|---|---|")
            for path in pages + fetched:
                server, wall, status = timed(http, path, args.runs)
                assert status == 200, (path, status)
                s = f"{statistics.median(server):.1f} ({max(server):.1f})" if server else "—"
                w = f"{statistics.median(wall):.1f} ({max(wall):.1f})"
                kind = "page" if path.startswith("/ui/") else "fetched by the page's script"
                shown = path.split("?")[0].replace(e["id"], "{id}")
                print(f"| `GET {shown}` ({kind}{notes.get(path, '')}) | {s} | {w} |")
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
