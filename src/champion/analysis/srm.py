"""Sample-ratio mismatch: Pearson χ² goodness of fit against configured weights (spec §2.4).

Flag SRM when ``p < 0.001`` (GrowthBook / Eppo). Unlike gbstats, zero-weight arms are dropped
(``df = #arms with w > 0 - 1``) and any unit in a zero-weight arm is a hard SRM (``p = 0``).
The χ² result is always reported, but SRM is only *flagged* once every positive-weight arm
has at least ``min_count`` units (8 by default, 5 for bandits). Run it per analysis phase.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from champion.analysis._lazy import stats
from champion.analysis.errors import ErrorCode

SRM_THRESHOLD = 0.001
SRM_MIN_COUNT = 8
SRM_MIN_COUNT_BANDIT = 5


@dataclass(frozen=True)
class SRMResult:
    """Outcome of the SRM check."""

    chi2: float
    p_value: float
    df: int
    expected: tuple[float, ...]
    srm_detected: bool
    threshold: float = SRM_THRESHOLD
    error: ErrorCode | None = None


def srm_check(
    counts: Sequence[int],
    weights: Sequence[float],
    *,
    threshold: float = SRM_THRESHOLD,
    min_count: int = SRM_MIN_COUNT,
) -> SRMResult:
    """χ² SRM test of assigned-unit ``counts`` against ``weights`` (any positive scale).

    Negative weights are treated as 0. ``error`` is ``NO_DATA`` when there are no units and
    ``INSUFFICIENT_UNITS`` when a positive-weight arm has fewer than ``min_count`` units (then
    ``srm_detected`` is False unless units landed in a zero-weight arm).
    """
    if len(counts) != len(weights):
        raise ValueError("counts and weights must have the same length")
    if any(c < 0 for c in counts):
        raise ValueError("counts must be >= 0")
    w = [max(float(x), 0.0) for x in weights]
    w_total = sum(w)
    total = sum(counts)
    active = [i for i, wi in enumerate(w) if wi > 0]
    expected = tuple((wi / w_total * total) if w_total > 0 else 0.0 for wi in w)
    df = max(len(active) - 1, 0)

    if total == 0:
        return SRMResult(0.0, 1.0, df, expected, False, threshold, ErrorCode.NO_DATA)
    if any(counts[i] > 0 for i, wi in enumerate(w) if wi <= 0):
        return SRMResult(math.inf, 0.0, df, expected, True, threshold)

    chi2 = sum((counts[i] - expected[i]) ** 2 / expected[i] for i in active)
    p_value = float(stats.chi2.sf(chi2, df)) if df > 0 else 1.0
    if any(counts[i] < min_count for i in active):
        return SRMResult(chi2, p_value, df, expected, False, threshold,
                         ErrorCode.INSUFFICIENT_UNITS)
    return SRMResult(chi2, p_value, df, expected, p_value < threshold, threshold)
