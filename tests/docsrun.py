"""Run a documentation page's code blocks, in order, as a reader pasting them would.

Used by tests/test_docs_run.py; also runnable by hand: ``python -m tests.docsrun docs/auth.md``.

What runs, and how:

- Each page gets a fresh, empty directory and a fresh ``champion serve`` on a free loopback
  port, started there with a random admin token; ``CHAMPION_URL`` and ``CHAMPION_TOKEN`` are
  exported, so the page reads as after ``export CHAMPION_URL=... CHAMPION_TOKEN=...``. A page
  whose own blocks start the server (the README's quickstart: a ``champion serve`` line) gets
  no server and no token (``CHAMPION_URL`` is still the run's address, see below): it finds
  the token in ``./champion-data/token`` as a reader does.
- The default address ``127.0.0.1:8000`` (and ``--port 8000``) in a page is read as the
  run's address (and ``CHAMPION_PORT`` is the run's port), so ``curl
  http://127.0.0.1:8000/v1/churn`` works.
- ``bash`` blocks run in one shell per page (variables carry over), with ``set -e``: the first
  command that fails fails the page. A line that serves until Ctrl-C (``champion serve``,
  ``champion demo``) is started in the background, the run waits until it is ready, and it is
  stopped with Ctrl-C (SIGINT) when the next such line starts or the page ends. It runs in
  the page's environment, not the shell's: set a variable on the line itself
  (``PYTHONPATH=$PWD champion serve ...``).
- ``python`` blocks run in one interpreter per page, statement by statement, from files in
  the page's directory (so ``inspect.getsource`` finds the functions a page deploys).
- Output is checked where the page shows it: ``# => TEXT`` lines after a statement or
  command (several lines make several lines of expected output; a trailing ``# => TEXT`` on a
  Python expression's line too) are the last lines of what the commands since the previous
  check printed (in Python: what that one statement printed, then its value's ``repr``);
  a ````text`` block right after a code block is the whole block's output,
  compared with its numbers, ids and table widths masked (they change from run to run).
  ``...`` matches anything, runs of white space match any white space, and any request or
  experiment id matches any other (a page may show a real one).
- Directives, an HTML comment on the line right before a block's fence (not rendered; the
  prose around the block says the same to a reader):

  - ``<!-- docs: skip: REASON -->``: not run (needs several machines, reinstalls, ...);
  - ``<!-- docs: file NAME -->``: the block is the content of file NAME, written into the
    page's directory (not run);
  - ``<!-- docs: fails -->``: a bash block whose last command is expected to fail (shows an
    error); its output is still checked;
  - ``<!-- docs: not-output -->``: a ``text`` block after a code block that is not its
    output;
  - ``<!-- docs: requires: MODULE -->``: skipped (with that reason) where MODULE is not
    installed.

  Blocks of other languages (json, yaml, text) are not run.

A failure names the page, the line, the snippet and its output.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import queue
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(\w*)\s*$")
DIRECTIVE = re.compile(r"^<!--\s*docs:\s*([a-z-]+)\s*:?\s*(.*?)\s*-->\s*$")
DEFAULT_ADDRESS = re.compile(r"(?:127\.0\.0\.1|localhost):8000\b")
DEFAULT_PORT = re.compile(r"(--port[ =]|CHAMPION_PORT=)8000\b")
NAMED_PORT = re.compile(r"(?:--port[ =]|CHAMPION_PORT=)(\d+)")
LONG_RUNNING = re.compile(
    r"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)*champion\s+(serve|demo)\b(?!.*(?:--help|--no-serve))")
EXPECT = re.compile(r"^\s*# => ?(.*)$")
RUN_LANGS = {"bash", "python"}
BLOCK_TIMEOUT = float(os.environ.get("CHAMPION_DOCS_TIMEOUT", "90"))
SERVER_ARGS = ["--timeout", "20"]


class DocsError(AssertionError):
    """A snippet broke: the message names the page, the line, the snippet and its output."""


@dataclass
class Block:
    page: str
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    skip: str = ""
    file: str = ""
    fails: bool = False
    not_output: bool = False
    expected: str | None = None  # a ```text block right after it

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def parse(path: Path, root: Path = ROOT) -> list[Block]:
    """The page's fenced blocks with their directives, and each block's shown output."""
    lines = path.read_text(encoding="utf-8").splitlines()
    page = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    blocks: list[Block] = []
    i = 0
    last_end = -10  # line index of the previous block's closing fence
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start = i
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != "```":
            j += 1
        if j >= len(lines):
            raise DocsError(f"{page}:{start + 1}: code block never closed")
        block = Block(page, start + 1, m.group(1), "\n".join(lines[start + 1:j]) + "\n")
        k = start - 1
        while k >= 0 and DIRECTIVE.match(lines[k]):
            kind, arg = DIRECTIVE.match(lines[k]).groups()  # type: ignore[union-attr]
            if kind == "skip":
                block.skip = arg or "marked skip"
            elif kind == "file":
                block.file = arg
            elif kind == "fails":
                block.fails = True
            elif kind == "not-output":
                block.not_output = True
            elif kind == "requires":
                if importlib.util.find_spec(arg) is None:
                    block.skip = f"needs the {arg} package, not installed here"
            else:
                raise DocsError(f"{page}:{k + 1}: unknown docs directive {kind!r}")
            k -= 1
        between = lines[last_end + 1:start]
        if (block.lang == "text" and not block.not_output and blocks and last_end >= 0
                and all(not s.strip() for s in between) and blocks[-1].lang in RUN_LANGS
                and not blocks[-1].file):
            blocks[-1].expected = block.code
        blocks.append(block)
        last_end = j
        i = j + 1
    return blocks


# ------------------------------------------------------------------ matching output


def _norm(text: str) -> str:
    return " ".join(text.split())


def matches(expected: str, got: str) -> bool:
    """doctest's ELLIPSIS and NORMALIZE_WHITESPACE: ``...`` matches anything."""
    exp, out = _norm(expected), _norm(got)
    pattern = ".*?".join(re.escape(part) for part in exp.split("..."))
    pattern = pattern.replace(r"\ ", r"\s*")
    return re.fullmatch(r"\s*" + pattern + r"\s*", out, flags=re.DOTALL) is not None


def mask_ids(text: str) -> str:
    """Experiment and request ids are alike: a page may show a real one."""
    text = re.sub(r"\bexp_[0-9a-f]{8}\b", "exp_0", text)
    return re.sub(r"\b0[0-9a-f]{23}[.0-9a-z]*-[0-9a-f]{10}\b", "REQUEST_ID", text)


def mask(text: str) -> str:
    """What changes from run to run, made alike: ids, numbers, the widths of table rules."""
    text = re.sub(r"\d[\d.]*(?:e[-+]?\d+)?", "0", mask_ids(text))
    return re.sub(r"([━─═])\1+", r"\1", text)


def matches_shown(expected: str, got: str) -> bool:
    """A text block after a code block: numbers, ids and table widths may differ."""
    return matches(mask(expected), mask(got))


def matches_tail(expected: str, got: str) -> bool:
    """``# =>`` under several commands shows the last lines of their output."""
    lines = mask_ids(got).splitlines()
    expected = mask_ids(expected)
    return any(matches(expected, "\n".join(lines[i:])) for i in range(len(lines) + 1))


def _indent(text: str, limit: int = 4000) -> str:
    text = text if len(text) <= limit else "[...]\n" + text[-limit:]
    return textwrap.indent(text.rstrip("\n") or "(nothing)", "    | ")


# ------------------------------------------------------------------ the page's world


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float,
               marker: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DocsError(f"exited ({proc.returncode}) while starting:\n"
                            + _indent(log.read_text(errors="replace")))
        try:
            ready = httpx.get(url + "/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            ready = False
        if ready and (not marker or marker in log.read_text(errors="replace")):
            return
        time.sleep(0.1)
    raise DocsError("did not become ready in time:\n" + _indent(log.read_text(errors="replace")))


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT, timeout: float = 20) -> None:
    """Ctrl-C to the process's group (it was started in its own session), then SIGKILL."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


_RESET_SIGINT = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); " \
                "os.execvp(sys.argv[1], sys.argv[1:])"

BASH_PRELUDE = r"""
set -E -o pipefail
trap 'echo "docs: exit status $? at line $LINENO" >&2' ERR
__docs_run() {  # FILE OUT EXPECT_FAIL
    if [ "$3" = 1 ]; then
        set +e; source "$1" > "$2" 2>&1 < /dev/null; __docs_rc=$?
    else
        set -e; source "$1" > "$2" 2>&1 < /dev/null; __docs_rc=$?; set +e
    fi
    echo "__DOCS_DONE__ $__docs_rc"
}
"""

PY_DRIVER = r'''
import ast, contextlib, io, json, sys, traceback
ns = {"__name__": "__main__"}
sys.path.insert(0, ".")
out = sys.__stdout__
for msg in sys.stdin:
    job = json.loads(msg)
    src = open(job["file"]).read()
    lines = src.splitlines()
    result = {"ok": True, "steps": []}
    try:
        tree = ast.parse(src, job["file"])
    except SyntaxError:
        result = {"ok": False, "line": 0, "output": "", "error": traceback.format_exc(limit=0)}
        out.write(json.dumps(result) + "\n"); out.flush(); continue
    for stmt in tree.body:
        end = stmt.end_lineno
        expect = []
        m = lines[end - 1].split("# => ", 1)
        if len(m) == 2 and isinstance(stmt, ast.Expr):
            expect.append(m[1])
        k = end
        while k < len(lines) and lines[k].lstrip().startswith("# =>"):
            expect.append(lines[k].lstrip()[4:].removeprefix(" "))
            k += 1
        buf = io.StringIO()
        error = ""
        try:
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                if isinstance(stmt, ast.Expr):
                    code = compile(ast.Expression(stmt.value), job["file"], "eval")
                    value = eval(code, ns)
                    if value is not None:
                        ns["_"] = value
                        print(repr(value))
                else:
                    exec(compile(ast.Module([stmt], []), job["file"], "exec"), ns)
        except BaseException:
            etype, evalue, tb = sys.exc_info()
            mine = [f for f in traceback.extract_tb(tb) if f.filename == job["file"]]
            error = "".join(traceback.format_list(mine)
                            + traceback.format_exception_only(etype, evalue))
        step = {"line": stmt.lineno, "output": buf.getvalue(), "expect": expect}
        if error:
            result = {"ok": False, "line": stmt.lineno, "output": buf.getvalue(), "error": error,
                      "steps": result["steps"]}
            break
        result["steps"].append(step)
    out.write(json.dumps(result) + "\n"); out.flush()
'''


@dataclass
class Report:
    page: str
    executed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    files: int = 0
    seconds: float = 0.0
    timeline: list[tuple[str, float]] = field(default_factory=list)  # (where, seconds since start)


class Lines:
    """A process's output, line by line, with a timeout (a thread reads the pipe)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.queue.put(line)
        self.queue.put("")  # end of output

    def get(self, deadline: float) -> str | None:
        """The next line, "" at the end, None at the deadline."""
        try:
            return self.queue.get(timeout=max(deadline - time.monotonic(), 0.001))
        except queue.Empty:
            return None


class PageRun:
    """One page's directory, server, shell and interpreter."""

    def __init__(self, path: Path, workdir: Path) -> None:
        self.path = path
        self.blocks = parse(path)
        self.page = self.blocks[0].page if self.blocks else str(path)
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = "docs-" + secrets.token_hex(8)
        self.own_server = any(
            b.lang == "bash" and not b.skip and not b.file
            and any(LONG_RUNNING.match(ln.strip()) and " serve" in ln for ln in b.code.splitlines())
            for b in self.blocks)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("CHAMPION_") and k not in ("PYTEST_CURRENT_TEST",)}
        self.env.update({
            "CHAMPION_PORT": str(self.port),
            "CHAMPION_CONFIG": str(self.dir / ".champion-login.json"),
            "COLUMNS": "100",
            "PYTHONUNBUFFERED": "1",
            "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        })
        # the default address is the run's, for the CLI and client too
        self.env["CHAMPION_URL"] = self.url
        if not self.own_server:
            self.env["CHAMPION_TOKEN"] = self.token
        self.server: subprocess.Popen[bytes] | None = None
        self.background: subprocess.Popen[bytes] | None = None
        self.shell: subprocess.Popen[str] | None = None
        self.python: subprocess.Popen[str] | None = None
        self.shell_lines: Lines | None = None
        self.python_lines: Lines | None = None
        self.report = Report(self.page)
        self.t0 = 0.0
        self.n = 0

    # -- lifecycle

    def __enter__(self) -> PageRun:
        self.t0 = time.monotonic()
        return self

    def _start_server(self) -> None:
        """The page's server, started before its first snippet (a page with none needs none)."""
        if self.own_server or self.server is not None:
            return
        log = self.dir.parent / f"{self.dir.name}-server.log"
        env = {**self.env, "CHAMPION_TOKEN": self.token}
        with open(log, "ab") as f:
            self.server = subprocess.Popen(
                [sys.executable, "-m", "champion", "serve", "--port", str(self.port),
                 *SERVER_ARGS], cwd=self.dir, env=env, stdout=f, stderr=subprocess.STDOUT,
                start_new_session=True)
        try:
            wait_ready(self.url, self.server, log, 60)
        except DocsError as exc:
            raise DocsError(f"{self.page}: the page's server {exc}") from None

    def __exit__(self, *exc: object) -> None:
        for proc, lines in ((self.python, self.python_lines), (self.shell, self.shell_lines)):
            if proc is None:
                continue
            if proc.stdin:
                proc.stdin.close()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            if lines is not None:
                lines.thread.join(5)
            if proc.stdout:
                proc.stdout.close()
        if self.background is not None:
            stop(self.background)
        if self.server is not None:
            stop(self.server, signal.SIGTERM)
        self.report.seconds = time.monotonic() - self.t0

    # -- running

    def run(self) -> Report:
        for block in self.blocks:
            if block.skip:
                if block.lang in RUN_LANGS:
                    self.report.skipped.append((block.where, block.skip))
                continue
            code = DEFAULT_ADDRESS.sub(f"127.0.0.1:{self.port}", block.code)
            code = DEFAULT_PORT.sub(rf"\g<1>{self.port}", code)
            if block.file:
                target = self.dir / block.file
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(code, encoding="utf-8")
                self.report.files += 1
                continue
            if block.lang in RUN_LANGS:
                self._start_server()
            if block.lang == "bash":
                self.run_bash(block, code)
            elif block.lang == "python":
                self.run_python(block, code)
            else:
                continue
            self.report.executed += 1
            self.report.timeline.append((block.where, time.monotonic() - self.t0))
        return self.report

    def fail(self, block: Block, line: int, what: str, output: str, code: str = "") -> None:
        snippet = code or block.code
        where = f"{block.page}:{block.line + line}" if line else block.where
        log = self.dir.parent / f"{self.dir.name}-server.log"
        server = ""
        if log.exists():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            server = f"\n  the page's server log ({log}), last lines:\n{_indent(tail)}"
        raise DocsError(f"{where}: {what}\n  the {block.lang} block at {block.where}:\n"
                        f"{_indent(snippet)}\n  its output:\n{_indent(output)}{server}\n"
                        f"  (fix the page, or mark a block that cannot run on one machine with "
                        f"<!-- docs: skip: REASON --> on the line before it; see "
                        f"tests/docsrun.py)")

    def _file(self, block: Block, suffix: str, text: str) -> Path:
        self.n += 1
        stem = re.sub(r"\W+", "_", Path(block.page).stem)
        path = self.dir / ".docs" / f"{stem}_{block.line}_{self.n}{suffix}"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    # bash

    def _start_shell(self) -> subprocess.Popen[str]:
        if self.shell is None:
            self.shell = subprocess.Popen(
                ["bash", "--noprofile", "--norc"], cwd=self.dir, env=self.env, text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True)
            assert self.shell.stdin is not None
            self.shell_lines = Lines(self.shell)
            self.shell.stdin.write(BASH_PRELUDE)
            self.shell.stdin.flush()
        return self.shell

    def _sh(self, block: Block, script: str, expect_fail: bool) -> tuple[int, str]:
        shell = self._start_shell()
        assert shell.stdin is not None and shell.stdout is not None
        file = self._file(block, ".sh", script)
        out = file.with_suffix(".out")
        shell.stdin.write(f"__docs_run {shlex.quote(str(file))} {shlex.quote(str(out))} "
                          f"{int(expect_fail)}\n")
        shell.stdin.flush()
        deadline = time.monotonic() + BLOCK_TIMEOUT
        noise = []
        while True:
            line = self.shell_lines.get(deadline)
            if line is None:
                os.killpg(shell.pid, signal.SIGKILL)
                shell.wait()
                text = out.read_text(errors="replace") if out.exists() else ""
                self.fail(block, 0, f"timed out after {BLOCK_TIMEOUT:.0f} s", text, script)
            if not line:  # set -e ended the shell
                shell.wait()
                text = out.read_text(errors="replace") if out.exists() else ""
                return shell.returncode or 1, text + "".join(noise)
            if line.startswith("__DOCS_DONE__ "):
                return int(line.split()[1]), out.read_text(errors="replace")
            noise.append(line)

    def run_bash(self, block: Block, code: str) -> None:
        segments = self._segments(code)
        outputs = []
        for k, (offset, script, expect) in enumerate(segments):
            last = k == len(segments) - 1
            rc, output = self._run_bash_segment(block, script, expect_fail=block.fails and last)
            outputs.append(output)
            if block.fails and last:
                if rc == 0:
                    self.fail(block, offset, "was expected to fail (docs: fails) but exited 0",
                              output, script)
            elif rc != 0:
                at = re.search(r"docs: exit status \d+ at line (\d+)", output)
                line = offset + int(at.group(1)) - 1 if at else offset
                self.fail(block, line, f"exited {rc}", output, script)
            if expect and not matches_tail("\n".join(expect), output):
                self.fail(block, offset, "output differs from what the page shows:\n"
                          + _indent("\n".join(expect)), output, script)
        if block.expected is not None and not matches_shown(block.expected, "".join(outputs)):
            self.fail(block, 0, "output differs from the text block after it:\n"
                      + _indent(block.expected), "".join(outputs))

    @staticmethod
    def _segments(code: str) -> list[tuple[int, str, list[str]]]:
        """(line offset, script, expected output lines): the block cut after each ``# =>``."""
        segments: list[tuple[int, str, list[str]]] = []
        lines = code.splitlines()
        start, cur, expect = 0, [], []
        for i, line in enumerate(lines):
            m = EXPECT.match(line)
            if m:
                expect.append(m.group(1))
                continue
            if expect:
                segments.append((start + 1, "\n".join(cur) + "\n", expect))
                start, cur, expect = i, [], []
            cur.append(line)
        if cur or expect:
            segments.append((start + 1, "\n".join(cur) + "\n", expect))
        return segments

    def _run_bash_segment(self, block: Block, script: str, expect_fail: bool) -> tuple[int, str]:
        """Lines that serve until Ctrl-C go to the background; the rest to the shell."""
        before: list[str] = []
        outputs = []
        for line in script.splitlines():
            if LONG_RUNNING.match(line.strip()):
                if any(s.strip() for s in before):
                    rc, out = self._sh(block, "\n".join(before) + "\n", False)
                    outputs.append(out)
                    if rc:
                        return rc, "".join(outputs)
                before = []
                outputs.append(self._start_background(block, line.split(" #")[0].strip()))
            else:
                before.append(line)
        if any(s.strip() and not s.strip().startswith("#") for s in before) or not outputs:
            rc, out = self._sh(block, "\n".join(before) + "\n", expect_fail)
            outputs.append(out)
            return rc, "".join(outputs)
        return 0, "".join(outputs)

    def _start_background(self, block: Block, command: str) -> str:
        if self.background is not None:
            stop(self.background)
        self.n += 1
        log = self.dir / ".docs" / f"background_{self.n}.log"
        log.parent.mkdir(exist_ok=True)
        with open(log, "wb") as f:
            self.background = subprocess.Popen(
                [sys.executable, "-c", _RESET_SIGINT, "bash", "-c", command], cwd=self.dir,
                env=self.env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        marker = "serving until Ctrl-C" if " demo" in command else ""
        port = NAMED_PORT.search(command)
        url = f"http://127.0.0.1:{port.group(1)}" if port else self.url
        try:
            wait_ready(url, self.background, log, 120, marker)
        except DocsError as exc:
            self.fail(block, 0, f"`{command}` {exc}", log.read_text(errors="replace"), command)
        return log.read_text(errors="replace")

    # python

    def run_python(self, block: Block, code: str) -> None:
        if self.python is None:
            self.python = subprocess.Popen(
                [sys.executable, "-c", PY_DRIVER], cwd=self.dir, env=self.env, text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True)
            self.python_lines = Lines(self.python)
        assert self.python.stdin is not None
        file = self._file(block, ".py", code)
        self.python.stdin.write(json.dumps({"file": str(file)}) + "\n")
        self.python.stdin.flush()
        deadline = time.monotonic() + BLOCK_TIMEOUT
        noise: list[str] = []
        while True:
            line = self.python_lines.get(deadline)
            if line is None:
                os.killpg(self.python.pid, signal.SIGKILL)
                self.python.wait()
                self.fail(block, 0, f"timed out after {BLOCK_TIMEOUT:.0f} s", "".join(noise))
            if not line:
                self.fail(block, 0, "the interpreter exited", "".join(noise))
            if line.startswith("{"):
                try:
                    result = json.loads(line)
                    break
                except ValueError:
                    pass
            noise.append(line)
        outputs = "".join(noise)
        for step in result.get("steps", []):
            outputs += step["output"]
            if step["expect"] and not matches(mask_ids("\n".join(step["expect"])),
                                              mask_ids(step["output"])):
                self.fail(block, step["line"], "output differs from what the page shows:\n"
                          + _indent("\n".join(step["expect"])), step["output"])
        if not result["ok"]:
            self.fail(block, result["line"],
                      "raised:\n" + _indent(result["error"]), outputs + result["output"])
        if block.expected is not None and not matches_shown(block.expected, outputs):
            self.fail(block, 0, "output differs from the text block after it:\n"
                      + _indent(block.expected), outputs)


def run_page(path: Path, workdir: Path) -> Report:
    with PageRun(path, workdir) as run:
        run.run()
    return run.report


PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


if __name__ == "__main__":  # python -m tests.docsrun PAGE... (work in a temporary directory)
    import tempfile

    for arg in sys.argv[1:] or [str(p) for p in PAGES]:
        with tempfile.TemporaryDirectory(prefix="docsrun-") as tmp:
            rep = run_page(Path(arg).resolve(), Path(tmp) / Path(arg).stem)
            print(f"{rep.page}: {rep.executed} snippets in {rep.seconds:.1f} s, "
                  f"{len(rep.skipped)} skipped", flush=True)
