"""The layering rules of DESIGN.md, checked on the source: a layer that imports what it must
not, or a branch on a strategy's name outside its module, fails here."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from champion.strategies import STRATEGIES

SRC = Path(__file__).resolve().parents[2] / "src" / "champion"


def modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        yield rel, ast.parse(path.read_text(encoding="utf-8"), filename=rel)


def imported(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def layer(rel: str) -> str:
    return rel.split("/", 1)[0].removesuffix(".py")


# layer -> champion packages it may import (besides itself); None: no rule
ALLOWED: dict[str, set[str]] = {
    "routing": set(),
    "analysis": set(),
    "strategies": {"routing", "analysis"},
}
# layer -> champion packages it must not import
FORBIDDEN: dict[str, set[str]] = {
    "server": {"cli", "client", "main", "demo"},
    "client": {"server", "cli", "main", "store", "registry", "runtime", "controller"},
    "cli": {"server", "store", "registry", "runtime", "controller", "main"},
    "registry": {"server", "cli", "client"},
    "controller": {"server", "cli", "client"},
    "store": {"server", "cli", "client", "registry", "controller", "runtime"},
}
SQL = {"sqlalchemy", "alembic", "psycopg", "sqlite3"}
CODE_LOADERS = {"cloudpickle", "pickle", "runpy", "marshal"}
# Ray runs code shipped to it (a pickled class, a task): only runtime/ talks to a cluster.
RAY = {"ray"}
LOADS_NO_CODE = {"server", "registry", "controller", "store", "events", "strategies",
                 "routing", "analysis"}


def test_layers_import_only_what_the_design_allows() -> None:
    problems = []
    for rel, tree in modules():
        here = layer(rel)
        for name in imported(tree):
            top = name.split(".")[0]
            if top == "champion" and "." in name:
                other = name.split(".")[1]
                if other == here or other in ("errors", "__init__"):
                    continue
                allowed = ALLOWED.get(here)
                if allowed is not None and other not in allowed:
                    problems.append(f"{rel} imports {name} ({here}/ is pure)")
                if other in FORBIDDEN.get(here, set()):
                    problems.append(f"{rel} imports {name}")
            if top in SQL and here != "store":
                problems.append(f"{rel} imports {name}: only store/ speaks SQL")
            if top in CODE_LOADERS and here in LOADS_NO_CODE:
                problems.append(f"{rel} imports {name}: only runtime/ loads user code")
            if top in RAY and here != "runtime":
                problems.append(f"{rel} imports {name}: only runtime/ speaks to Ray")
    assert not problems, "\n".join(problems)


NAMED_ALLOWED = {"store/migrations.py"}  # upgrades of earlier releases' stored layouts
CHECKED = {"registry", "server", "controller", "cli", "client", "reporting", "store",
           "events", "console", "main", "demo"}


def _names_strategy(node: ast.AST, names: set[str]) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and (
        node.value in names)


def test_nothing_outside_strategies_branches_on_a_strategy_name() -> None:
    names = set(STRATEGIES)
    problems = []
    for rel, tree in modules():
        if layer(rel) not in CHECKED or rel in NAMED_ALLOWED:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                if any(_names_strategy(n, names) for n in (node.left, *node.comparators)):
                    problems.append(f"{rel}:{node.lineno} compares with a strategy name")
            elif isinstance(node, ast.Subscript) and _names_strategy(node.slice, names):
                problems.append(f"{rel}:{node.lineno} indexes by a strategy name")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("source", [
    "if row['strategy'] == 'canary':\n    pass\n",
    "x = config['shadow']\n",
])
def test_the_strategy_name_check_can_fail(source: str) -> None:
    tree = ast.parse(source)
    names = set(STRATEGIES)
    hits = [n for n in ast.walk(tree)
            if (isinstance(n, ast.Compare) and any(_names_strategy(c, names)
                                                   for c in (n.left, *n.comparators)))
            or (isinstance(n, ast.Subscript) and _names_strategy(n.slice, names))]
    assert hits


def test_starting_the_server_does_not_import_scipy_or_alembic():
    # `champion serve` → ready is a target (≤ 1 s): scipy (~0.6 s) loads when a report or a
    # policy update first needs it, alembic only when an existing store needs a migration.
    import subprocess
    import sys

    code = ("import sys, champion.main, champion.server.app, champion.strategies; "
            "print(sorted(m for m in ('scipy', 'alembic') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
