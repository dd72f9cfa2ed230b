"""Canary analysis: the Kayenta judge and the error-rate gate (spec §5.1, §5.5).

* :func:`classify` — Netflix ACA / Kayenta's Mann-Whitney classifier: a Hodges-Lehmann shift
  of the experiment (canary) series against the control with a confidence interval computed
  as R's ``wilcox.test(conf.int=TRUE, exact=FALSE, correct=TRUE)`` does, then High / Low /
  Pass against a tolerance of ``tolerance·|estimate|`` and mean-ratio gates.
* :func:`score` — Kayenta's weighted group score and its Pass / Marginal / Fail class.
* :func:`error_rate_gate` — the canary's error-rate rule: data sufficiency, an absolute SLO,
  then a Newcombe (or anytime-valid) interval on ``p_canary - p_baseline`` against a margin.

Pure: inputs are sequences and counts, nothing here reads a clock or does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from champion.analysis._lazy import optimize, stats
from champion.analysis.proportions import newcombe_interval
from champion.analysis.sequential import cs_half_width
from champion.analysis.summary import ProportionStats

Direction = Literal["increase", "decrease", "either"]
Label = Literal["Pass", "High", "Low", "Nodata", "NodataFailMetric"]


def _wilcox_diff(mu: float, zq: float, x: np.ndarray, y: np.ndarray) -> float:
    """R's root function for the shift ``mu`` (normal approximation, continuity-corrected)."""
    nx, ny = len(x), len(y)
    ranks = stats.rankdata(np.concatenate([x - mu, y]))
    dz = ranks[:nx].sum() - nx * (nx + 1) / 2 - nx * ny / 2
    _, counts = np.unique(ranks, return_counts=True)
    ties = float((counts**3 - counts).sum())
    sigma = math.sqrt((nx * ny / 12) * ((nx + ny + 1) - ties / ((nx + ny) * (nx + ny - 1))))
    if sigma == 0:
        raise ValueError("all observations are tied")
    return float((dz - math.copysign(0.5, dz) * (dz != 0)) / sigma - zq)


def mann_whitney_shift(experiment: Sequence[float], control: Sequence[float],
                       confidence: float = 0.98) -> tuple[tuple[float, float], float]:
    """((lower, upper), estimate): the HL shift of ``experiment`` over ``control``."""
    x = np.asarray(experiment, dtype=float)
    y = np.asarray(control, dtype=float)
    lo_mu, hi_mu = float(x.min() - y.max()), float(x.max() - y.min())

    def root(zq: float) -> float:
        if _wilcox_diff(lo_mu, zq, x, y) <= 0:
            return lo_mu
        if _wilcox_diff(hi_mu, zq, x, y) >= 0:
            return hi_mu
        return float(optimize.brentq(_wilcox_diff, lo_mu, hi_mu, args=(zq, x, y), xtol=1e-12))

    zq = float(stats.norm.ppf((1 - confidence) / 2))  # negative
    estimate = root(0.0)
    return (root(-zq), root(zq)), estimate


@dataclass(frozen=True)
class Classification:
    """One metric's verdict. ``ci`` and ``estimate`` are the HL shift (None when not run)."""

    label: Label
    ci: tuple[float, float] | None = None
    estimate: float | None = None
    bound: float | None = None
    mean_ratio: float | None = None
    critical: bool = False


def classify(control: Sequence[float], experiment: Sequence[float], *,
             direction: Direction = "either", tolerance: float = 0.25,
             confidence: float = 0.98, allowed_increase: float = 1.0,
             allowed_decrease: float = 1.0, critical: bool = False,
             nan_strategy: Literal["none", "remove"] = "none",
             must_have_data: bool = False) -> Classification:
    """Kayenta's Mann-Whitney classification of a canary metric (spec §5.1)."""
    c = np.asarray(control, dtype=float)
    e = np.asarray(experiment, dtype=float)
    if nan_strategy == "remove":
        c, e = c[~np.isnan(c)], e[~np.isnan(e)]
    else:
        c, e = np.nan_to_num(c, nan=0.0), np.nan_to_num(e, nan=0.0)
    if len(c) == 0 or len(e) == 0:
        if nan_strategy == "remove":
            return Classification("NodataFailMetric" if must_have_data and not critical
                                  else "Nodata")
        return Classification("Pass")
    if np.array_equal(np.sort(c), np.sort(e)) or len(np.unique(np.concatenate([c, e]))) == 1:
        return Classification("Pass")
    if len(np.unique(c)) == 1 and len(np.unique(e)) == 1:
        # Kayenta breaks exact ties with tiny noise; a deterministic equivalent: spread each
        # series by a relative 1e-5 so the ranks are defined.
        c = c + np.linspace(-1e-5, 1e-5, len(c)) * (abs(c[0]) or 1.0)
        e = e + np.linspace(-1e-5, 1e-5, len(e)) * (abs(e[0]) or 1.0)
    ci, estimate = mann_whitney_shift(e, c, confidence)
    bound = tolerance * abs(estimate)
    cm, em = float(c.mean()), float(e.mean())
    ratio = em / cm if cm != 0 and em != 0 else math.nan
    high = (direction in ("increase", "either") and ci[0] > bound
            and (math.isnan(ratio) or ratio >= allowed_increase))
    low = (direction in ("decrease", "either") and ci[1] < -bound
           and (math.isnan(ratio) or ratio <= allowed_decrease))
    label: Label = "High" if high else "Low" if low else "Pass"
    return Classification(label, ci, estimate, bound, None if math.isnan(ratio) else ratio,
                          critical and label != "Pass")


def score(labels: Sequence[str], groups: Sequence[str] | None = None,
          weights: Mapping[str, float] | None = None, *, pass_threshold: float = 95.0,
          marginal_threshold: float = 75.0, critical_fail: bool = False
          ) -> tuple[float, Literal["Pass", "Marginal", "Fail"]]:
    """Kayenta's summary score over metric labels, and its class (spec §5.1)."""
    if critical_fail:
        return 0.0, "Fail"
    if labels and sum(label == "Nodata" for label in labels) * 2 >= len(labels):
        return 0.0, "Fail"  # half or more of the metrics without data: no verdict to trust
    names = list(groups) if groups is not None else ["default"] * len(labels)
    scored = ("Pass", "High", "Low", "NodataFailMetric")
    by_group: dict[str, float | None] = {}
    for g in dict.fromkeys(names):
        counted = [lab for lab, gg in zip(labels, names, strict=True)
                   if gg == g and lab in scored]
        by_group[g] = (100.0 * sum(lab == "Pass" for lab in counted) / len(counted)
                       if counted else None)
    w = dict(weights or {})
    unweighted = [g for g in by_group if g not in w]
    rest = (100 - sum(w.values())) / len(unweighted) if unweighted else 0.0
    total = round(sum((100.0 if v is None else v) * w.get(g, rest) / 100
                      for g, v in by_group.items()), 2)
    verdict: Literal["Pass", "Marginal", "Fail"] = (
        "Pass" if total >= pass_threshold else "Marginal" if total >= marginal_threshold
        else "Fail")
    return total, verdict


GateDecision = Literal["insufficient", "slo", "worse", "pass", "inconclusive"]


@dataclass(frozen=True)
class GateResult:
    """The error-rate gate: ``decision`` and the figures behind it.

    ``insufficient``: too little data to judge (hold); ``slo``: the canary's own error rate is
    over the absolute limit; ``worse``: the interval's lower bound is above the margin (roll
    back); ``pass``: its upper bound is below the margin (non-inferior); ``inconclusive``:
    neither yet (hold).
    """

    decision: GateDecision
    baseline_rate: float | None = None
    canary_rate: float | None = None
    difference: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    margin: float | None = None


def error_rate_gate(errors_baseline: int, n_baseline: int, errors_canary: int, n_canary: int,
                    *, margin_abs: float = 0.0005, relative_margin: float = 0.25,
                    slo_max: float = 0.01, alpha: float = 0.01, min_n: int = 1000,
                    sequential: bool = False, n_tune: float = 20000) -> GateResult:
    """Spec §5.5 gates G0-G2 on error counts of the baseline (control) and the canary.

    The margin is ``max(margin_abs, relative_margin·p_baseline)``; the interval is a Newcombe
    ``1 - 2·alpha`` interval (``alpha`` one-sided per side), or with ``sequential`` the
    anytime-valid confidence sequence of spec §2.6 tuned to ``n_tune``.
    """
    if n_canary < min_n or n_baseline < min_n:
        return GateResult("insufficient")
    pb, pc = errors_baseline / n_baseline, errors_canary / n_canary
    margin = max(margin_abs, relative_margin * pb)
    if pc > slo_max:
        return GateResult("slo", pb, pc, pc - pb, margin=margin)
    if sequential:
        se = math.sqrt(pb * (1 - pb) / n_baseline + pc * (1 - pc) / n_canary)
        half = cs_half_width(se, n_baseline + n_canary, 2 * alpha, n_tune)
        lo, hi = (pc - pb) - half, (pc - pb) + half
    else:
        lo, hi = newcombe_interval(ProportionStats(n_baseline, errors_baseline),
                                   ProportionStats(n_canary, errors_canary), 2 * alpha)
    decision: GateDecision = ("worse" if lo > margin else "pass" if hi < margin
                              else "inconclusive")
    return GateResult(decision, pb, pc, pc - pb, lo, hi, margin)
