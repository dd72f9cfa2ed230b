"""The one registry of per-deployment settings (``workers``, ``timeout``, batching, logging).

Each setting has a name, a type, bounds and a help text. The same entry checks what the admin
API is sent (a 400 naming the setting and its bounds), makes the ``champion configure``
flags and their help, and is listed in docs/configuration.md, which a test keeps in step.
A stored setting is always of its type: ``workers: 0.5`` is refused, not truncated to 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from champion.errors import BadRequest


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class DeploymentSetting:
    name: str
    type: type  # int, float or list (of field names)
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # True: strictly above ``low``
    overrides: str = ""  # the server setting it overrides, if any

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def bounds(self) -> str:
        if self.type is list:
            return "a list of field names"
        kind = "a whole number" if self.type is int else "a number"
        if self.low is not None and self.high is not None:
            rel = "above" if self.low_open else "from"
            return f"{kind} {rel} {_num(self.low)} to {_num(self.high)}"
        if self.low is not None:
            return f"{kind} {'above' if self.low_open else 'of at least'} {_num(self.low)}"
        return kind

    def check(self, value: Any) -> Any:
        """``value`` as stored, or BadRequest naming the setting and what it takes."""
        wrong = BadRequest(f"deployment setting {self.name!r} must be {self.bounds}, not "
                           f"{str(value)[:60]!r}", setting=self.name)
        if self.type is list:
            if not isinstance(value, list) or len(value) > 1000 or not all(
                    isinstance(v, str) and v and len(v) <= 256 and "\x00" not in v
                    for v in value):
                raise wrong
            return list(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong
        if isinstance(value, float) and not math.isfinite(value):
            raise wrong
        if self.type is int:
            if isinstance(value, float) and not value.is_integer():
                raise wrong
            number: float = int(value)
        else:
            number = float(value)
        if self.low is not None and (number < self.low or (self.low_open and number == self.low)):
            raise wrong
        if self.high is not None and number > self.high:
            raise wrong
        return number


DEPLOYMENT_SETTINGS: tuple[DeploymentSetting, ...] = (
    DeploymentSetting("workers", int, "Worker processes per version.", 1, 64,
                      overrides="workers"),
    DeploymentSetting("timeout", float, "Seconds a request may take, end to end, before it "
                      "answers 504 (503 when no worker freed up in time).", 0, 86_400,
                      low_open=True, overrides="timeout"),
    DeploymentSetting("idle_timeout", float, "Seconds after which idle workers are stopped.",
                      0, 10_000_000, low_open=True, overrides="idle_timeout"),
    DeploymentSetting("max_workers", int, "Above workers: autoscale between workers and this "
                      "many (local: while calls queue and a core is idle; Ray: Serve's "
                      "replicas).", 1, 1024, overrides="max_workers"),
    DeploymentSetting("log_sample_rate", float, "Share (0..1) of requests whose input and "
                      "output are stored in the log.", 0, 1),
    DeploymentSetting("log_payload_bytes", int, "Largest input or output stored in the log "
                      "(0: none).", 0, 1 << 30, overrides="log_payload_bytes"),
    DeploymentSetting("log_redact", list, "Fields whose values are replaced by [redacted] in "
                      "the log."),
    DeploymentSetting("batch_max_size", int, "Above 1: micro-batching; the function takes and "
                      "returns lists.", 1, 10_000),
    DeploymentSetting("batch_max_wait_ms", float, "With micro-batching: how long a lone "
                      "request may wait for company.", 0, 1000),
)

BY_NAME: dict[str, DeploymentSetting] = {s.name: s for s in DEPLOYMENT_SETTINGS}


def check_config(config: Any) -> dict[str, Any]:
    """A deployment's settings as sent (``None`` resets one: left out here), checked."""
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise BadRequest("deployment settings are a JSON object of setting: value")
    out: dict[str, Any] = {}
    for key, value in config.items():
        setting = BY_NAME.get(key)
        if setting is None:
            raise BadRequest(f"unknown deployment setting {str(key)[:80]!r}; known: "
                             f"{', '.join(sorted(BY_NAME))}")
        if value is not None:
            out[key] = setting.check(value)
    return out
