"""CUPED / regression adjustment with a pooled θ (spec §2.5, following gbstats).

``θ = Cov(Y, X)/Var(X)`` on the pooled sample of both arms; per arm
``mean_adj = m_Y - θ (m_X - X̄_pooled)`` and ``var_adj = s²_Y + θ² s²_X - 2θ s_XY``; the
adjusted moments go through Welch (§2.1). The relative lift divides by the *unadjusted*
control mean and uses gbstats ``frequentist_variance_relative_cuped``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from champion.analysis.summary import CupedStats, Moments
from champion.analysis.ttest import DEFAULT_ALPHA, Comparison, welch_test


@dataclass(frozen=True)
class CupedResult:
    """CUPED comparison plus the unadjusted one for reference."""

    theta: float
    correlation: float
    comparison: Comparison
    unadjusted: Comparison

    @property
    def variance_reduction(self) -> float:
        """``1 - SE²_adj/SE²_raw`` of the absolute effect (≈ rho² for large samples)."""
        raw, adj = self.unadjusted.absolute.se, self.comparison.absolute.se
        if raw <= 0 or self.comparison.error is not None:
            return 0.0
        return 1.0 - (adj * adj) / (raw * raw)


def cuped_theta(control: CupedStats, treatment: CupedStats) -> float:
    """Pooled ``θ = Cov(Y, X)/Var(X)``; 0 when ``Var(X) = 0`` or ``Var(Y) = 0`` (gbstats)."""
    pooled = control + treatment
    var_x, var_y = pooled.pre.variance, pooled.post.variance
    if var_x <= 0 or var_y <= 0:
        return 0.0
    return pooled.covariance / var_x


def pooled_correlation(control: CupedStats, treatment: CupedStats) -> float:
    """Pearson correlation of (X, Y) on the pooled sample (0 when undefined)."""
    pooled = control + treatment
    var_x, var_y = pooled.pre.variance, pooled.post.variance
    if var_x <= 0 or var_y <= 0:
        return 0.0
    return pooled.covariance / math.sqrt(var_x * var_y)


def adjusted_variance(s: CupedStats, theta: float) -> float:
    """Per-unit variance of ``Y - θX`` in one arm: ``s²_Y + θ² s²_X - 2θ s_XY``."""
    return s.post.variance + theta * theta * s.pre.variance - 2.0 * theta * s.covariance


def adjusted_moments(s: CupedStats, theta: float, pooled_pre_mean: float = 0.0) -> Moments:
    """Adjusted mean ``m_Y - θ(m_X - X̄)`` and variance for one arm."""
    mean = s.post.mean - theta * (s.pre.mean - pooled_pre_mean)
    return Moments(mean, max(adjusted_variance(s, theta), 0.0), s.n)


def relative_cuped_variance(control: CupedStats, treatment: CupedStats, theta: float) -> float:
    """Variance of the CUPED relative lift (gbstats ``frequentist_variance_relative_cuped``)."""
    m_c, m_t = control.post.mean, treatment.post.mean
    if control.n <= 0 or treatment.n <= 0 or m_c == 0:
        return 0.0
    v_trt = adjusted_variance(treatment, theta) / (treatment.n * m_c * m_c)
    const = -m_t
    num = (
        control.post.variance * const * const / (m_c * m_c)
        + 2.0 * theta * control.covariance * const / m_c
        + theta * theta * control.pre.variance
    )
    return v_trt + num / (control.n * m_c * m_c)


def cuped_ttest(
    control: CupedStats,
    treatment: CupedStats,
    *,
    alpha: float = DEFAULT_ALPHA,
    null: float = 0.0,
    theta: float | None = None,
) -> CupedResult:
    """CUPED-adjusted Welch test (spec §2.5); ``theta`` defaults to the pooled estimate."""
    th = cuped_theta(control, treatment) if theta is None else theta
    pooled = control + treatment
    x_bar = pooled.pre.mean
    adjusted = welch_test(
        adjusted_moments(control, th, x_bar),
        adjusted_moments(treatment, th, x_bar),
        alpha=alpha,
        null=null,
        baseline=control.post.mean,
        relative_variance=relative_cuped_variance(control, treatment, th),
    )
    raw = welch_test(control.post.moments(), treatment.post.moments(), alpha=alpha, null=null)
    return CupedResult(th, pooled_correlation(control, treatment), adjusted, raw)
