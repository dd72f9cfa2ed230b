"""A new strategy is one file: this one, defined here alone, loaded by a real server through
``--strategy-modules``, created through the API and the CLI, routing real requests and
reporting, with no other file of champion touched."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import pytest

from champion.routing.base import RoutingDecision, RoutingPolicy, RoutingRequest, UniformSource
from champion.routing.hashing import u01
from champion.strategies import (
    Experiment,
    State,
    Step,
    Strategy,
    column,
    register,
    setting,
    table,
    view,
)
from tests.conftest import Server

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class RoundSettings:
    share: float = setting(0.5, "Share of requests the second variant answers.", low=0.0,
                           high=1.0)
    stop_after: int = setting(0, "Stop by itself after this many requests (0: never).", low=0)


@dataclass(frozen=True)
class RoundPolicy(RoutingPolicy):
    names: tuple[str, ...]
    share: float
    salt: str

    @property
    def variants(self) -> tuple[str, ...]:
        return self.names

    def decide(self, request: RoutingRequest, rng: UniformSource) -> RoutingDecision:
        second = u01(self.salt, request.request_id, "round") < self.share
        return RoutingDecision(self.names[1] if second else self.names[0], (), "round", "hash")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        return cls(tuple(config["names"]), float(config["share"]), str(config["salt"]))

    def to_config(self) -> dict[str, Any]:
        return {"names": list(self.names), "share": self.share, "salt": self.salt}


class Round(Strategy[RoundSettings]):
    name = "round"
    summary = "a toy: a hashed share of requests to the second variant"
    settings_type = RoundSettings
    max_variants = 2

    def policy(self, settings: RoundSettings, state: State, exp: Experiment) -> RoutingPolicy:
        return RoundPolicy(exp.variants, settings.share, exp.salt)

    def needs(self, settings: RoundSettings, state: State, exp: Experiment, now: float
              ) -> dict[str, dict[str, Any]]:
        return {"window": {"since": exp.started_at or 0.0, "metrics": []}}

    def report(self, settings: RoundSettings, state: State, exp: Experiment,
               stats: Mapping[str, Any], now: float, rng: np.random.Generator
               ) -> dict[str, Any]:
        counts = {v: (stats["window"].get(v) or {}).get("requests", 0) for v in exp.variants}
        total = sum(counts.values())
        return {"counts": counts, "total": total, "view": view(
            f"{total} requests", tables=[table("counts", "Requests", [
                column("variant", "variant"), column("n", "requests", "int")],
                [{"variant": v, "n": n} for v, n in counts.items()])])}

    def cadence(self, settings: RoundSettings, exp: Experiment) -> float | None:
        return 1.0 if settings.stop_after else None

    def step(self, settings: RoundSettings, state: State, exp: Experiment,
             report: Mapping[str, Any], now: float) -> Step | None:
        if settings.stop_after and report["total"] >= settings.stop_after:
            return Step(action="stop", decision={"action": "keep"},
                        reason=f"{report['total']} requests seen")
        return None


register(Round())


def answer(x):
    return "first"


def answer_2(x):
    return "second"


@pytest.fixture(scope="module")
def plugin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    srv = Server(tmp_path_factory.mktemp("plugin") / "data",
                 extra_args=["--strategy-modules", "tests.e2e.test_strategy_plugin"],
                 env=env).start()
    yield srv
    srv.stop()


def test_a_strategy_defined_in_one_file_routes_and_reports(plugin_server):
    srv = plugin_server
    with srv.client() as c:
        listed = {s["name"]: s for s in c.strategies()}
        assert "round" in listed and {"ab", "canary", "shadow"} <= set(listed)
        assert [f["name"] for f in listed["round"]["settings"]] == ["share", "stop_after"]
        c.deploy(answer, "toy")
        c.deploy(answer_2, "toy")
        e = c.create_experiment("toy", "round", {"a": "toy:1", "b": "toy:2"},
                                round={"share": 0.25})
        assert e["strategy"] == "round" and e["status"] == "running"
        got = [c.get_inference("toy", i) for i in range(400)]
        share = sum(g["data"] == "second" for g in got) / len(got)
        assert 0.15 < share < 0.35, share
        assert {g["variant"] for g in got} == {"a", "b"}
        for _ in range(50):
            report = c.report(e["id"])
            if report["total"] == 400:
                break
        assert report["counts"]["b"] == sum(g["data"] == "second" for g in got)
        assert report["view"]["tables"][0]["id"] == "counts"
        c.stop_experiment(e["id"])


def test_the_cli_and_the_controller_drive_a_plugin_strategy(plugin_server):
    srv = plugin_server
    env = {**os.environ, "CHAMPION_URL": srv.url, "CHAMPION_TOKEN": srv.token}
    with srv.client() as c:
        c.deploy(answer, "toy2")
        c.deploy(answer_2, "toy2")
        out = subprocess.run(
            [sys.executable, "-m", "champion", "experiment", "create", "toy2", "-q",
             "--strategy", "round", "--variant", "a=toy2:1", "--variant", "b=toy2:2",
             "--set", "share=1", "--set", "stop_after=20"],
            capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        exp_id = out.stdout.strip()
        assert exp_id.startswith("exp_")
        assert {c.get_inference("toy2", i)["data"] for i in range(25)} == {"second"}
        for _ in range(100):
            e = c.experiment(exp_id)
            if e["status"] == "stopped":
                break
            import time

            time.sleep(0.1)
        assert e["status"] == "stopped" and e["history"][-1]["actor"] == "controller"
        assert e["history"][-1]["reason"].endswith("requests seen")
        report = subprocess.run([sys.executable, "-m", "champion", "experiment", "report",
                                 exp_id], capture_output=True, text=True, env=env, timeout=60)
        assert report.returncode == 0 and "requests" in report.stdout, report.stderr
