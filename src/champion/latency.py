"""Log-spaced latency histograms: fixed bins that add up across processes and minutes.

Bin ``b`` holds latencies in [10**(b/20), 10**((b+1)/20)) microseconds: 20 bins a decade,
from 1 µs to 1000 s, so a percentile read back from the bins is within about 6 % of the
exact value. Counts per bin are what the store rolls up as events arrive.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

BINS_PER_DECADE = 20
N_BINS = 9 * BINS_PER_DECADE  # 1 µs .. 1000 s


def bin_of(latency_ms: float) -> int:
    us = latency_ms * 1000.0
    if us <= 1.0:
        return 0
    return min(int(math.log10(us) * BINS_PER_DECADE), N_BINS - 1)


def bin_bounds_ms(b: int) -> tuple[float, float]:
    lo = 10 ** (b / BINS_PER_DECADE) / 1000.0
    hi = 10 ** ((b + 1) / BINS_PER_DECADE) / 1000.0
    return lo, hi


def quantiles(counts: Mapping[int, int], qs: Iterable[float]) -> list[float | None]:
    """Quantiles (in ms) from bin counts, interpolating geometrically inside a bin."""
    total = sum(counts.values())
    if total == 0:
        return [None for _ in qs]
    ordered = sorted((b, c) for b, c in counts.items() if c > 0)
    out: list[float | None] = []
    for q in qs:
        target = q * total
        seen = 0
        value = bin_bounds_ms(ordered[-1][0])[1]
        for b, c in ordered:
            if seen + c >= target:
                lo, hi = bin_bounds_ms(b)
                frac = (target - seen) / c
                value = lo * (hi / lo) ** frac
                break
            seen += c
        out.append(round(value, 4))
    return out
