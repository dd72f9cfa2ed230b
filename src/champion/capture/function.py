"""Turn a Python function into a version artifact.

What is captured, and how the worker rebuilds it:

* **source**: the function and every helper function or class it uses that is defined in the
  same notebook or script, as readable text. The worker ``exec``s it in a fresh namespace.
* **values**: every other global it refers to (models, encoders, constants), pickled one by
  one with cloudpickle and stored by content hash, so an unchanged model is uploaded once.
* **imports**: modules and library objects it uses, as import statements.
* **files**: local modules it imports from the working directory (or that the pickled values
  refer to), copied as files.
* **packages**: the installed distributions behind all of the above, pinned to their
  installed versions, and the Python version.

A function that needs more than source can express (a closure, a decorator, a lambda) is
additionally pickled by value with cloudpickle; the source listing is still kept for people.
"""

from __future__ import annotations

import ast
import builtins
import dis
import inspect
import platform
import re
import sys
import textwrap
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cloudpickle

from champion.capture.packages import (
    SIMPLE_REQUIREMENT,
    distributions_for,
    is_stdlib,
    local_module_file,
    modules_in_pickle,
    top_level,
)
from champion.errors import DeployError

_MAX_LOCAL_FILES = 200
_MAX_LOCAL_BYTES = 20 * 1024 * 1024


@dataclass
class Captured:
    """Everything needed to rebuild and run a function elsewhere."""

    function_name: str
    source: str
    imports: list[str]
    helpers: list[str]
    values: dict[str, bytes]
    value_types: dict[str, str]
    files: dict[str, bytes]
    packages: dict[str, str]
    modules: list[str]
    python_version: str
    signature: list[dict[str, Any]]
    function_pickle: bytes | None = None
    warnings: list[str] = field(default_factory=list)


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _global_names(fn: types.FunctionType) -> list[str]:
    names = _code_names(fn.__code__)
    # Keep instruction order for a stable listing.
    ordered: list[str] = []
    for ins in dis.get_instructions(fn):
        if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME") and ins.argval in names:
            ordered.append(str(ins.argval))
    ordered += sorted(names - set(ordered))
    return list(dict.fromkeys(ordered))


def _imported_in_body(code: types.CodeType) -> set[str]:
    """Modules imported inside a function body (``import x`` / ``from x import y``)."""
    found: set[str] = set()
    for ins in dis.get_instructions(code):
        if ins.opname == "IMPORT_NAME" and isinstance(ins.argval, str):
            found.add(ins.argval)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found |= _imported_in_body(const)
    return found


def _source(obj: Any) -> str | None:
    try:
        return textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        pass
    if isinstance(obj, types.FunctionType):
        return _source_from_history(obj)
    return None


def _history() -> list[str]:
    """What the user typed in this interactive session: IPython's cells, or the lines of
    the plain Python shell's ``readline`` buffer (oldest first); empty elsewhere."""
    ipython = sys.modules.get("IPython")
    if ipython is not None:
        shell = getattr(ipython, "get_ipython", lambda: None)()
        if shell is not None:
            return [str(cell) for cell in shell.history_manager.input_hist_raw]
    readline = sys.modules.get("readline")
    if readline is None or not hasattr(sys, "ps1"):
        return []
    try:
        n = readline.get_current_history_length()
        return [readline.get_history_item(i) or "" for i in range(1, n + 1)]
    except Exception:
        return []


def _same_code(a: types.CodeType, b: types.CodeType) -> bool:
    def consts(c: types.CodeType) -> list[Any]:
        return [k for k in c.co_consts if not isinstance(k, types.CodeType)]
    return (a.co_code == b.co_code and a.co_names == b.co_names
            and a.co_varnames == b.co_varnames and consts(a) == consts(b))


def _source_from_history(fn: types.FunctionType) -> str | None:
    """The ``def`` of ``fn`` typed in this session, checked against its bytecode."""
    history = _history()
    if not history:
        return None
    start = re.compile(rf"^\s*(async\s+)?def\s+{re.escape(fn.__name__)}\s*\(")
    text = "\n".join(history)
    lines = text.split("\n")
    for i in range(len(lines) - 1, -1, -1):
        if not start.match(lines[i]):
            continue
        indent = len(lines[i]) - len(lines[i].lstrip())
        block = [lines[i]]
        for line in lines[i + 1:]:
            if line.strip() and len(line) - len(line.lstrip()) <= indent:
                break
            block.append(line)
        candidate = textwrap.dedent("\n".join(block)).rstrip() + "\n"
        try:
            module = compile(candidate, "<history>", "exec")
        except SyntaxError:
            continue
        for const in module.co_consts:
            if (isinstance(const, types.CodeType) and const.co_name == fn.__name__
                    and _same_code(const, fn.__code__) and _same_defaults(candidate, fn)):
                return candidate
    return None


def _same_defaults(source: str, fn: types.FunctionType) -> bool:
    """Whether the literal defaults written in ``source`` are ``fn``'s (others can't be
    checked without running them, and are taken on trust)."""
    node = ast.parse(source).body[0]
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    written = node.args.defaults
    actual = fn.__defaults__ or ()
    if len(written) != len(actual):
        return False
    for expr, value in zip(written, actual, strict=True):
        try:
            literal = ast.literal_eval(expr)
        except (ValueError, SyntaxError, TypeError):
            continue
        if type(literal) is not type(value) or literal != value:
            return False
    return True


def _is_user_defined(obj: Any, home_module: str) -> bool:
    module = getattr(obj, "__module__", None)
    return module in ("__main__", home_module)


def _signature(fn: Callable[..., Any]) -> list[dict[str, Any]]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return [{"name": "data", "kind": "POSITIONAL_OR_KEYWORD", "default": False}]
    return [
        {"name": p.name, "kind": p.kind.name, "default": p.default is not p.empty}
        for p in sig.parameters.values()
    ]


class _Walker:
    def __init__(self, fn: types.FunctionType, root: Path) -> None:
        self.fn = fn
        self.root = root
        self.home = fn.__module__
        self.imports: dict[str, None] = {}
        self.helpers: list[tuple[str, str]] = []  # (name, source), dependencies first
        self.values: dict[str, bytes] = {}
        self.value_types: dict[str, str] = {}
        self.value_reprs: dict[str, str] = {}
        self.modules: set[str] = set()
        self.local_files: set[Path] = set()
        self.needs_pickle = False
        self._seen: set[int] = set()

    # A function or class defined in the notebook / script: walk what it uses.
    def walk_function(self, fn: types.FunctionType) -> None:
        if id(fn) in self._seen:
            return
        self._seen.add(id(fn))
        for module in _imported_in_body(fn.__code__):
            self.note_module(module)
        glb = fn.__globals__
        for name in _global_names(fn):
            if name in glb:
                self.bind(name, glb[name], glb)
            elif not hasattr(builtins, name):
                continue  # an attribute name, or a global not yet defined: nothing to bind

    def walk_class(self, cls: type) -> None:
        if id(cls) in self._seen:
            return
        self._seen.add(id(cls))
        module = inspect.getmodule(cls)
        glb = vars(module) if module is not None else {}
        for base in cls.__bases__:
            if base is not object and base.__name__ in glb:
                self.bind(base.__name__, base, glb)
        for attr in vars(cls).values():
            target = attr.__func__ if isinstance(attr, (classmethod, staticmethod)) else attr
            if isinstance(target, types.FunctionType):
                self.walk_function(target)

    def bind(self, name: str, value: Any, glb: dict[str, Any]) -> None:
        if isinstance(value, types.ModuleType):
            self.add_module_import(name, value)
        elif isinstance(value, (types.FunctionType, type)) and _is_user_defined(value, self.home):
            self.add_helper(name, value)
        elif isinstance(value, (types.FunctionType, types.BuiltinFunctionType, type)):
            self.add_from_import(name, value)
        else:
            self.add_value(name, value)

    def add_module_import(self, name: str, module: types.ModuleType) -> None:
        mod_name = module.__name__
        if mod_name == name:
            stmt = f"import {mod_name}"
        elif "." in mod_name and mod_name.rsplit(".", 1)[1] == name:
            parent, child = mod_name.rsplit(".", 1)
            stmt = f"from {parent} import {child}"
        else:
            stmt = f"import {mod_name} as {name}"
        self.imports[stmt] = None
        self.note_module(mod_name)

    def add_from_import(self, name: str, obj: Any) -> None:
        module = getattr(obj, "__module__", None)
        qual = getattr(obj, "__qualname__", getattr(obj, "__name__", name))
        if not module or "<" in qual or "." in qual:
            self.add_value(name, obj)
            return
        stmt = f"from {module} import {qual}" + (f" as {name}" if qual != name else "")
        self.imports[stmt] = None
        self.note_module(module)

    def add_helper(self, name: str, obj: Any) -> None:
        if any(n == name for n, _ in self.helpers) or obj is self.fn:
            return
        src = _source(obj)
        if src is None or src.lstrip().startswith("@") or getattr(obj, "__name__", "") != name:
            # Cannot be rebuilt from text: pickle it by value instead.
            self.add_value(name, obj)
            return
        if isinstance(obj, type):
            self.walk_class(obj)
        else:
            if obj.__closure__:
                self.add_value(name, obj)
                return
            self.walk_function(obj)
        self.helpers.append((name, src))

    def add_value(self, name: str, value: Any) -> None:
        if name in self.values:
            return
        data = _pickle_value(name, value)
        self.values[name] = data
        self.value_types[name] = f"{type(value).__module__}.{type(value).__qualname__}"
        if isinstance(value, (int, float, str, bool, type(None))) and len(repr(value)) <= 80:
            self.value_reprs[name] = repr(value)
        for module in modules_in_pickle(data):
            self.note_module(module)

    def note_module(self, module_name: str) -> None:
        if is_stdlib(module_name):
            return
        path = local_module_file(module_name, self.root)
        if path is not None:
            self.add_local_files(module_name, path)
        else:
            self.modules.add(top_level(module_name))

    def add_local_files(self, module_name: str, path: Path) -> None:
        top = top_level(module_name)
        top_path = self.root / top
        if top_path.is_dir():  # a local package: take all of its Python files
            files: Iterable[Path] = sorted(top_path.rglob("*.py"))
        else:
            files = [path]
        for f in files:
            if "__pycache__" not in f.parts:
                self.local_files.add(f)


def capture(
    fn: Callable[..., Any],
    *,
    python_packages: Iterable[str] | None = None,
    extra_files: Iterable[str | Path] | dict[str, str | Path] | None = None,
    root: str | Path | None = None,
    discover_local_files: bool = True,
) -> Captured:
    """Capture ``fn`` for deployment. Raises DeployError naming what cannot be captured."""
    if not callable(fn):
        raise DeployError(f"cannot deploy {fn!r}: it is not a function")
    if not isinstance(fn, types.FunctionType):
        raise DeployError(
            f"cannot deploy {type(fn).__name__!r} objects: pass a plain Python function "
            "(def ...) that calls it"
        )
    base = Path(root).resolve() if root is not None else Path.cwd().resolve()
    walker = _Walker(fn, base)
    walker.walk_function(fn)

    src = _source(fn)
    function_pickle: bytes | None = None
    needs_pickle = (
        src is None
        or fn.__name__ == "<lambda>"
        or bool(fn.__closure__)
        or src.lstrip().startswith("@")
    )
    if src is not None and not needs_pickle:
        try:
            tree = ast.parse(src)
            needs_pickle = not (
                len(tree.body) == 1
                and isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef))
                and tree.body[0].name == fn.__name__
            )
        except SyntaxError:
            needs_pickle = True
    if inspect.iscoroutinefunction(fn):
        raise DeployError("cannot deploy an async function yet: deploy a plain def function")
    if needs_pickle:
        for cell_name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False):
            try:
                value = cell.cell_contents
            except ValueError:
                continue  # an empty cell
            _pickle_value(cell_name, value)
        try:
            function_pickle = cloudpickle.dumps(fn, protocol=5)
        except Exception as exc:
            raise DeployError(
                f"cannot deploy {fn.__name__!r}: it cannot be pickled: {type(exc).__name__}: {exc}"
            ) from None
        for module in modules_in_pickle(function_pickle):
            walker.note_module(module)

    files: dict[str, bytes] = {}
    if not discover_local_files:
        walker.local_files.clear()  # Modelbit's skip_extra_files_discovery
    for path in sorted(walker.local_files):
        files[path.relative_to(base).as_posix()] = path.read_bytes()
    if isinstance(extra_files, dict):
        for dest, source_path in extra_files.items():
            files[str(dest)] = Path(source_path).read_bytes()
    elif extra_files is not None:
        for item in extra_files:
            p = Path(item)
            dest = p.resolve().relative_to(base).as_posix() if p.is_absolute() else p.as_posix()
            files[dest] = (p if p.is_absolute() else base / p).read_bytes()
    if len(files) > _MAX_LOCAL_FILES or sum(map(len, files.values())) > _MAX_LOCAL_BYTES:
        raise DeployError(
            f"cannot deploy: {len(files)} local files totalling "
            f"{sum(map(len, files.values()))} bytes is more than the limit "
            f"({_MAX_LOCAL_FILES} files, {_MAX_LOCAL_BYTES} bytes)"
        )

    packages = distributions_for(walker.modules)
    warnings: list[str] = []
    if src is None:
        warnings.append(
            f"the source of {fn.__name__!r} could not be read (it was defined in "
            f"{fn.__code__.co_filename}): it is deployed pickled by value, and its listing "
            "(champion show, the dashboard) lacks its body; define it in a file, a notebook "
            "cell or IPython to keep its source readable")
    for spec in python_packages or ():
        m = SIMPLE_REQUIREMENT.match(spec)
        if m is None:
            continue  # a range or a URL: kept as a requirement line (requirement_lines)
        name, version = m.group(1), m.group(2)
        packages[name] = version or packages.get(name) or _installed_version(name)

    fn_name = fn.__name__ if fn.__name__ != "<lambda>" else "predict"
    listing = _listing(walker, fn_name, src)
    return Captured(
        function_name=fn_name,
        source=listing,
        imports=list(walker.imports),
        helpers=[s for _, s in walker.helpers] + ([src] if src and not function_pickle else []),
        values=walker.values,
        value_types=walker.value_types,
        files=files,
        packages=packages,
        modules=sorted(walker.modules),
        python_version=platform.python_version(),
        signature=_signature(fn),
        function_pickle=function_pickle,
        warnings=warnings,
    )


def _installed_version(dist: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _pickle_value(name: str, value: Any) -> bytes:
    """The value pickled, or a DeployError naming it."""
    try:
        return cloudpickle.dumps(value, protocol=5)
    except Exception as exc:
        raise DeployError(
            f"cannot deploy: the value {name!r} ({type(value).__name__}) that the function "
            f"uses cannot be pickled: {type(exc).__name__}: {exc}",
            value=name,
        ) from None


def _listing(walker: _Walker, fn_name: str, src: str | None) -> str:
    parts: list[str] = []
    if walker.imports:
        parts.append("\n".join(walker.imports))
    if walker.values:
        lines = [
            f"{name} = {walker.value_reprs[name]}"
            if name in walker.value_reprs
            else f"{name} = ...  # {walker.value_types[name]}, {len(data):,} bytes pickled"
            for name, data in walker.values.items()
        ]
        parts.append("\n".join(lines))
    parts += [s.rstrip() for _, s in walker.helpers]
    parts.append(src.rstrip() if src else f"# {fn_name}: source not available (pickled)")
    return "\n\n\n".join(parts) + "\n"
