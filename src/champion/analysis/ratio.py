"""Ratio metrics (e.g. clicks per session with the user as unit) via the delta method (spec §2.3).

Per arm ``R = mean(M)/mean(D)`` and
``Var(R) = [s²_M/m_D² + s²_D m_M²/m_D⁴ - 2 s_MD m_M/m_D³] / n``; ``n·Var(R)`` is then used as
the per-unit variance in the Welch machinery of §2.1, which also yields the relative lift and
its delta-method CI.
"""

from __future__ import annotations

from champion.analysis.delta import ratio_variance
from champion.analysis.summary import Moments, RatioStats
from champion.analysis.ttest import DEFAULT_ALPHA, Comparison, welch_test


def ratio_estimate(s: RatioStats) -> float:
    """``sum(M)/sum(D)``; 0 when the denominator total is 0."""
    return s.m_sum / s.d_sum if s.d_sum != 0 else 0.0


def ratio_estimate_variance(s: RatioStats) -> float:
    """Delta-method variance of the per-arm ratio estimate (spec §2.3); 0 when undefined."""
    if s.n <= 1 or s.d_sum == 0:
        return 0.0
    num, den = s.numerator, s.denominator
    return ratio_variance(
        num.mean, num.variance / s.n, den.mean, den.variance / s.n, s.covariance / s.n
    )


def ratio_moments(s: RatioStats) -> Moments:
    """Ratio estimate with ``n·Var(R)`` as the per-unit variance, ready for :func:`welch_test`."""
    return Moments(ratio_estimate(s), max(ratio_estimate_variance(s), 0.0) * s.n, s.n)


def ratio_ttest(
    control: RatioStats,
    treatment: RatioStats,
    *,
    alpha: float = DEFAULT_ALPHA,
    null: float = 0.0,
    relative_null: float = 0.0,
) -> Comparison:
    """Welch test on ratio metrics: absolute difference of ratios and relative lift (§2.1, §2.3)."""
    return welch_test(
        ratio_moments(control),
        ratio_moments(treatment),
        alpha=alpha,
        null=null,
        relative_null=relative_null,
    )
