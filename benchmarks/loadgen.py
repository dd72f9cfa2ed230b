"""Load from a separate process: Debian's ``wrk`` with a Lua script for the POST body.

Also a plain sequential client (``http.client``, one keep-alive connection, no coordinated
omission correction) for the raw single-request latency that champion is compared with the
in-process call.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

LUA = Path(__file__).resolve().with_name("wrk_post.lua")
INSTALL_HINT = ("wrk is not installed. Install Debian's package (as root): "
                "apt-get update && apt-get install -y wrk")


class WrkMissing(RuntimeError):
    pass


def find_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkMissing(INSTALL_HINT)
    return path


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=10)
    line = (out.stdout or out.stderr).strip().splitlines()
    return line[0].split(" Copyright")[0] if line else "?"


@dataclass
class Point:
    """One load point: successful requests per second and wrk's latency percentiles."""

    connections: int
    duration_s: float
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def run_wrk(wrk: str, url: str, body_file: Path, connections: int, duration: int,
            timeout_s: float = 10.0, paths: list[str] | None = None) -> Point:
    """Run wrk for DURATION whole seconds (wrk takes no fractions) with CONNECTIONS;
    with ``paths``, the requests go to each of them in turn."""
    threads = min(connections, 2)
    argv = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{max(int(duration), 1)}s",
            "--timeout", f"{timeout_s:.0f}s", "-s", str(LUA), url]
    env = {**os.environ, "BENCH_BODY_FILE": str(body_file)}
    if paths:
        env["BENCH_PATHS"] = ",".join(paths)
    proc = subprocess.run(argv, capture_output=True, text=True, env=env,
                          timeout=duration + timeout_s + 30)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {proc.returncode}): "
                           f"{(proc.stderr or proc.stdout).strip()[-500:]}")
    data = json.loads(line[len("BENCH_JSON "):])
    errors = sum(int(v) for v in data["errors"].values())
    seconds = data["duration_us"] / 1e6
    ok = max(int(data["requests"]) - int(data["errors"]["status"]), 0)
    lat = data["latency_us"]
    return Point(
        connections=connections, duration_s=seconds, requests=int(data["requests"]),
        errors=errors, rps=ok / seconds if seconds else 0.0,
        p50_ms=lat["p50"] / 1000, p90_ms=lat["p90"] / 1000, p99_ms=lat["p99"] / 1000,
        mean_ms=lat["mean"] / 1000, max_ms=lat["max"] / 1000,
    )


def post(port: int, path: str, body: bytes, timeout: float = 5.0) -> tuple[int, bytes]:
    """One POST on a fresh connection: (status, body). Raises OSError when nothing answers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body, {"content-type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    except http.client.HTTPException as exc:
        raise OSError(str(exc)) from exc
    finally:
        conn.close()


def get(port: int, path: str, timeout: float = 5.0) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except http.client.HTTPException as exc:
        raise OSError(str(exc)) from exc
    finally:
        conn.close()


def sequential_latency(port: int, path: str, body: bytes, seconds: float,
                       max_requests: int = 20000) -> list[float]:
    """Latencies (s) of back-to-back POSTs on one keep-alive connection for SECONDS."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"content-type": "application/json"}
    out: list[float] = []
    try:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end and len(out) < max_requests:
            t = time.perf_counter()
            conn.request("POST", path, body, headers)
            resp = conn.getresponse()
            resp.read()
            out.append(time.perf_counter() - t)
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status} from {path}")
    finally:
        conn.close()
    return out
