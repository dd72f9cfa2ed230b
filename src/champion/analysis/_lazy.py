"""scipy's submodules, imported on first attribute access.

The server imports the strategies at start-up, and the strategies import parts of this layer;
scipy costs about 0.6 s to import, and the inference path never needs it. ``stats.norm.cdf``
and the like work unchanged through these stand-ins; the real module is imported the first
time a report, a policy update or a test asks for one of its names.
"""

from __future__ import annotations

import importlib
from typing import Any


class _Module:
    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)

    def __repr__(self) -> str:
        return f"<lazy {self._name}>"


stats: Any = _Module("scipy.stats")
special: Any = _Module("scipy.special")
integrate: Any = _Module("scipy.integrate")
optimize: Any = _Module("scipy.optimize")
distance: Any = _Module("scipy.spatial.distance")
