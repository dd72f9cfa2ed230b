"""Memory of a server's process tree, read from /proc (no psutil).

``TreeSampler`` walks /proc every ``interval`` seconds, finds the server process and all its
descendants (by parent pid), sums their resident set sizes (VmRSS) and keeps the peak. Shared
pages of forked workers are counted once per process, as RSS does. It also remembers every
process it saw, so the suite can make sure none outlives the run.
"""

from __future__ import annotations

import os
import threading

PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read()
    except OSError:
        return None
    rest = text[text.rfind(b")") + 2:].split()
    return int(rest[1]), int(rest[19])


def processes() -> dict[int, tuple[int, int]]:
    out = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None:
                out[int(entry.name)] = st
    return out


def tree(root: int) -> dict[int, int]:
    """{pid: start time} for ROOT and its live descendants."""
    procs = processes()
    if root not in procs:
        return {}
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    found = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        found[pid] = procs[pid][1]
        todo.extend(children.get(pid, ()))
    return found


def rss(pid: int) -> int:
    """Resident bytes of one process (0 if gone)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def alive(pid: int, start: int) -> bool:
    st = _stat(pid)
    return st is not None and st[1] == start


class TreeSampler(threading.Thread):
    def __init__(self, root: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True, name=f"rss-{root}")
        self.root = root
        self.interval = interval
        self.peak = 0
        self.seen: dict[int, int] = {}
        self._stop_event = threading.Event()

    def sample(self) -> int:
        pids = tree(self.root)
        self.seen.update(pids)
        total = sum(rss(pid) for pid in pids)
        self.peak = max(self.peak, total)
        return total

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        self.sample()
