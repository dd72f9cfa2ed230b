"""Paired figures: a ratio measured with both systems up, in alternating rounds.

The main table runs each system in turn, minutes apart; on a shared 2-core machine the speed
of the machine itself drifts by tens of percent over that time (the same system measured
twice in one run has differed by 1.5x), so a ratio of two such medians is mostly noise. Here
the two systems of a ratio run side by side: the idle one's whole process tree is stopped
(SIGSTOP) while the other takes load, the order alternates round by round, and the figure is
the median of the per-round ratios. Drift slower than a round (a few seconds) cancels; two
instances of the same system measured this way agree within about 5 % per round.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks import loadgen, procmem
from benchmarks.systems import Context, StartFailed, System

if TYPE_CHECKING:
    from benchmarks.runner import Runner


# after SIGCONT: the resumed server's timers that came due while it was stopped (its log
# writer's flush, the controller's pass, the registry's poll) run before the round starts
SETTLE_S = 1.0


@dataclass(frozen=True)
class Pair:
    """``system`` ÷ ``base`` in ``metric`` ("rps": wrk's answers a second, "p50": wrk's
    median latency, "raw_p50": the median of sequential requests on one connection)."""

    label: str
    how: str  # "ge" or "le": the ratio must be at least / at most the goal
    goal: float
    system: str
    base: str
    metric: str = "rps"
    kind: str = "single"
    connections: int = 8


PAIRS: list[Pair] = [
    Pair("champion ÷ floor with 2 workers, 1 row, c=8", "ge", 0.8, "champion", "floor-2w"),
    Pair("champion with a running A/B ÷ champion without, c=8", "ge", 0.95, "champion-ab",
         "champion"),
    Pair("request log on ÷ off, c=8", "ge", 0.95, "champion", "champion-nolog"),
    Pair("live p50 with a 100 % shadow of equal cost ÷ without, c=1", "le", 1.15,
         "champion-shadow", "champion", metric="raw_p50", connections=1),
    Pair("throughput with a 10 % shadow of equal cost ÷ without, c=8", "ge", 0.9,
         "champion-shadow10", "champion"),
    Pair("micro-batched ÷ floor, c=64", "ge", 3.0, "champion-batched", "floor",
         connections=64),
    Pair("one request at a time: champion p50 ÷ floor p50, c=1", "le", 1.5, "champion",
         "floor", metric="raw_p50", connections=1),
    Pair("batch of 100 rows, vectorised (micro-batching) ÷ MLflow, c=8", "ge", 3.0,
         "champion-batched", "mlflow", kind="batch"),
    Pair("canary ÷ champion without experiment, c=8", "ge", 0.95, "champion-canary",
         "champion"),
    Pair("bandit ÷ champion without experiment, c=8", "ge", 0.95, "champion-bandit",
         "champion"),
    Pair("interleaved p50 ÷ one ranker's p50, c=8", "le", 1.3, "champion-interleave",
         "champion-ranker", metric="p50"),
    Pair("interleaved p50 ÷ one ranker's p50, rankers waiting 5 ms, c=1", "le", 1.3,
         "champion-interleave-io", "champion-ranker-io", metric="raw_p50", connections=1),
]


def _signal_tree(root: int, sig: signal.Signals) -> None:
    for pid in procmem.tree(root):
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


class _Live:
    """A started system: its process, port and the pids it has had."""

    def __init__(self, runner: Runner, system: System, ctx: Context, tag: str) -> None:
        self.system = system
        self.port = _free_port()
        launch = system.launch(ctx, self.port, tag)
        log_path = ctx.work / f"{tag}.log"
        with open(log_path, "wb") as out:
            t0 = time.perf_counter()
            self.proc = subprocess.Popen(launch.argv, cwd=launch.cwd,
                                         env={**os.environ, **launch.env}, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        self.seen: dict[int, int] = {}
        try:
            system.until_ready(ctx, self.port, t0, self.proc)
            runner.check_answers(system, ctx, self.port)
        except (StartFailed, RuntimeError, OSError):
            self.stop()
            raise
        self.bodies: dict[str, Any] = {}
        for kind in system.kinds:
            path = ctx.work / f"{tag}-{kind}.json"
            path.write_bytes(system.body(ctx, kind))
            self.bodies[kind] = path
        self.seen.update(procmem.tree(self.proc.pid))

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.system.path}"

    def pause(self) -> None:
        self.seen.update(procmem.tree(self.proc.pid))
        _signal_tree(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        _signal_tree(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        from benchmarks.runner import stop_tree

        self.resume()
        self.seen.update(procmem.tree(self.proc.pid))
        stop_tree(self.proc, self.seen)


def _free_port() -> int:
    from benchmarks.runner import free_port

    return free_port()


def measure(runner: Runner, live: _Live, pair: Pair, ctx: Context, seconds: int) -> float:
    """One round's figure of ``live`` for ``pair``."""
    if pair.metric == "raw_p50":
        lat = loadgen.sequential_latency(live.port, live.system.path,
                                         live.system.body(ctx, pair.kind), float(seconds))
        return float(np.percentile(lat, 50))
    point = loadgen.run_wrk(runner.wrk, live.url(), live.bodies[pair.kind], pair.connections,
                            seconds)
    return point.rps if pair.metric == "rps" else point.p50_ms


def run_pairs(runner: Runner, ctx: Context, available: dict[str, System], rounds: int,
              seconds: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Every pair whose two systems ran in the main table (``available``: their prepared
    instances), in alternating rounds. A pair that fails is reported, never the run lost."""
    todo = [p for p in PAIRS if p.system in available and p.base in available]
    out: dict[str, Any] = {}
    live: dict[str, _Live] = {}
    try:
        for n, pair in enumerate(todo):
            for name in (pair.base, pair.system):
                if name not in live:
                    try:
                        live[name] = _Live(runner, available[name], ctx, f"pair-{name}")
                    except Exception as exc:  # one pair, not the run
                        log(f"pair {pair.label}: {name} did not start: {exc}")
                        break
                    live[name].pause()
            if pair.base not in live or pair.system not in live:
                out[pair.label] = {"error": "a system did not start"}
                continue
            a, b = live[pair.system], live[pair.base]
            ratios: list[float] = []
            values: dict[str, list[float]] = {"system": [], "base": []}
            try:
                for x in (a, b):  # warm both at this pair's load
                    x.resume()
                    measure(runner, x, pair, ctx, 1)
                    x.pause()
                for r in range(rounds):
                    got = {}
                    for role in (("system", "base") if r % 2 == 0 else ("base", "system")):
                        x = a if role == "system" else b
                        x.resume()
                        time.sleep(SETTLE_S)
                        got[role] = measure(runner, x, pair, ctx, seconds)
                        x.pause()
                        values[role].append(got[role])
                    ratios.append(got["system"] / got["base"] if got["base"] else float("nan"))
            except Exception as exc:  # one pair, not the run
                log(f"pair {pair.label}: {type(exc).__name__}: {exc}")
                out[pair.label] = {"error": f"{type(exc).__name__}: {exc}"}
                for x in (a, b):
                    x.pause()
                continue
            out[pair.label] = {"system": pair.system, "base": pair.base, "metric": pair.metric,
                               "connections": pair.connections, "kind": pair.kind,
                               "ratios": ratios, "values": values,
                               "median": statistics.median(ratios)}
            log(f"  pair {pair.system} ÷ {pair.base} ({pair.metric}, c={pair.connections}): "
                f"{statistics.median(ratios):.3f} (rounds {', '.join(f'{x:.2f}' for x in ratios)})")
            later = {s for p in todo[n + 1:] for s in (p.system, p.base)}
            for name in [k for k in live if k not in later]:
                live.pop(name).stop()
    finally:
        for x in live.values():
            x.stop()
    return out
