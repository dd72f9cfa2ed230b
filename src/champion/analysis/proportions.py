"""Two-proportion z-test for conversion metrics, Wilson and Newcombe intervals (spec §2.2, §6.2).

Default inference (spec §2.2): the p-value comes from the *pooled* z statistic and the CI for
the difference is the *unpooled* Wald interval; ``ci_method="newcombe"`` gives Newcombe's
hybrid-score interval (recommended when an arm has fewer than 10 successes or failures,
selected automatically by ``ci_method="auto"``). The relative lift uses the delta method
with a normal quantile.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Literal

from champion.analysis._lazy import optimize, stats
from champion.analysis.delta import relative_lift_variance
from champion.analysis.errors import ErrorCode
from champion.analysis.summary import ProportionStats
from champion.analysis.ttest import DEFAULT_ALPHA, Comparison, Effect, t_effect

_NORMAL = NormalDist()


def _normal_quantile(q: float) -> float:
    """scipy's ``norm.ppf`` without scipy: the standard library inside (0, 1), and scipy's
    values at the edges (±inf at 1 and 0, nan outside), which a test inversion reaches."""
    if 0.0 < q < 1.0:
        return _NORMAL.inv_cdf(q)
    if q == 1.0:
        return math.inf
    if q == 0.0:
        return -math.inf
    return math.nan

CIMethod = Literal["wald", "newcombe", "auto"]
SMALL_COUNT = 10


def wilson_interval(k: int, n: int, alpha: float = DEFAULT_ALPHA) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes out of ``n`` (spec §6.2); (0, 1) when n = 0."""
    if n <= 0:
        return (0.0, 1.0)
    # the standard library's normal quantile (Wichura's AS241, within 2e-15 of scipy's):
    # a canary's error gate runs this every second, and it needs nothing else from scipy
    z = _normal_quantile(1.0 - alpha / 2.0)
    p = k / n
    z2n = z * z / n
    den = 1.0 + z2n
    center = (p + z2n / 2.0) / den
    half = z * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n)) / den
    return (max(0.0, center - half), min(1.0, center + half))


def newcombe_interval(
    control: ProportionStats, treatment: ProportionStats, alpha: float = DEFAULT_ALPHA
) -> tuple[float, float]:
    """Newcombe (1998, method 10) hybrid-score interval for ``p_T - p_C`` from Wilson limits."""
    p_t, p_c = treatment.mean, control.mean
    lo_t, hi_t = wilson_interval(treatment.conversions, treatment.n, alpha)
    lo_c, hi_c = wilson_interval(control.conversions, control.n, alpha)
    diff = p_t - p_c
    lower = diff - math.sqrt((p_t - lo_t) ** 2 + (hi_c - p_c) ** 2)
    upper = diff + math.sqrt((hi_t - p_t) ** 2 + (p_c - lo_c) ** 2)
    return (lower, upper)


def newcombe_p_value(control: ProportionStats, treatment: ProportionStats) -> float:
    """The p-value matched to Newcombe's interval: the alpha at which the 1 - alpha interval has 0
    at one end (test inversion), so ``p < alpha`` exactly when the interval excludes 0."""
    diff = treatment.mean - control.mean
    if diff == 0:
        return 1.0

    def gap(log_alpha: float) -> float:
        lo, hi = newcombe_interval(control, treatment, math.exp(log_alpha))
        return lo if diff > 0 else -hi

    lo_a, hi_a = math.log(1e-300), math.log(1.0 - 1e-12)
    if gap(lo_a) >= 0:
        return 1e-300
    if gap(hi_a) <= 0:
        return 1.0
    return float(math.exp(optimize.brentq(gap, lo_a, hi_a, xtol=1e-12, rtol=1e-12)))


def is_small_count(s: ProportionStats) -> bool:
    """True when successes or failures are below 10 (Newcombe recommended, spec §2.2)."""
    return s.conversions < SMALL_COUNT or s.n - s.conversions < SMALL_COUNT


def two_proportion_ztest(
    control: ProportionStats,
    treatment: ProportionStats,
    *,
    alpha: float = DEFAULT_ALPHA,
    ci_method: CIMethod = "wald",
    matched: bool = False,
) -> Comparison:
    """Pooled two-proportion z-test with an unpooled (or Newcombe) CI (spec §2.2).

    ``absolute.se`` is the unpooled SE behind the Wald CI; ``absolute.statistic`` and
    ``absolute.p_value`` are the pooled z and its p-value. With ``matched``, the p-value
    comes from the interval's own construction instead (the unpooled z for Wald, test
    inversion for Newcombe): the pooled p and the unpooled interval can disagree near alpha
    (one says significant, the other includes 0); a matched pair cannot.

    Degenerate cases: an empty arm gives ``INSUFFICIENT_UNITS``; a zero pooled SE gives
    ``ZERO_NEGATIVE_VARIANCE`` (p = 1, CI (0, 0));
    ``p_C = 0`` gives a valid absolute effect and ``BASELINE_ZERO`` for the relative lift.
    """
    cm, tm = control.moments(), treatment.moments()
    if control.n <= 0 or treatment.n <= 0:
        neutral = Effect.neutral(ErrorCode.INSUFFICIENT_UNITS, alpha)
        return Comparison(cm, tm, neutral, neutral)
    p_c, p_t = control.mean, treatment.mean
    diff = p_t - p_c
    pooled = (control.conversions + treatment.conversions) / (control.n + treatment.n)
    se0 = math.sqrt(pooled * (1.0 - pooled) * (1.0 / control.n + 1.0 / treatment.n))
    if se0 <= 0:
        neutral = Effect.neutral(ErrorCode.ZERO_NEGATIVE_VARIANCE, alpha)
        rel_err = ErrorCode.BASELINE_ZERO if p_c == 0 else ErrorCode.ZERO_NEGATIVE_VARIANCE
        return Comparison(cm, tm, neutral, Effect.neutral(rel_err, alpha))

    z = diff / se0
    p_value = float(2.0 * stats.norm.sf(abs(z)))
    se1 = math.sqrt(cm.variance / control.n + tm.variance / treatment.n)
    use_newcombe = ci_method == "newcombe" or (
        ci_method == "auto" and (is_small_count(control) or is_small_count(treatment))
    )
    if use_newcombe:
        lo, hi = newcombe_interval(control, treatment, alpha)
        if matched:
            p_value = newcombe_p_value(control, treatment)
    else:
        half = float(stats.norm.ppf(1.0 - alpha / 2.0)) * se1
        lo, hi = diff - half, diff + half
        if matched:
            z = diff / se1 if se1 > 0 else 0.0
            p_value = float(2.0 * stats.norm.sf(abs(z))) if se1 > 0 else 1.0
    absolute = Effect(diff, se1, lo, hi, p_value, z, math.inf, alpha)

    if p_c == 0:
        relative = Effect.neutral(ErrorCode.BASELINE_ZERO, alpha)
    else:
        se_l = math.sqrt(max(relative_lift_variance(cm, tm), 0.0))
        relative = t_effect(diff / p_c, se_l, math.inf, alpha=alpha)
    return Comparison(cm, tm, absolute, relative)
