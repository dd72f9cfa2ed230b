"""The controller's timeline: a costly report is not rebuilt more than REPORT_SHARE of the
time, a cheap one every ``timeline_interval``."""

from __future__ import annotations

import asyncio
import time

import pytest

from champion.controller import reconcile
from champion.registry import Registry
from champion.store import Store


def _running_shadow(store: Store) -> str:
    row = {"id": "exp_1a2b", "name": "", "endpoint": "churn", "strategy": "shadow",
           "status": "running", "active_endpoint": "churn", "created_at": 1.0,
           "created_by": "t", "state_version": 0, "state": {},
           "config": {"variants": {"live": "churn:1", "shadow": "churn:2"},
                      "control": "live", "salt": "s"}}
    store.create_experiment(row, "t")
    return row["id"]


@pytest.mark.parametrize(("cost", "interval", "too_soon", "later"), [
    (0.0, 10.0, 9.0, 10.5),  # a cheap report: a point every interval
    (0.1, 0.2, 1.5, 60.0),  # 0.1 s a report: at least 0.1 / REPORT_SHARE = 2 s apart
])
def test_timeline_points_are_spaced_by_the_reports_cost(tmp_path, monkeypatch, cost,
                                                        interval, too_soon, later):
    assert reconcile.REPORT_SHARE == 0.05
    store = Store.open(tmp_path)
    try:
        exp_id = _running_shadow(store)
        built: list[float] = []

        def build(store_, row, status, *, now, rng):
            built.append(now)
            time.sleep(cost)  # what a report at many pairs costs, in the builder's thread
            return {"shadows": {"shadow": {"counts": {"compared": 3},
                                           "agreement": {"rate": 1.0}}}}

        monkeypatch.setattr(reconcile, "build_sync", build)
        r = reconcile.Reconciler(Registry(store), lambda _id: {},
                                 timeline_interval=interval)
        for now in (1000.0, 1000.0 + interval * 0.5, 1000.0 + too_soon, 1000.0 + later):
            asyncio.run(r.once(None, now=now))
        # built at the first pass, skipped until the gap has passed, built again after it
        assert built == [1000.0, 1000.0 + later]
        assert [p["ts"] for p in store.snapshots(exp_id)] == built
    finally:
        store.close()
