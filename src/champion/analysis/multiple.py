"""Multiple-testing correction across variants and metrics (spec §2.9).

``holm`` controls the family-wise error rate (Holm 1979, step-down Bonferroni);
``bh`` the false discovery rate (Benjamini & Hochberg 1995, step-up). Both return adjusted
p-values in the order given (R's ``p.adjust``), so that an adjusted p-value below alpha is a
rejection at family level alpha. ``none`` returns the p-values as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Correction = Literal["holm", "bh", "none"]
CORRECTIONS: tuple[str, ...] = ("holm", "bh", "none")
LABELS = {
    "holm": "Holm (family-wise error rate)",
    "bh": "Benjamini-Hochberg (false discovery rate)",
    "none": "none (each p-value on its own)",
}


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values: ``max_{j<=i} (m - j + 1) p_(j)``, capped at 1."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    out = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        out[i] = running
    return out


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg step-up adjusted p-values: ``min_{j>=i} m p_(j) / j``, capped."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i], reverse=True)
    out = [1.0] * m
    running = 1.0
    for k, i in enumerate(order):
        rank = m - k  # 1-based rank from the smallest
        running = min(running, m * p_values[i] / rank)
        out[i] = min(1.0, running)
    return out


def adjust(p_values: Sequence[float], method: Correction) -> list[float]:
    if method == "holm":
        return holm(p_values)
    if method == "bh":
        return benjamini_hochberg(p_values)
    if method == "none":
        return [float(p) for p in p_values]
    raise ValueError(f"unknown correction {method!r}; one of {', '.join(CORRECTIONS)}")
