"""The fork server started early (``forks.start_early``, called at the top of
``champion serve``): adopted by the runtime's first ``Zygotes.get``, importing its modules
before it reads a request, and stopped at exit when nothing adopted it."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from champion.runtime import forks


@pytest.fixture(autouse=True)
def _no_early_left():
    yield
    forks._close_early()


def test_the_first_get_adopts_the_early_fork_server() -> None:
    forks.start_early(["json", "no_such_module_here"])
    early = forks._early
    assert early is not None and early.alive
    zygotes = forks.Zygotes()
    try:
        got = zygotes.get(None, None)
        assert got is early and forks._early is None
        assert zygotes.get(None, None) is early  # one per key, not a second process
        # it imported at start and then serves requests; the bad module did not stop it
        assert early._request({"op": "preload", "modules": ["json"]}) == {
            "ok": True, "failed": []}
        assert early.proc is not None and early.proc.poll() is None
        asyncio.run(early.preload(["json"]))  # known preloaded: no request at all
    finally:
        zygotes.close()
    assert not early.alive


def test_another_environment_starts_its_own_and_the_early_one_is_stopped() -> None:
    forks.start_early([])
    early = forks._early
    assert early is not None
    zygotes = forks.Zygotes()
    try:
        other = zygotes.get(sys.executable, dict(os.environ, CHAMPION_TEST_OTHER="1"))
        assert other is not early and other.proc is None  # started on its first request
        assert forks._early is early  # left for its own key
    finally:
        zygotes.close()
    forks._close_early()
    assert early.proc is None and forks._early is None


def test_disabled_fork_servers_adopt_nothing() -> None:
    forks.start_early([])
    assert forks.Zygotes(enabled=False).get(None, None) is None
    assert forks._early is not None


def test_settle_freezes_the_heap_and_leaves_the_thresholds() -> None:
    import gc

    from champion.runtime import gcsettle

    before = gc.get_threshold()
    try:
        gc.unfreeze()
        kept = [[] for _ in range(1000)]
        gcsettle.settle()
        assert gc.get_freeze_count() >= len(kept)
        assert gc.get_threshold() == before
    finally:
        gc.unfreeze()
