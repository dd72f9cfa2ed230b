"""Strategies: one module per way of testing a model in production.

Pure, like ``routing/`` and ``analysis/`` (which they compose): no I/O, no clock, no global
RNG. Importing this package registers the built-in strategies; a plugin module (named in
the server's ``strategy_modules`` setting) registers more by calling :func:`register` when
it is imported. Adding a strategy is one new module plus, for a built-in, one line below.
"""

from champion.strategies import ab, bandit, canary, interleave, shadow  # noqa: F401  (import registers them)
from champion.strategies.base import (
    STRATEGIES,
    Answer,
    Experiment,
    Merged,
    State,
    Step,
    Strategy,
    alert,
    chart,
    column,
    get,
    register,
    table,
    view,
)
from champion.strategies.settings import SettingsError, nested, setting

__all__ = [
    "STRATEGIES",
    "Answer",
    "Experiment",
    "Merged",
    "SettingsError",
    "State",
    "Step",
    "Strategy",
    "alert",
    "chart",
    "column",
    "get",
    "nested",
    "register",
    "setting",
    "table",
    "view",
]
