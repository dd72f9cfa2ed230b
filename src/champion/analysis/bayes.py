"""Bayesian "chance to beat control" (spec §2.7, GrowthBook ``EffectBayesianABTest``).

Effect-level Gaussian model: ``L_hat ~ N(L, SE²)`` with an improper (default) or proper normal
prior ``N(μ0, sigma0²)`` on the lift, conjugate update, then ``CTW = P(L > 0)``, an equal-tailed
credible interval and the expected losses (risk) of shipping control or treatment.
A Beta-Binomial cross-check (``P(p_T > p_C)``, exact for integer posteriors) is provided too;
the UI default is the Gaussian model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from champion.analysis._lazy import integrate, special, stats
from champion.analysis.errors import NEUTRAL_CHANCE_TO_WIN, NEUTRAL_ESTIMATE, ErrorCode
from champion.analysis.ttest import Comparison

DEFAULT_PROPER_PRIOR_STDDEV = 0.3
EPPO_PRIOR_STDDEV = 0.05
WIN_RISK_THRESHOLD = 0.0025
LOSE_RISK_THRESHOLD = 0.0125
_RISK_Z_LIMIT = 37.0


@dataclass(frozen=True)
class GaussianPrior:
    """Normal prior ``N(mean, sd²)`` on the effect (relative scale unless rescaled)."""

    mean: float = 0.0
    sd: float = DEFAULT_PROPER_PRIOR_STDDEV


@dataclass(frozen=True)
class BayesResult:
    """Posterior summary of the effect."""

    mean: float
    sd: float
    chance_to_win: float
    ci_low: float
    ci_high: float
    risk_control: float
    risk_treatment: float
    error: ErrorCode | None = None

    @property
    def ci(self) -> tuple[float, float]:
        """Equal-tailed credible interval."""
        return (self.ci_low, self.ci_high)

    @classmethod
    def neutral(cls, error: ErrorCode) -> BayesResult:
        """Neutral output of spec §0.3 (CTW 0.5)."""
        e = NEUTRAL_ESTIMATE
        return cls(e, 0.0, NEUTRAL_CHANCE_TO_WIN, e, e, 0.0, 0.0, error)


def absolute_prior(prior: GaussianPrior, control_mean: float) -> GaussianPrior:
    """Rescale a relative prior to the absolute scale: ``μ0·|m_C|``, ``sigma0·|m_C|``."""
    scale = abs(control_mean)
    return GaussianPrior(prior.mean * scale, prior.sd * scale)


def expected_loss(mean: float, sd: float) -> tuple[float, float]:
    """``(risk_control, risk_treatment) = (E[max(L, 0)], E[max(-L, 0)])`` for ``L ~ N(mean, sd²)``.

    Equal to ``P(L>0)·E[L | L>0]`` and ``-P(L<0)·E[L | L<0]`` (truncated-normal means);
    beyond ``|mean/sd| > 37`` the analytic limit ``[max(μ, 0), max(-μ, 0)]`` is used.
    """
    if sd <= 0 or abs(mean / sd) > _RISK_Z_LIMIT:
        return (max(mean, 0.0), max(-mean, 0.0))
    z = mean / sd
    pdf = float(stats.norm.pdf(z))
    risk_ctrl = mean * float(stats.norm.cdf(z)) + sd * pdf
    risk_trt = -mean * float(stats.norm.cdf(-z)) + sd * pdf
    return (max(risk_ctrl, 0.0), max(risk_trt, 0.0))


def gaussian_chance_to_win(
    estimate: float,
    se: float,
    *,
    prior: GaussianPrior | None = None,
    alpha: float = 0.05,
    inverse: bool = False,
) -> BayesResult:
    """Posterior of the effect given ``estimate ± se`` (spec §2.7).

    ``prior=None`` is GrowthBook's improper prior (posterior = likelihood). For an inverse
    metric (lower is better) the chance to win is ``1 - P(L > 0)`` and the risks swap.
    """
    if not se > 0 or not math.isfinite(se):
        return BayesResult.neutral(ErrorCode.ZERO_NEGATIVE_VARIANCE)
    if prior is None:
        mean, sd = estimate, se
    else:
        prec = 1.0 / (se * se) + 1.0 / (prior.sd * prior.sd)
        mean = (estimate / (se * se) + prior.mean / (prior.sd * prior.sd)) / prec
        sd = 1.0 / math.sqrt(prec)
    ctw = float(stats.norm.sf(0.0, loc=mean, scale=sd))
    lo, hi = (float(v) for v in stats.norm.ppf([alpha / 2.0, 1.0 - alpha / 2.0], mean, sd))
    risk_ctrl, risk_trt = expected_loss(mean, sd)
    if inverse:
        ctw = 1.0 - ctw
        risk_ctrl, risk_trt = risk_trt, risk_ctrl
    return BayesResult(mean, sd, ctw, lo, hi, risk_ctrl, risk_trt)


def bayes_from_comparison(
    comparison: Comparison,
    *,
    relative: bool = True,
    prior: GaussianPrior | None = None,
    alpha: float = 0.05,
    inverse: bool = False,
) -> BayesResult:
    """Run the Gaussian model on a frequentist comparison's relative (default) or absolute effect.

    On the absolute scale a relative ``prior`` is rescaled by the control mean (spec §2.7).
    """
    effect = comparison.relative if relative else comparison.absolute
    if effect.error is not None:
        return BayesResult.neutral(effect.error)
    if comparison.control.mean == 0 and prior is not None:
        return BayesResult.neutral(ErrorCode.BASELINE_ZERO)
    if prior is not None and not relative:
        prior = absolute_prior(prior, comparison.control.mean)
    return gaussian_chance_to_win(
        effect.estimate, effect.se, prior=prior, alpha=alpha, inverse=inverse
    )


def beta_binomial_chance_to_win(
    conversions_control: int,
    n_control: int,
    conversions_treatment: int,
    n_treatment: int,
    *,
    prior_alpha: float = 1.0,
    prior_beta: float = 1.0,
) -> float:
    """``P(p_T > p_C)`` for independent Beta posteriors (cross-check of spec §2.7).

    Exact finite sum (Evan Miller) when the treatment posterior ``alpha`` is an integer, otherwise
    numerical quadrature.
    """
    a_c = prior_alpha + conversions_control
    b_c = prior_beta + n_control - conversions_control
    a_t = prior_alpha + conversions_treatment
    b_t = prior_beta + n_treatment - conversions_treatment
    if float(a_t).is_integer() and a_t <= 10_000_000:
        i = np.arange(int(a_t), dtype=float)
        log_terms = (
            special.betaln(a_c + i, b_c + b_t)
            - np.log(b_t + i)
            - special.betaln(1.0 + i, b_t)
            - special.betaln(a_c, b_c)
        )
        return float(min(max(np.exp(special.logsumexp(log_terms)), 0.0), 1.0))
    dist_c, dist_t = stats.beta(a_c, b_c), stats.beta(a_t, b_t)
    val, _ = integrate.quad(
        lambda p: float(dist_t.pdf(p) * dist_c.cdf(p)),
        0.0,
        1.0,
        limit=500,
        points=[float(dist_c.mean()), float(dist_t.mean())],
    )
    return float(min(max(val, 0.0), 1.0))
