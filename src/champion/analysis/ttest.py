"""Welch's t-test on sufficient statistics, absolute and relative (spec §2.1).

The relative lift uses the delta method with the same Welch-Satterthwaite degrees of freedom
as the absolute effect (gbstats ``TwoSidedTTest``). Degenerate inputs return neutral effects
with an :class:`~champion.analysis.errors.ErrorCode` (spec §0.3); nothing here raises on data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from champion.analysis._lazy import stats
from champion.analysis.delta import relative_lift_variance
from champion.analysis.errors import NEUTRAL_ESTIMATE, NEUTRAL_P_VALUE, ErrorCode
from champion.analysis.summary import MeanStats, Moments

DEFAULT_ALPHA = 0.05


@dataclass(frozen=True)
class Effect:
    """One effect estimate (absolute or relative) with its two-sided inference."""

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    statistic: float
    df: float
    alpha: float = DEFAULT_ALPHA
    error: ErrorCode | None = None

    @classmethod
    def neutral(cls, error: ErrorCode, alpha: float = DEFAULT_ALPHA) -> Effect:
        """Neutral output of spec §0.3: estimate 0, CI (0, 0), p = 1."""
        e = NEUTRAL_ESTIMATE
        return cls(e, 0.0, e, e, NEUTRAL_P_VALUE, 0.0, 0.0, alpha, error)

    @property
    def ci(self) -> tuple[float, float]:
        """The (1 - alpha) confidence interval."""
        return (self.ci_low, self.ci_high)

    @property
    def significant(self) -> bool:
        """True when valid and ``p < alpha``."""
        return self.error is None and self.p_value < self.alpha


@dataclass(frozen=True)
class Comparison:
    """Treatment versus control: the absolute effect and the relative lift (headline)."""

    control: Moments
    treatment: Moments
    absolute: Effect
    relative: Effect

    @property
    def error(self) -> ErrorCode | None:
        """Error of the absolute effect (the relative one may add ``BASELINE_ZERO``)."""
        return self.absolute.error


def welch_df(var_mean_c: float, n_c: int, var_mean_t: float, n_t: int) -> float:
    """Welch-Satterthwaite degrees of freedom from the variances of the two means."""
    se2 = var_mean_c + var_mean_t
    den = var_mean_c**2 / (n_c - 1) + var_mean_t**2 / (n_t - 1)
    return se2 * se2 / den if den > 0 else math.inf


def _quantile(q: float, df: float) -> float:
    return float(stats.norm.ppf(q) if math.isinf(df) else stats.t.ppf(q, df))


def _two_sided_p(statistic: float, df: float) -> float:
    a = abs(statistic)
    return float(2.0 * (stats.norm.sf(a) if math.isinf(df) else stats.t.sf(a, df)))


def t_effect(
    estimate: float,
    se: float,
    df: float,
    *,
    alpha: float = DEFAULT_ALPHA,
    null: float = 0.0,
) -> Effect:
    """Two-sided t inference (normal when ``df`` is infinite): ``t = (est - null)/se``."""
    if not se > 0 or not math.isfinite(se):
        return Effect.neutral(ErrorCode.ZERO_NEGATIVE_VARIANCE, alpha)
    stat = (estimate - null) / se
    half = _quantile(1.0 - alpha / 2.0, df) * se
    return Effect(
        estimate, se, estimate - half, estimate + half, _two_sided_p(stat, df), stat, df, alpha
    )


def _arm_error(control: Moments, treatment: Moments) -> ErrorCode | None:
    if control.n <= 0 or treatment.n <= 0:
        return ErrorCode.INSUFFICIENT_UNITS
    if control.n <= 1 or treatment.n <= 1:
        return ErrorCode.ZERO_NEGATIVE_VARIANCE
    if control.variance < 0 or treatment.variance < 0:
        return ErrorCode.ZERO_NEGATIVE_VARIANCE
    if control.variance == 0 and treatment.variance == 0:
        return ErrorCode.ZERO_NEGATIVE_VARIANCE
    return None


def welch_test(
    control: Moments,
    treatment: Moments,
    *,
    alpha: float = DEFAULT_ALPHA,
    null: float = 0.0,
    relative_null: float = 0.0,
    baseline: float | None = None,
    relative_variance: float | None = None,
) -> Comparison:
    """Welch test on per-arm moments (spec §2.1).

    ``baseline`` (default: the control mean) is the denominator of the relative lift and
    ``relative_variance`` overrides the delta-method variance; CUPED uses both (spec §2.5).
    """
    err = _arm_error(control, treatment)
    if err is not None:
        neutral = Effect.neutral(err, alpha)
        return Comparison(control, treatment, neutral, neutral)
    vc = control.variance / control.n
    vt = treatment.variance / treatment.n
    df = welch_df(vc, control.n, vt, treatment.n)
    diff = treatment.mean - control.mean
    absolute = t_effect(diff, math.sqrt(vc + vt), df, alpha=alpha, null=null)

    base = control.mean if baseline is None else baseline
    if base == 0:
        relative = Effect.neutral(ErrorCode.BASELINE_ZERO, alpha)
    else:
        if relative_variance is None:
            var_l = relative_lift_variance(Moments(base, control.variance, control.n), treatment)
        else:
            var_l = relative_variance
        lift = diff / abs(base)
        relative = t_effect(lift, math.sqrt(max(var_l, 0.0)), df, alpha=alpha, null=relative_null)
    return Comparison(control, treatment, absolute, relative)


def welch_ttest(
    control: MeanStats,
    treatment: MeanStats,
    *,
    alpha: float = DEFAULT_ALPHA,
    null: float = 0.0,
    relative_null: float = 0.0,
) -> Comparison:
    """Welch's t-test of treatment versus control on mean-metric sufficient statistics."""
    return welch_test(
        control.moments(),
        treatment.moments(),
        alpha=alpha,
        null=null,
        relative_null=relative_null,
    )
