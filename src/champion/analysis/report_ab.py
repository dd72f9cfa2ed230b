"""A/B experiment report from per-arm sufficient statistics (spec §2).

:func:`ab_report` runs the SRM check (§2.4), summarises each arm, and compares every candidate
with the control on every metric plus the built-in ``"error_rate"``: Welch (§2.1) or
two-proportion z (§2.2) with the delta-method relative lift, confidence sequence (§2.6), chance
to beat control (§2.7), CUPED when covariate sums are present (§2.5) and the sample size still
needed (§2.8); then it takes a ship decision on the sequential test of the primary metric.

Outputs hold only dicts, lists, str, int, float, bool and None (:func:`jsonable`: NaN and ±inf
become None). Degenerate data never raises: statistics take the neutral values of spec §0.3
and carry an ``error`` code string. Structurally invalid input (unknown control, duplicate arm
names, negative counts, errors above requests, a bad guardrail direction or parameter) raises
``ValueError``.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from champion.analysis.bayes import bayes_from_comparison
from champion.analysis.cuped import cuped_ttest
from champion.analysis.errors import ErrorCode
from champion.analysis.multiple import CORRECTIONS, LABELS, Correction, adjust
from champion.analysis.power import (
    sample_size_means,
    sample_size_proportions,
    sequential_inflation,
    treatment_rate,
)
from champion.analysis.proportions import is_small_count, two_proportion_ztest, wilson_interval
from champion.analysis.sequential import SequentialResult, sequential_compare
from champion.analysis.srm import SRM_MIN_COUNT, SRMResult, srm_check
from champion.analysis.summary import CupedStats, MeanStats, ProportionStats
from champion.analysis.ttest import Comparison, Effect, t_effect, welch_test

__all__ = ["ERROR_RATE", "ArmData", "Guardrail", "MetricSums", "ab_report", "jsonable"]

#: Built-in proportion metric: errors (status >= 500) over requests.
ERROR_RATE = "error_rate"


# --------------------------------------------------------------------------- inputs


@dataclass
class MetricSums:
    """One metric over the units of one arm; per-unit value = sum of its feedback (0 if none)."""

    n: int  # units exposed in the arm (units with no feedback count as 0)
    sum: float
    sum_sq: float
    binary: bool  # every per-unit value is 0 or 1: a proportion metric
    x_sum: float | None = None  # CUPED pre-period covariate over the same n units
    x_sum_sq: float | None = None
    xy_sum: float | None = None


@dataclass
class ArmData:
    """Per-arm traffic counts, latency summary and metric sums."""

    name: str
    weight: float  # configured traffic weight (not normalised)
    requests: int
    units: int
    errors: int  # responses with status >= 500
    latency_ms: dict[str, float | None]  # p50, p90, p99, mean
    metrics: dict[str, MetricSums]


@dataclass
class Guardrail:
    """A metric the candidate must not make significantly worse (``bad`` direction)."""

    metric: str  # a metric name, or the built-in "error_rate"
    bad: str = "decrease"  # the direction that is bad for the candidate: decrease / increase


# --------------------------------------------------------------------------- JSON


def jsonable(value: Any) -> Any:
    """Recursively convert to JSON types; NaN / ±inf become None, enums their value."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    return repr(value)


def rate(k: int, n: int) -> float | None:
    """``k / n``, or None when there is no denominator."""
    return k / n if n > 0 else None


# --------------------------------------------------------------------------- A/B: inputs


def _validate_ab(arms: Sequence[ArmData], control: str, guardrails: Sequence[Guardrail]) -> None:
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate arm names: {names}")
    if control not in names:
        raise ValueError(f"control arm {control!r} not among arms {names}")
    for a in arms:
        if min(a.requests, a.units, a.errors) < 0:
            raise ValueError(f"arm {a.name!r}: counts must be >= 0")
        if a.errors > a.requests:
            raise ValueError(f"arm {a.name!r}: errors ({a.errors}) > requests ({a.requests})")
        if ERROR_RATE in a.metrics:
            raise ValueError(f"{ERROR_RATE!r} is a built-in metric name")
        for name, m in a.metrics.items():
            if m.n < 0:
                raise ValueError(f"arm {a.name!r}, metric {name!r}: n must be >= 0")
    for g in guardrails:
        if g.bad not in ("decrease", "increase"):
            raise ValueError(f"guardrail {g.metric!r}: bad must be 'decrease' or 'increase'")


def _metric_names(arms: Sequence[ArmData]) -> list[str]:
    names: list[str] = []
    for arm in arms:
        names.extend(n for n in arm.metrics if n not in names)
    return names


def _sums(arm: ArmData, metric: str) -> MetricSums:
    """The arm's sums for ``metric``; absent means no feedback: zeros over the arm's units."""
    found = arm.metrics.get(metric)
    return found if found is not None else MetricSums(arm.units, 0.0, 0.0, True)


def _binary_ok(s: MetricSums) -> bool:
    k = round(s.sum)
    return s.binary and 0 <= k <= s.n and math.isclose(s.sum, k, abs_tol=1e-6)


def _stats(s: MetricSums, binary: bool) -> MeanStats | ProportionStats:
    if binary:
        return ProportionStats(s.n, round(s.sum))
    return MeanStats(s.n, s.sum, s.sum_sq)


def _cuped_stats(s: MetricSums) -> CupedStats | None:
    if s.x_sum is None or s.x_sum_sq is None or s.xy_sum is None:
        return None
    return CupedStats(s.n, s.sum, s.sum_sq, s.x_sum, s.x_sum_sq, s.xy_sum)


@dataclass(frozen=True)
class _ArmMetric:
    stats: MeanStats | ProportionStats
    cuped: CupedStats | None


def _resolve(arms: Sequence[ArmData]) -> dict[str, dict[str, _ArmMetric]]:
    """``{metric: {arm: stats}}``; a metric is a proportion only if it is binary in every arm."""
    out: dict[str, dict[str, _ArmMetric]] = {}
    for metric in _metric_names(arms):
        sums = {a.name: _sums(a, metric) for a in arms}
        binary = all(_binary_ok(s) for s in sums.values())
        out[metric] = {k: _ArmMetric(_stats(s, binary), _cuped_stats(s)) for k, s in sums.items()}
    out[ERROR_RATE] = {
        a.name: _ArmMetric(ProportionStats(a.requests, a.errors), None) for a in arms
    }
    return out


# --------------------------------------------------------------------------- A/B: sections


def _srm_section(arms: Sequence[ArmData], threshold: float,
                 observed_units: Mapping[str, int] | None = None
                 ) -> tuple[dict[str, Any], bool]:
    basis = "units" if any(a.units > 0 for a in arms) else "requests"
    counts = [a.units if basis == "units" else a.requests for a in arms]
    if observed_units is not None:  # e.g. only units seen since the last re-weighting
        basis = "units"
        counts = [int(observed_units.get(a.name, 0)) for a in arms]
    r: SRMResult = srm_check(counts, [a.weight for a in arms], threshold=threshold)
    observed = {a.name: c for a, c in zip(arms, counts, strict=True)}
    expected = {a.name: e for a, e in zip(arms, r.expected, strict=True)}
    if r.srm_detected:
        shown = {k: round(v, 1) for k, v in expected.items()}
        message = (
            f"SAMPLE RATIO MISMATCH: observed {basis} {observed} do not match the configured "
            f"weights (expected {shown}, chi2 = {r.chi2:.2f}, p = {r.p_value:.3g} < "
            f"{threshold}). Assignment or logging is broken: do not trust these results."
        )
    elif r.error == ErrorCode.NO_DATA:
        message = f"SRM not checked: no {basis} yet."
    elif r.error == ErrorCode.INSUFFICIENT_UNITS:
        message = f"SRM not evaluated until every arm has {SRM_MIN_COUNT} {basis}."
    else:
        message = f"No sample ratio mismatch (p = {r.p_value:.3g} >= {threshold})."
    section = {
        "basis": basis,
        "chi2": r.chi2,
        "p_value": r.p_value,
        "df": r.df,
        "threshold": threshold,
        "fired": r.srm_detected,
        "observed": observed,
        "expected": expected,
        "message": message,
        "error": r.error,
    }
    return section, r.srm_detected


def _metric_summary(s: MeanStats | ProportionStats, alpha: float) -> dict[str, Any]:
    n, mean = s.n, s.mean
    error: ErrorCode | None = None
    if isinstance(s, ProportionStats):
        lo, hi = wilson_interval(s.conversions, n, alpha)
        if n == 0:
            error = ErrorCode.INSUFFICIENT_UNITS
        kind = "proportion"
    else:
        kind = "mean"
        lo = hi = mean
        if n == 0:
            error = ErrorCode.INSUFFICIENT_UNITS
        elif n == 1 or s.variance <= 0:
            error = ErrorCode.ZERO_NEGATIVE_VARIANCE
        else:
            lo, hi = t_effect(mean, s.sd / math.sqrt(n), n - 1, alpha=alpha).ci
    return {"type": kind, "n": n, "mean": mean, "ci_low": lo, "ci_high": hi, "error": error}


def _arms_section(
    arms: Sequence[ArmData], resolved: dict[str, dict[str, _ArmMetric]], alpha: float
) -> list[dict[str, Any]]:
    w_total = sum(max(a.weight, 0.0) for a in arms)
    return [
        {
            "name": a.name,
            "weight": max(a.weight, 0.0) / w_total if w_total > 0 else None,
            "requests": a.requests,
            "units": a.units,
            "errors": a.errors,
            "error_rate": rate(a.errors, a.requests),
            "latency_ms": dict(a.latency_ms),
            "metrics": {
                m: _metric_summary(per_arm[a.name].stats, alpha)
                for m, per_arm in resolved.items()
                if m != ERROR_RATE
            },
        }
        for a in arms
    ]


def _effect(e: Effect) -> dict[str, Any]:
    return {**dataclasses.asdict(e), "significant": e.significant}


def _sequential(r: SequentialResult) -> dict[str, Any]:
    return {**dataclasses.asdict(r), "significant": r.significant}


def _sample_size(
    c: MeanStats | ProportionStats,
    n_now: int,
    *,
    mde: float,
    alpha: float,
    power: float,
    n_star: float,
) -> dict[str, Any]:
    """Units per arm (equal allocation) to detect a relative lift ``mde`` on the control."""
    out: dict[str, Any] = {"mde": mde, "current_per_arm": n_now}
    error: ErrorCode | None = None
    per_arm: int | None = None
    if c.n <= 1:
        error = ErrorCode.INSUFFICIENT_UNITS
    elif c.mean == 0:
        error = ErrorCode.BASELINE_ZERO
    elif c.variance <= 0:
        error = ErrorCode.ZERO_NEGATIVE_VARIANCE
    elif isinstance(c, ProportionStats) and treatment_rate(c.mean, mde) < 1:
        p2 = treatment_rate(c.mean, mde)
        per_arm = sample_size_proportions(c.mean, p2, alpha=alpha, power=power).n_control
    else:  # means, or a lift pushing the rate past 1: normal approximation with s² = p(1 - p)
        sigma = math.sqrt(c.variance)
        per_arm = sample_size_means(sigma, mde * abs(c.mean), alpha=alpha, power=power).n_control
    seq: int | None = None
    if per_arm is not None:
        seq = math.ceil(per_arm * sequential_inflation(2 * per_arm, alpha=alpha, n_star=n_star))
    out.update(
        {
            "per_arm": per_arm,
            "additional_per_arm": None if per_arm is None else max(per_arm - n_now, 0),
            "per_arm_sequential": seq,
            "additional_per_arm_sequential": None if seq is None else max(seq - n_now, 0),
            "error": error,
        }
    )
    return out


def _cuped_section(
    c: CupedStats | None, t: CupedStats | None, alpha: float
) -> dict[str, Any] | None:
    if c is None or t is None:
        return None
    r = cuped_ttest(c, t, alpha=alpha)
    return {
        "theta": r.theta,
        "correlation": r.correlation,
        "absolute": _effect(r.comparison.absolute),
        "relative": _effect(r.comparison.relative),
        "p_value": r.comparison.absolute.p_value,
        "significant": r.comparison.absolute.significant,
        "variance_reduction": r.variance_reduction,
        "error": r.comparison.absolute.error,
    }


@dataclass(frozen=True)
class _Compared:
    """A comparison's JSON section plus the sequential result the decision reads."""

    section: dict[str, Any]
    sequential: SequentialResult


# What each comparison's p-value and interval are, as the report labels them: a matched
# pair (p < alpha exactly when the interval excludes 0).
MATCHED_P = {
    "wald": "unpooled two-proportion z (matches the Wald interval)",
    "newcombe": "Newcombe's interval inverted (matches it; small counts)",
    "welch": "Welch t",
}
INTERVALS = {
    "wald": "Wald (unpooled)",
    "newcombe": "Newcombe hybrid score (Wilson limits)",
    "welch": "Welch t",
}


def _compare(
    arm: str,
    metric: str,
    c: _ArmMetric,
    t: _ArmMetric,
    *,
    higher_is_better: bool,
    alpha: float,
    n_star: float,
    mde: float,
    power: float,
) -> _Compared:
    cs, ts = c.stats, t.stats
    comp: Comparison
    if isinstance(cs, ProportionStats) and isinstance(ts, ProportionStats):
        # Newcombe's interval where Wald's is unreliable (under 10 successes or failures in
        # an arm, zero-conversion arms included), and the p-value of the same construction.
        comp = two_proportion_ztest(cs, ts, alpha=alpha, ci_method="auto", matched=True)
        method = ("newcombe" if is_small_count(cs) or is_small_count(ts) else "wald")
        test = {"method": method, "p_value": MATCHED_P[method],
                "interval": INTERVALS[method]}
    else:
        comp = welch_test(cs.moments(), ts.moments(), alpha=alpha)
        test = {"method": "welch", "p_value": MATCHED_P["welch"], "interval": INTERVALS["welch"]}
    seq_abs = sequential_compare(cs, ts, alpha=alpha, n_star=n_star)
    seq_rel = sequential_compare(cs, ts, alpha=alpha, n_star=n_star, relative=True)
    inverse = not higher_is_better
    bayes = bayes_from_comparison(comp, relative=True, alpha=alpha, inverse=inverse)
    if bayes.error == ErrorCode.BASELINE_ZERO:  # P(lift > 0) = P(Δ > 0): use the absolute scale
        bayes = bayes_from_comparison(comp, relative=False, alpha=alpha, inverse=inverse)
    section = {
        "arm": arm,
        "metric": metric,
        "type": "proportion" if isinstance(cs, ProportionStats) else "mean",
        "higher_is_better": higher_is_better,
        "n_control": cs.n,
        "n_treatment": ts.n,
        "control_mean": cs.mean,
        "treatment_mean": ts.mean,
        "absolute": _effect(comp.absolute),
        "relative": _effect(comp.relative),
        "test": test,
        "p_value": comp.absolute.p_value,
        "significant": comp.absolute.significant,
        "sequential": {
            "p_value": seq_abs.p_value,
            "significant": seq_abs.significant,
            "absolute": _sequential(seq_abs),
            "relative": _sequential(seq_rel),
        },
        "chance_to_beat_control": bayes.chance_to_win,
        "cuped": _cuped_section(c.cuped, t.cuped, alpha),
        "sample_size": _sample_size(
            cs, min(cs.n, ts.n), mde=mde, alpha=alpha, power=power, n_star=n_star
        ),
        "error": comp.absolute.error or comp.relative.error,
    }
    return _Compared(section, seq_abs)


def _correct(comparisons: list[dict[str, Any]], seq: dict[tuple[str, str], SequentialResult],
             guardrails: Sequence[Guardrail], correction: Correction, alpha: float
             ) -> dict[str, Any]:
    """Adjust the p-values of the family: every candidate x every metric but the guardrails
    and the built-in error rate (spec §2.9). Each comparison of the family gets
    ``p_value_adjusted`` / ``significant_adjusted`` (fixed horizon) and
    ``sequential.p_value_adjusted``; the others get None (they are not in it)."""
    guarded = {g.metric for g in guardrails} | {ERROR_RATE}
    family = [c for c in comparisons if c["metric"] not in guarded]
    fixed = adjust([float(c["p_value"]) for c in family], correction)
    sequential = adjust([float(seq[(c["arm"], c["metric"])].p_value) for c in family],
                        correction)
    for c in comparisons:
        c["p_value_adjusted"] = None
        c["significant_adjusted"] = None
        c["sequential"]["p_value_adjusted"] = None
    for c, p_fixed, p_seq in zip(family, fixed, sequential, strict=True):
        c["p_value_adjusted"] = p_fixed
        c["significant_adjusted"] = p_fixed < alpha
        c["sequential"]["p_value_adjusted"] = p_seq
    return {
        "method": correction,
        "label": LABELS[correction],
        "family": [[c["arm"], c["metric"]] for c in family],
        "size": len(family),
        "excluded": sorted(guarded),
        "note": ("p_value_adjusted and sequential.p_value_adjusted are corrected across the "
                 "family (each candidate against the control, on each metric that is not a "
                 "guardrail); p_value and sequential.p_value are each test on its own. "
                 "Guardrails are tested one-sided, on their own."),
    }


# --------------------------------------------------------------------------- A/B: decision


def _moved(r: SequentialResult, direction: str) -> bool:
    """Sequentially significant move in ``direction`` ("decrease" or "increase")."""
    return r.significant and (r.estimate < 0 if direction == "decrease" else r.estimate > 0)


def _decide(
    candidates: Sequence[str],
    seq: dict[tuple[str, str], SequentialResult],
    *,
    primary: str | None,
    guardrails: Sequence[Guardrail],
    srm_fired: bool,
    metrics: Sequence[str],
    adjusted: Mapping[tuple[str, str], float],
    alpha: float,
) -> dict[str, Any]:
    def verdict(code: str, reason: str, winner: str | None = None) -> dict[str, Any]:
        return {"winner": winner, "code": code, "reason": reason}

    if srm_fired:
        return verdict("srm", "SRM fired: traffic split does not match the weights")
    if primary is None:
        return verdict("no_primary", "no primary metric")
    if primary not in metrics:
        return verdict("no_primary", f"no primary metric: {primary!r} has no data")
    missing = [g.metric for g in guardrails if g.metric not in metrics]
    if missing:
        return verdict("guardrail", f"guardrail {missing[0]} has no data")

    def primary_moved(a: str, direction: str) -> bool:
        # the primary's sequential test, corrected across the family (spec §2.9)
        p = adjusted.get((a, primary), seq[(a, primary)].p_value)
        return _moved(seq[(a, primary)], direction) and p < alpha

    improved = [a for a in candidates if primary_moved(a, "increase")]
    passing: list[str] = []
    blocked: list[tuple[str, str]] = []
    for a in improved:
        bad = [g.metric for g in guardrails if _moved(seq[(a, g.metric)], g.bad)]
        if bad:
            blocked.append((a, bad[0]))
        else:
            passing.append(a)
    if passing:
        best = max(passing, key=lambda a: seq[(a, primary)].estimate)
        r = seq[(best, primary)]
        corrected = adjusted.get((best, primary), r.p_value)
        # the corrected p-value is named only where a correction applied (several tests)
        shown = (f"{r.p_value:.3g}" if f"{corrected:.3g}" == f"{r.p_value:.3g}"
                 else f"{r.p_value:.3g}, {corrected:.3g} corrected")
        return verdict(
            "winner",
            f"{best} beats control on {primary} (sequential p = {shown}, lift "
            f"{r.estimate:+.4g}); no guardrail worse",
            best,
        )
    if blocked:
        arm, metric = blocked[0]
        return verdict("guardrail", f"guardrail {metric} worse for {arm}")
    losers = [a for a in candidates if primary_moved(a, "decrease")]
    if losers:
        return verdict("worse", f"{losers[0]} is significantly worse than control on {primary}")
    reason = f"not yet significant on {primary} (sequential test)"
    errors = sorted({str(seq[(a, primary)].error) for a in candidates if seq[(a, primary)].error})
    return verdict("not_significant", reason + (f": {', '.join(errors)}" if errors else ""))


def ab_report(
    arms: list[ArmData],
    control: str,
    *,
    alpha: float = 0.05,
    primary: str | None = None,
    guardrails: Sequence[Guardrail] = (),
    n_star: int = 5000,
    mde: float = 0.05,
    power: float = 0.8,
    srm_threshold: float = 0.001,
    srm_units: Mapping[str, int] | None = None,
    correction: Correction = "holm",
) -> dict[str, Any]:
    """A/B report: SRM, per-arm summaries, per (candidate, metric) comparisons, decision.

    Comparisons cover every metric plus the built-in ``"error_rate"`` (errors over requests,
    lower is better). A metric is a proportion when it is binary in every arm, otherwise a
    mean. A metric missing from an arm counts as 0 over that arm's units. The winner is the
    candidate with the largest significant positive sequential effect on ``primary`` among
    those with no guardrail significantly worse (sequential test), provided the SRM check did
    not fire. Output is JSON-safe (no NaN / inf).
    """
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError("alpha and power must be in (0, 1)")
    if not mde > 0 or not n_star > 0:
        raise ValueError("mde and n_star must be > 0")
    if correction not in CORRECTIONS:
        raise ValueError(f"correction is one of {', '.join(CORRECTIONS)}")
    _validate_ab(arms, control, guardrails)

    resolved = _resolve(arms)
    srm, srm_fired = _srm_section(arms, srm_threshold, srm_units)
    increase_bad = {g.metric for g in guardrails if g.bad == "increase"} | {ERROR_RATE}
    candidates = [a.name for a in arms if a.name != control]
    comparisons: list[dict[str, Any]] = []
    seq: dict[tuple[str, str], SequentialResult] = {}
    for arm in candidates:
        for metric, per_arm in resolved.items():
            got = _compare(
                arm,
                metric,
                per_arm[control],
                per_arm[arm],
                higher_is_better=metric not in increase_bad,
                alpha=alpha,
                n_star=n_star,
                mde=mde,
                power=power,
            )
            comparisons.append(got.section)
            seq[(arm, metric)] = got.sequential

    multiple = _correct(comparisons, seq, guardrails, correction, alpha)
    decision = _decide(
        candidates,
        seq,
        primary=primary,
        guardrails=guardrails,
        srm_fired=srm_fired,
        metrics=list(resolved),
        adjusted={(c["arm"], c["metric"]): c["sequential"]["p_value_adjusted"]
                  for c in comparisons if c["sequential"]["p_value_adjusted"] is not None},
        alpha=alpha,
    )
    report = {
        "control": control,
        "primary": primary,
        "settings": {
            "alpha": alpha,
            "n_star": n_star,
            "mde": mde,
            "power": power,
            "srm_threshold": srm_threshold,
            "correction": correction,
            "guardrails": [dataclasses.asdict(g) for g in guardrails],
        },
        "srm": srm,
        "arms": _arms_section(arms, resolved, alpha),
        "multiple_testing": multiple,
        "comparisons": comparisons,
        "decision": decision,
    }
    out: dict[str, Any] = jsonable(report)
    return out
