"""Typed strategy settings: a frozen dataclass per strategy, parsed from JSON by its hints.

A strategy declares its settings as a dataclass whose fields carry ``metadata`` (``help``,
``low``/``high`` inclusive bounds, ``above`` an exclusive lower bound, ``cli=False`` to keep a
field off the command line). :func:`parse` turns the JSON under the strategy's key into that
dataclass, or raises :class:`SettingsError` naming the field (``canary.steps[2]: ...``);
:func:`dump` turns it back into JSON; :func:`schema` describes the fields for the API, the
CLI and the docs. Supported field types: ``bool``, ``int``, ``float``, ``str``,
``Literal[...]``, ``X | None``, ``tuple[X, ...]``, ``dict[str, X]`` and nested dataclasses.
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")


class SettingsError(ValueError):
    """A setting that does not validate; ``field`` is its dotted path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def setting(default: Any, help: str, **meta: Any) -> Any:
    """A dataclass field with its help text and bounds (``low``, ``high``, ``above``, ``cli``)."""
    if isinstance(default, (list, dict)):
        raise TypeError("use a tuple (or a default_factory) for a mutable default")
    return dataclasses.field(default=default, metadata={"help": help, **meta})


def nested(factory: Any, help: str, **meta: Any) -> Any:
    """A field holding a nested settings dataclass (or a tuple), built by ``factory``."""
    return dataclasses.field(default_factory=factory, metadata={"help": help, **meta})


def _describe(hint: Any) -> str:
    origin = get_origin(hint)
    if hint is bool:
        return "boolean"
    if hint is int:
        return "integer"
    if hint is float:
        return "number"
    if hint is str:
        return "string"
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(hint))
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(hint) if a is not type(None)]
        return f"{_describe(inner[0])} or null"
    if origin is tuple:
        return f"list of {_describe(get_args(hint)[0])}"
    if origin is dict:
        return f"object of {_describe(get_args(hint)[1])}"
    if dataclasses.is_dataclass(hint):
        return "object"
    return str(hint)


def _number(value: Any, path: str, kind: type) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingsError(path, f"must be a number, not {type(value).__name__} "
                            f"{str(value)[:40]!r}")
    if not math.isfinite(value):
        raise SettingsError(path, "must be a finite number")
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise SettingsError(path, f"must be a whole number, not {value}")
        return int(value)
    return float(value)


def _check_bounds(value: float, path: str, meta: Mapping[str, Any]) -> None:
    low, high, above = meta.get("low"), meta.get("high"), meta.get("above")
    if low is not None and value < low:
        raise SettingsError(path, f"must be at least {low}, got {value}")
    if above is not None and value <= above:
        raise SettingsError(path, f"must be above {above}, got {value}")
    if high is not None and value > high:
        raise SettingsError(path, f"must be at most {high}, got {value}")


def _convert(hint: Any, value: Any, path: str, meta: Mapping[str, Any]) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(hint) if a is not type(None)]
        if value is None or value is False:
            return None
        return _convert(inner[0], value, path, meta)
    if hint is bool:
        if not isinstance(value, bool):
            raise SettingsError(path, f"must be true or false, not {str(value)[:40]!r}")
        return value
    if hint in (int, float):
        number = _number(value, path, hint)
        _check_bounds(number, path, meta)
        return number
    if hint is str:
        if not isinstance(value, str):
            raise SettingsError(path, f"must be a string, not {type(value).__name__}")
        if len(value) > int(meta.get("max_length", 256)):
            raise SettingsError(path, "is too long")
        return value
    if origin is Literal:
        choices = get_args(hint)
        if value not in choices:
            raise SettingsError(path, f"must be one of {', '.join(map(repr, choices))}, "
                                f"not {str(value)[:40]!r}")
        return value
    if origin is tuple:
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise SettingsError(path, f"must be a list, not {type(value).__name__}")
        if len(value) > int(meta.get("max_items", 1000)):
            raise SettingsError(path, "has too many items")
        item = get_args(hint)[0]
        return tuple(_convert(item, v, f"{path}[{i}]", meta) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise SettingsError(path, f"must be an object, not {type(value).__name__}")
        item = get_args(hint)[1]
        return {str(k): _convert(item, v, f"{path}.{k}", meta) for k, v in value.items()}
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return parse(hint, value, path)
    raise TypeError(f"unsupported settings type {hint!r} at {path}")


def parse(cls: type[T], raw: Any, prefix: str = "") -> T:
    """Build settings dataclass ``cls`` from JSON ``raw`` (None or {} gives the defaults)."""
    if raw is None:
        raw = {}
    if isinstance(raw, cls):
        return raw
    if not isinstance(raw, Mapping):
        raise SettingsError(prefix, f"must be an object, not {type(raw).__name__}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise SettingsError(f"{where}{unknown[0]}",
                            f"unknown setting; known: {', '.join(sorted(fields))}")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name in raw:
            path = f"{prefix}.{name}" if prefix else name
            values[name] = _convert(hints[name], raw[name], path, f.metadata)
    try:
        return cls(**values)
    except SettingsError:
        raise
    except (TypeError, ValueError) as exc:
        raise SettingsError(prefix, str(exc)) from None


def dump(value: Any) -> Any:
    """Settings (or any part of them) as JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: dump(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [dump(v) for v in value]
    if isinstance(value, dict):
        return {k: dump(v) for k, v in value.items()}
    return value


def schema(cls: type[Any], prefix: str = "") -> list[dict[str, Any]]:
    """One entry per field (nested dataclasses flattened with dotted names)."""
    hints = get_type_hints(cls)
    out: list[dict[str, Any]] = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        name = f"{prefix}{f.name}"
        if f.default is not dataclasses.MISSING:
            default = dump(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = dump(f.default_factory())
        else:
            default = None
        entry = {"name": name, "type": _describe(hint), "default": default,
                 "help": f.metadata.get("help", ""),
                 "cli": bool(f.metadata.get("cli", _cli_able(hint)))}
        for key in ("low", "high", "above"):
            if key in f.metadata:
                entry[key] = f.metadata[key]
        if get_origin(hint) is Literal:
            entry["choices"] = list(get_args(hint))
        out.append(entry)
    return out


def _cli_able(hint: Any) -> bool:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(hint) if a is not type(None)]
        return _cli_able(inner[0])
    if hint in (bool, int, float, str) or origin is Literal:
        return True
    if origin is tuple:
        return get_args(hint)[0] in (int, float, str)
    return False


def from_text(entry: Mapping[str, Any], text: str) -> Any:
    """A command-line value for a schema entry: numbers, ``a,b,c`` lists, true/false."""
    kind = str(entry["type"])
    text = text.strip()
    if kind.endswith(" or null") and text.lower() in ("none", "null", "off", ""):
        return None
    kind = kind.removesuffix(" or null")
    if kind == "boolean":
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{text!r} is not true or false")
    if kind in ("integer", "number"):
        return float(text) if kind == "number" else int(text)
    if kind.startswith("list of"):
        inner = kind.removeprefix("list of ")
        items = [t.strip() for t in text.split(",") if t.strip()]
        if inner in ("number", "integer"):
            return [float(t) if inner == "number" else int(t) for t in items]
        return items
    return text

