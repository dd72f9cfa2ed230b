"""Shadow-test report from mirrored request pairs (spec §6).

:func:`shadow_report` counts pairs, errors and drops (§6.1), then, over the pairs where both
calls succeeded, compares outputs as classification (§6.2: agreement, κ, confusion matrix,
McNemar against labels) or regression (§6.3: bounded relative differences), latency side by
side (§6.4) and output drift (§6.5: PSI, KS). Output is JSON-safe; empty input yields neutral
values and ``error = "NO_DATA"``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from champion.analysis.drift import ks_drift, psi, psi_categorical
from champion.analysis.errors import ErrorCode
from champion.analysis.report_ab import jsonable, rate
from champion.analysis.shadow import (
    MIN_N_P99,
    canonical_label,
    label_agreement,
    latency_comparison,
    paired_accuracy,
    regression_diff,
)

__all__ = ["LABEL_KEYS", "ShadowPair", "prediction_of", "shadow_report"]

#: Keys tried, in order, on dict outputs when no ``field`` is given (shadow reports).
# The keys a dict answer's prediction is read from, first found wins: one list for shadow
# agreement here and for deployment accuracy (store/ledger.py reads it from here).
LABEL_KEYS = ("label", "prediction", "class", "y")
#: Relative tolerance of the regression tolerance-agreement rate (spec §6.3).
REGRESSION_RTOL = 0.01
#: PSI levels that count as drift (spec §6.5: >= 0.1).
_PSI_SHIFT = ("moderate", "major")


@dataclass
class ShadowPair:
    """One mirrored request: the live answer and the shadow's answer."""

    live: Any  # JSON value (None when the call failed)
    shadow: Any
    live_ms: float
    shadow_ms: float
    live_ok: bool
    shadow_ok: bool
    label: Any = None  # ground truth from feedback, when it arrived


def prediction_of(value: Any) -> Any:
    """The prediction in an answer: for a dict, its first of :data:`LABEL_KEYS`; else the
    answer itself."""
    if isinstance(value, dict):
        for k in LABEL_KEYS:
            if k in value:
                return value[k]
    return value


def _extract(value: Any, key: str | None) -> Any:
    """The compared output: ``value[key]``, else :func:`prediction_of`, for dicts."""
    if isinstance(value, dict) and key is not None:
        return value.get(key)
    return prediction_of(value)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _detect_kind(values: Sequence[Any]) -> str | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    if all(_is_number(v) for v in present) and any(
        isinstance(v, float) and math.isfinite(v) and not v.is_integer() for v in present
    ):
        return "regression"
    return "classification"


# json.dumps(v, sort_keys=True, default=str) with one encoder, not one built per call
# (0.6x the time a label; a shadow report labels every compared answer twice)
_CANONICAL = json.JSONEncoder(sort_keys=True, default=str)


def _label(v: Any) -> Hashable:
    """Hashable, JSON-safe category: containers become canonical JSON text, None "missing"."""
    if isinstance(v, dict | list | tuple):
        return _CANONICAL.encode(v)
    if v is None or isinstance(v, bool | int | float | str):
        out: Hashable = canonical_label(v)
        return out
    return repr(v)


def _classification(
    live: list[Any], shadow: list[Any], truth: list[Any], alpha: float
) -> dict[str, Any]:
    """``agreement``, ``confusion``, ``labels`` (accuracy + McNemar) and ``drift`` sections."""
    lv, sv = [_label(v) for v in live], [_label(v) for v in shadow]
    agreement = label_agreement(lv, sv, alpha=alpha)
    cm = agreement.confusion
    out: dict[str, Any] = {
        "agreement": {
            "n": agreement.n,
            "agreements": agreement.agreements,
            "rate": agreement.rate,
            "ci_low": agreement.ci_low,
            "ci_high": agreement.ci_high,
            "kappa": agreement.kappa,
        },
        "confusion": {
            "labels": cm.labels,
            "counts": cm.counts,
            "rows": "live",
            "columns": "shadow",
            "flip_rates": list(cm.flip_rates().values()),
        },
        "labels": None,
    }
    labelled = [i for i, t in enumerate(truth) if t is not None]
    if labelled:
        tv = {i: _label(truth[i]) for i in labelled}
        acc = paired_accuracy(
            [lv[i] == tv[i] for i in labelled], [sv[i] == tv[i] for i in labelled], alpha=alpha
        )
        out["labels"] = {
            "n": acc.n,
            "accuracy_live": acc.accuracy_primary,
            "accuracy_shadow": acc.accuracy_shadow,
            "difference": acc.difference,
            "ci_low": acc.ci_low,
            "ci_high": acc.ci_high,
            "mcnemar": {
                "live_only_correct": acc.primary_only_correct,
                "shadow_only_correct": acc.shadow_only_correct,
                "p_value": acc.p_value,
            },
        }
    cat = psi_categorical(lv, sv)
    out["drift"] = {"psi": dataclasses.asdict(cat), "ks": None, "detected": cat.level in _PSI_SHIFT}
    return out


def _regression(live: list[Any], shadow: list[Any], alpha: float) -> dict[str, Any]:
    """``regression`` (paired differences, spec §6.3) and ``drift`` (PSI + KS) sections."""
    pairs = [
        (float(a), float(b))
        for a, b in zip(live, shadow, strict=True)
        if _is_number(a) and _is_number(b) and math.isfinite(a) and math.isfinite(b)
    ]
    lv = np.array([p[0] for p in pairs], dtype=float)
    sv = np.array([p[1] for p in pairs], dtype=float)
    diff = regression_diff(lv, sv, rtol=REGRESSION_RTOL, alpha=alpha)
    section = {
        **dataclasses.asdict(diff),
        "rtol": REGRESSION_RTOL,
        "excluded_non_numeric": len(live) - len(pairs),
    }
    with warnings.catch_warnings():  # scipy warns when exact KS falls back to asymptotic
        warnings.simplefilter("ignore", RuntimeWarning)
        ks = ks_drift(lv, sv)
    p = psi(lv, sv)
    drift = {
        "psi": dataclasses.asdict(p),
        "ks": dataclasses.asdict(ks),
        "detected": p.level in _PSI_SHIFT or ks.alert,
    }
    return {"regression": section, "drift": drift}


def _latency_quantiles(x: np.ndarray[Any, np.dtype[np.float64]]) -> dict[str, float | None]:
    if x.size == 0:
        return {"p50": None, "p90": None, "p99": None, "mean": None}
    p50, p90, p99 = (float(v) for v in np.quantile(x, [0.5, 0.9, 0.99], method="linear"))
    return {
        "p50": p50,
        "p90": p90,
        "p99": p99 if x.size >= MIN_N_P99 else None,
        "mean": float(x.mean()),
    }


def _latency(ok: Sequence[ShadowPair], alpha: float) -> dict[str, Any]:
    lm = np.array([p.live_ms for p in ok], dtype=float)
    sm = np.array([p.shadow_ms for p in ok], dtype=float)
    lat = latency_comparison(lm, sm, alpha=alpha)
    pos = lm > 0
    ratio = float(np.median(sm[pos] / lm[pos])) if pos.any() else None
    return {
        "n": lat.n,
        "live": _latency_quantiles(lm),
        "shadow": _latency_quantiles(sm),
        "median_diff_ms": lat.median_diff,
        "diff_quantiles_ms": lat.diff_quantiles,
        "median_ratio": ratio,
        "wilcoxon_statistic": lat.wilcoxon_statistic,
        "wilcoxon_p_value": lat.wilcoxon_p_value,
        "p99_ratio": lat.p99_ratio,
        "p99_ratio_ci_low": lat.p99_ratio_ci_low,
        "p99_ratio_ci_high": lat.p99_ratio_ci_high,
        "p99_min_n": MIN_N_P99,
    }


def shadow_report(
    pairs: Sequence[ShadowPair],
    *,
    kind: str = "auto",
    field: str | None = None,
    alpha: float = 0.05,
    dropped: int = 0,
) -> dict[str, Any]:
    """Shadow report (spec §6) over mirrored request pairs; only pairs where both calls
    succeeded enter the output, latency and drift comparisons.

    ``kind="auto"`` picks regression when every compared output (after taking ``field``, or
    the first of "label" / "prediction" / "class" / "y", from dict outputs) is a number and some
    have a fractional part, classification otherwise. ``dropped`` counts mirrored requests that
    never produced a pair. Output is JSON-safe (no NaN / inf).
    """
    if kind not in ("auto", "classification", "regression"):
        raise ValueError("kind must be 'auto', 'classification' or 'regression'")
    if dropped < 0:
        raise ValueError("dropped must be >= 0")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    n = len(pairs)
    live_errors = sum(not p.live_ok for p in pairs)
    shadow_errors = sum(not p.shadow_ok for p in pairs)
    ok = [p for p in pairs if p.live_ok and p.shadow_ok]
    live = [_extract(p.live, field) for p in ok]
    shadow = [_extract(p.shadow, field) for p in ok]
    truth = [None if p.label is None else _extract(p.label, field) for p in ok]
    resolved = _detect_kind(live + shadow) if kind == "auto" else kind

    sections: dict[str, Any] = {
        "agreement": None,
        "confusion": None,
        "labels": None,
        "regression": None,
        "drift": {"psi": None, "ks": None, "detected": False},
    }
    if ok and resolved == "classification":
        sections.update(_classification(live, shadow, truth, alpha))
    elif ok and resolved == "regression":
        sections.update(_regression(live, shadow, alpha))

    report = {
        "kind": resolved,
        "field": field,
        "counts": {
            "pairs": n,
            "compared": len(ok),
            "labelled": sum(t is not None for t in truth),
            "live_errors": live_errors,
            "shadow_errors": shadow_errors,
            "live_error_rate": rate(live_errors, n),
            "shadow_error_rate": rate(shadow_errors, n),
            "dropped": dropped,
            "dropped_rate": rate(dropped, n + dropped),
        },
        **sections,
        "latency": _latency(ok, alpha),
        "error": None if ok and resolved is not None else ErrorCode.NO_DATA,
    }
    out: dict[str, Any] = jsonable(report)
    return out
