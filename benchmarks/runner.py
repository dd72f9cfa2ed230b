"""One benchmark run: train, start each system in turn, drive load with wrk, collect."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import loadgen, procmem
from benchmarks import model as m
from benchmarks.systems import SYSTEMS, Context, Skip, StartFailed, System

KINDS = ("single", "batch")


@dataclass
class Options:
    systems: list[str]
    repeats: int
    duration: int
    warmup: int
    concurrency: list[int]
    kinds: list[str]
    raw_seconds: float
    install_timeout: float
    quick: bool
    keep_work: bool = False
    pair_rounds: int = 0


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory": mem,
            "python": platform.python_version(), "kernel": platform.release()}


def compile_champion() -> dict[str, Any]:
    """Compile champion's modules to bytecode, as a ``pip install`` leaves them, before any
    system starts; what was compiled and why.

    An editable checkout's modules are compiled from source by every process that imports
    them when ``PYTHONDONTWRITEBYTECODE`` is set (machines here set it): that was a quarter
    of a second of each ``champion serve`` start, a cost no installed champion has."""
    import compileall

    import champion

    root = Path(champion.__file__).resolve().parent
    ok = compileall.compile_dir(root, quiet=1)
    return {"root": str(root), "ok": bool(ok),
            "dont_write_bytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))}


def in_process(model: Any, rows: list[list[float]]) -> dict[str, float]:
    """Median seconds of the deployed function called directly, in this process."""
    x = rows[0]
    xs = np.asarray(rows, dtype=float)

    def per_call(stmt: Any, number: int) -> float:
        times = timeit.repeat(stmt, number=number, repeat=7)
        return statistics.median(times) / number

    return {
        "single_s": per_call(lambda: m.predict(x), 300),
        "batch_per_row_s": per_call(lambda: [m.predict(r) for r in rows], 5),
        "batch_vectorised_s": per_call(lambda: model.predict_proba(xs)[:, 1], 100),
    }


def stop_tree(proc: subprocess.Popen[bytes], seen: dict[int, int]) -> None:
    """SIGTERM the server, then make sure nothing it started is left (only pids we saw)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    left = {pid: start for pid, start in seen.items() if procmem.alive(pid, start)}
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid, start in left.items():
            if procmem.alive(pid, start):
                with contextlib.suppress(OSError):
                    os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(procmem.alive(p, s) for p, s in left.items()):
            time.sleep(0.05)


class Runner:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.wrk = loadgen.find_wrk()

    def run(self) -> dict[str, Any]:
        opts = self.opts
        started = time.time()
        work = Path(tempfile.mkdtemp(prefix="champion-bench-"))
        log(f"work directory {work}")
        bytecode = compile_champion()
        model = m.train()
        m.MODEL = model
        model_pickle = work / "model.pkl"
        model_pickle.write_bytes(pickle.dumps(model))
        bodies = m.bodies()
        expected = {"single": m.predict(bodies["single"]["data"]),
                    "batch": m.predict(bodies["batch"]["data"][0][1])}
        ctx = Context(work=work, model_pickle=model_pickle, bodies=bodies, expected=expected,
                      install_timeout=opts.install_timeout)
        results: dict[str, Any] = {
            "meta": {
                "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "machine": machine(),
                "bytecode": bytecode,
                "wrk": loadgen.wrk_version(self.wrk),
                "command": "python -m benchmarks " + " ".join(sys.argv[1:]),
                "options": opts.__dict__,
                "model": {"kind": "sklearn LogisticRegression", "features": m.N_FEATURES,
                          "train_rows": m.N_SAMPLES, "seed": m.SEED,
                          "batch_rows": m.BATCH_ROWS,
                          "sklearn": _version("scikit-learn"), "numpy": _version("numpy")},
            },
            "in_process": [],
            "systems": {},
        }
        systems: list[System] = []
        for name in opts.systems:
            system = SYSTEMS[name]()
            entry: dict[str, Any] = {"title": system.title, "status": "ok", "runs": []}
            results["systems"][name] = entry
            try:
                system.prepare(ctx)
            except Skip as exc:
                entry.update(status="skipped", reason=str(exc))
                log(f"SKIP {name}: {exc}")
                continue
            entry["versions"] = system.versions()
            systems.append(system)
        rows = m.rows(m.BATCH_ROWS)
        try:
            for r in range(opts.repeats):
                results["in_process"].append(in_process(model, rows))
                for system in systems:
                    entry = results["systems"][system.name]
                    if entry["status"] != "ok":
                        continue
                    log(f"repeat {r + 1}/{opts.repeats}: {system.name}")
                    try:
                        entry["runs"].append(self.run_system(system, ctx, r))
                    except (StartFailed, RuntimeError, OSError, ValueError, KeyError) as exc:
                        entry.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
                        log(f"FAILED {system.name}: {exc}")
            if opts.pair_rounds > 0:
                from benchmarks.pairs import run_pairs

                ran = {s.name: s for s in systems
                       if results["systems"][s.name]["status"] == "ok"
                       and results["systems"][s.name]["runs"]}
                log(f"paired figures: {opts.pair_rounds} alternating rounds of "
                    f"{opts.duration} s each")
                results["pairs"] = run_pairs(self, ctx, ran, opts.pair_rounds, opts.duration,
                                             log)
        finally:
            if not opts.keep_work:
                _rmtree(work)
        results["meta"]["elapsed_s"] = round(time.time() - started, 1)
        return results

    def run_system(self, system: System, ctx: Context, repeat: int) -> dict[str, Any]:
        opts = self.opts
        port = free_port()
        run_id = f"{system.name}-{repeat}"
        launch = system.launch(ctx, port, run_id)
        log_path = ctx.work / f"{run_id}.log"
        env = {**os.environ, **launch.env}
        with open(log_path, "wb") as out:
            t0 = time.perf_counter()
            proc = subprocess.Popen(launch.argv, cwd=launch.cwd, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        sampler = procmem.TreeSampler(proc.pid)
        sampler.start()
        run: dict[str, Any] = {"repeat": repeat, "points": {}}
        try:
            try:
                run["start"] = system.until_ready(ctx, port, t0, proc)
            except StartFailed as exc:
                tail = log_path.read_text(errors="replace")[-1500:]
                raise StartFailed(f"{exc}\n--- server log ---\n{tail}") from None
            self.check_answers(system, ctx, port)
            url = f"http://127.0.0.1:{port}{system.path}"
            for kind in [k for k in opts.kinds if k in system.kinds]:
                body_file = ctx.work / f"{system.name}-{kind}.json"
                body_file.write_bytes(system.body(ctx, kind))
                if opts.warmup > 0:
                    loadgen.run_wrk(self.wrk, url, body_file, 8, opts.warmup)
                run["points"][kind] = {}
                for c in opts.concurrency:
                    point = loadgen.run_wrk(self.wrk, url, body_file, c, opts.duration)
                    if point.errors > 0.01 * max(point.requests, 1):
                        log(f"  {system.name} {kind} c={c}: {point.errors} errors "
                            f"of {point.requests} requests")
                    log(f"  {kind:6} c={c:<3} {point.rps:9.1f} req/s  p50 {point.p50_ms:.2f} "
                        f"p90 {point.p90_ms:.2f} p99 {point.p99_ms:.2f} ms")
                    run["points"][kind][str(c)] = point.to_dict()
            if system.raw_latency and opts.raw_seconds > 0:
                lat = loadgen.sequential_latency(port, system.path, system.body(ctx, "single"),
                                                 opts.raw_seconds)
                run["raw_single"] = {"requests": len(lat),
                                     "p50_s": float(np.percentile(lat, 50)),
                                     "p99_s": float(np.percentile(lat, 99))}
        finally:
            sampler.stop()
            run["peak_rss_bytes"] = sampler.peak
            run["processes"] = len(sampler.seen)
            stop_tree(proc, sampler.seen)
        return run

    def check_answers(self, system: System, ctx: Context, port: int) -> None:
        """Every system must compute the in-process answer (same model, same input)."""
        for kind in [k for k in self.opts.kinds if k in system.kinds]:
            status, raw = loadgen.post(port, system.path, system.body(ctx, kind), timeout=30)
            if status != 200:
                raise RuntimeError(f"{kind} request answered HTTP {status}: {raw[:300]!r}")
            got = system.first_value(kind, json.loads(raw))
            if abs(got - ctx.expected[kind]) > 1e-6:
                raise RuntimeError(f"{kind} answer {got} != in-process {ctx.expected[kind]}")


def _version(dist: str) -> str:
    import importlib.metadata as md

    return md.version(dist)


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
