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
        assert early.starting == ["json", "no_such_module_here"]
        assert early.preloaded == set()  # a version's fork still names them
        asyncio.run(early.preload(["json"]))
        assert early.preloaded == {"json"}
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


def test_a_request_is_taken_between_the_start_lists_modules(tmp_path, monkeypatch) -> None:
    # slow_first takes 2 s to import, slow_second none; a request sent at once is answered
    # after slow_first at the latest, before slow_second: a deploy just after the server's
    # start waits for the module under way, not for the whole list
    (tmp_path / "slow_first.py").write_text("import time\ntime.sleep(2)\n")
    (tmp_path / "slow_second.py").write_text("")
    seen = tmp_path / "seen.txt"
    (tmp_path / "probe.py").write_text(
        f"import sys\nopen({str(seen)!r}, 'w').write(repr(sorted(\n"
        "    m for m in ('slow_first', 'slow_second') if m in sys.modules)))\n")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    forks.start_early(["slow_first", "slow_second"])
    early = forks._early
    assert early is not None
    asyncio.run(early.preload(["probe"]))
    assert seen.read_text() in ("[]", "['slow_first']")
    assert early._request({"op": "preload", "modules": ["slow_second"]})["failed"] == []
