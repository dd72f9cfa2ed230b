"""Power, minimum detectable effect and minimum sample size (spec §2.8).

Means: ``n_C = (z_{1-alpha/2} + z_{1-beta})² sigma² (1 + 1/r) / δ²`` with ``r = n_T/n_C``;
CUPED multiplies ``sigma²`` by ``1 - rho²``. Proportions: pooled-null form (default) or the
simple form. Two-sided power ``1 - Φ(z_{1-alpha/2} - Δ/SE) + Φ(z_{alpha/2} - Δ/SE)``.
Sequential testing inflates n by ``(CS half-width / fixed half-width)²`` at the planned n.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from champion.analysis._lazy import stats
from champion.analysis.sequential import DEFAULT_N_STAR, cs_half_width


@dataclass(frozen=True)
class SampleSize:
    """Required units per arm."""

    n_control: int
    n_treatment: int

    @property
    def total(self) -> int:
        """Units over both arms."""
        return self.n_control + self.n_treatment


def _z(q: float) -> float:
    return float(stats.norm.ppf(q))


def _check(alpha: float, power: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    if not 0 < power < 1:
        raise ValueError("power must be in (0, 1)")


def sample_size_means(
    sigma: float,
    delta: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    cuped_rho: float = 0.0,
) -> SampleSize:
    """Units per arm to detect an absolute mean difference ``delta`` (two-sided)."""
    _check(alpha, power)
    if delta == 0 or sigma <= 0 or ratio <= 0:
        raise ValueError("need delta != 0, sigma > 0 and ratio > 0")
    var = sigma * sigma * (1.0 - cuped_rho * cuped_rho)
    n_c = (_z(1 - alpha / 2) + _z(power)) ** 2 * var * (1.0 + 1.0 / ratio) / (delta * delta)
    return SampleSize(math.ceil(n_c), math.ceil(n_c * ratio))


def sample_size_proportions(
    p_control: float,
    p_treatment: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    method: Literal["pooled", "simple"] = "pooled",
) -> SampleSize:
    """Units per arm (equal allocation) to detect ``p_control → p_treatment``."""
    _check(alpha, power)
    p1, p2 = p_control, p_treatment
    if not (0 < p1 < 1 and 0 < p2 < 1) or p1 == p2:
        raise ValueError("need distinct rates in (0, 1)")
    za, zb = _z(1 - alpha / 2), _z(power)
    spread = p1 * (1 - p1) + p2 * (1 - p2)
    if method == "pooled":
        pbar = (p1 + p2) / 2.0
        num = (za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(spread)) ** 2
    else:
        num = (za + zb) ** 2 * spread
    n = math.ceil(num / (p2 - p1) ** 2)
    return SampleSize(n, n)


def treatment_rate(p_control: float, relative_mde: float) -> float:
    """Treatment rate implied by a relative MDE: ``p2 = p1 (1 + MDE_rel)``."""
    return p_control * (1.0 + relative_mde)


def power_two_sided(effect: float, se: float, *, alpha: float = 0.05) -> float:
    """Two-sided power of a z-test for true ``effect`` with estimator SE ``se``."""
    if se <= 0:
        return 1.0 if effect != 0 else alpha
    shift = effect / se
    return float(
        1.0 - stats.norm.cdf(_z(1 - alpha / 2) - shift) + stats.norm.cdf(_z(alpha / 2) - shift)
    )


def minimum_detectable_effect(se: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Approximate MDE ``SE·(z_{1-alpha/2} - z_{1-power})``."""
    _check(alpha, power)
    return se * (_z(1 - alpha / 2) - _z(1 - power))


def sequential_inflation(
    n: float, *, alpha: float = 0.05, n_star: float | None = None
) -> float:
    """Sample-size inflation ``(CS half-width / fixed half-width)²`` at ``n`` total units.

    ``n_star`` defaults to ``n`` (the sequence tuned for the planned horizon): ≈ 2.4 at
    alpha = 0.05.
    """
    tune = n if n_star is None else n_star
    se = 1.0 / math.sqrt(n)
    ratio = cs_half_width(se, n, alpha, tune or DEFAULT_N_STAR) / (_z(1 - alpha / 2) * se)
    return ratio * ratio
