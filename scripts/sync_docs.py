"""Regenerate the generated parts of the docs from the code.

* docs/configuration.md: the settings table, from champion.settings.SETTINGS.
* docs/cli.md: each command's ``--help`` block (a section per command, added when missing).

Run after changing a setting or a command: ``python scripts/sync_docs.py``. tests/test_docs.py
fails when the docs fall behind.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from champion.main import main
from champion.settings import SETTINGS

DOCS = Path(__file__).resolve().parents[1] / "docs"


def settings_table() -> str:
    rows = ["| setting | flag | environment variable | type | default | help |",
            "|---|---|---|---|---|---|"]
    for s in SETTINGS:
        flag = f"`{s.flag}` / `--no-{s.flag[2:]}`" if s.type is bool else f"`{s.flag}`"
        if s.type is bool:
            default = f"`{str(s.default).lower()}`"
        elif s.default in ("", None):
            default = "empty"
        else:
            default = f"`{s.default!r}`"
        bounds = (f" Between {s.low:g} and {s.high:g}." if s.low is not None
                  and s.high is not None else "")
        rows.append(f"| `{s.name}` | {flag} | `{s.env_var}` | {s.type.__name__} | {default} "
                    f"| {s.help}{bounds} |")
    return "\n".join(rows) + "\n"


def sync_configuration() -> None:
    path = DOCS / "configuration.md"
    text = path.read_text()
    start = text.index("| setting | flag |")
    end = text.index("\n\n", start) + 1
    path.write_text(text[:start] + settings_table() + text[end:])


def commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for name, cmd in sorted(group.commands.items()):
        out.append((*prefix, name))
        if isinstance(cmd, click.Group):
            out += commands(cmd, (*prefix, name))
    return out


def help_text(args: tuple[str, ...]) -> str:
    result = CliRunner().invoke(main, [*args, "--help"], prog_name="champion",
                                terminal_width=80)
    return result.output


def sync_cli() -> None:
    path = DOCS / "cli.md"
    text = path.read_text()
    for args in [(), *commands(main)]:
        title = "## " + " ".join(("champion", *args))
        block = "```text\n" + help_text(args) + "```\n"
        pattern = re.compile(re.escape(title) + r"\n\n```text\n.*?```\n", re.S)
        if pattern.search(text):
            replacement = f"{title}\n\n{block}"
            text = pattern.sub(lambda _m, r=replacement: r, text, count=1)
        else:
            text = text.rstrip("\n") + f"\n\n{title}\n\n{block}"
    path.write_text(text)


if __name__ == "__main__":
    sync_configuration()
    sync_cli()
    sys.exit(0)
