"""Error codes and neutral outputs for degenerate analysis inputs (spec §0.3).

The analysis path never raises on degenerate *data*: it returns a result object whose
``error`` field is set and whose statistics take the neutral values used by gbstats
(estimate 0, CI (0, 0), p-value 1, chance to win 0.5). Structurally invalid *inputs*
(negative counts, conversions above n) are rejected when the statistics objects are built.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Degenerate-output codes of spec §0.3."""

    ZERO_NEGATIVE_VARIANCE = "ZERO_NEGATIVE_VARIANCE"
    BASELINE_ZERO = "BASELINE_ZERO"
    INSUFFICIENT_UNITS = "INSUFFICIENT_UNITS"
    NO_SIGNAL = "NO_SIGNAL"
    NO_DATA = "NO_DATA"


#: Neutral values of spec §0.3 (gbstats ``_default_output``).
NEUTRAL_ESTIMATE = 0.0
NEUTRAL_P_VALUE = 1.0
NEUTRAL_CHANCE_TO_WIN = 0.5
