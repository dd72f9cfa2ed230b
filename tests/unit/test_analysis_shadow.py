"""Shadow-test comparisons: labels, regression outputs, latency (spec §6.1-§6.4)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from champion.analysis.shadow import (
    MISSING,
    ShadowHealth,
    confusion_matrix,
    label_agreement,
    latency_comparison,
    latency_quantiles,
    mcnemar_exact,
    paired_accuracy,
    regression_diff,
    symmetric_relative_diff,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "cases" / "spec_vectors.json").read_text(encoding="utf-8")
)


def approx(expected: Any, tol: dict[str, float]) -> Any:
    """``pytest.approx`` with a tolerance block from the case file."""
    return pytest.approx(expected, rel=tol["rel"], abs=tol["abs"])


CLS = VECTORS["shadow_classification"]
REG = VECTORS["shadow_regression"]
LAT = VECTORS["shadow_latency"]


def test_agreement_wilson_kappa_vector() -> None:
    tol, exp = CLS["tol"], CLS["expected"]
    r = label_agreement(CLS["primary"], CLS["shadow"])
    assert (r.n, r.agreements) == (exp["n"], exp["agreements"])
    assert r.rate == approx(exp["agreement"], tol)
    assert [r.ci_low, r.ci_high] == approx(exp["wilson"], tol)
    assert r.kappa == approx(exp["kappa"], tol)


def test_confusion_matrix_and_flip_rates() -> None:
    cm = confusion_matrix(CLS["primary"], CLS["shadow"])
    assert cm.labels == ("A", "B", "C")
    assert cm.counts == ((3, 1, 1), (0, 3, 0), (0, 0, 2))
    assert cm.flip_rates() == pytest.approx({"A": 0.4, "B": 0.0, "C": 0.0})


def test_missing_outputs_are_a_category_and_kappa_edge_cases() -> None:
    r = label_agreement(["a", None, float("nan"), "b"], ["a", "b", float("nan"), "b"])
    assert MISSING in r.confusion.labels
    assert r.agreements == 3  # NaN == NaN counts as agreement on "missing"
    assert label_agreement(["x"] * 5, ["x"] * 5).kappa == 1.0  # p_e = 1, p_o = 1
    empty = label_agreement([], [])
    assert math.isnan(empty.rate) and (empty.ci_low, empty.ci_high) == (0.0, 1.0)
    with pytest.raises(ValueError):
        label_agreement(["a"], [])


def test_mcnemar_vector_and_paired_accuracy() -> None:
    mc = CLS["mcnemar"]
    assert mcnemar_exact(mc["b"], mc["c"]) == approx(mc["p"], CLS["tol"])
    (a, b), (c, d) = mc["table"]
    primary = [True] * (a + b) + [False] * (c + d)
    shadow = [True] * a + [False] * b + [True] * c + [False] * d
    r = paired_accuracy(primary, shadow)
    assert (r.primary_only_correct, r.shadow_only_correct) == (b, c)
    assert r.p_value == approx(mc["p"], CLS["tol"])
    assert r.difference == pytest.approx((c - b) / (a + b + c + d))
    assert r.ci_low < r.difference < r.ci_high
    assert mcnemar_exact(0, 0) == 1.0


def test_regression_vector() -> None:
    tol, exp = REG["tol"], REG["expected"]
    p, s = REG["primary"], REG["shadow"]
    assert list(symmetric_relative_diff(p, s)) == approx(exp["sym_rel_diff"], tol)
    ta = exp["tolerance_agreement"]
    r = regression_diff(p, s, rtol=ta["rtol"], atol=ta["atol"])
    assert r.bias == approx(exp["mean_signed_diff"], tol)
    keys = ("p50", "p90", "p99", "max")
    assert r.abs_diff == approx({k: exp[f"abs_{k}"] for k in keys}, tol)
    assert r.sym_rel_diff["max"] == pytest.approx(2.0)
    assert r.rel_diff["max"] == pytest.approx(max(exp["rel_diff_eps_1e-9"]))
    assert r.tolerance_agreement == approx(ta["expected"], tol)
    d = np.subtract(s, p)
    half = 2.7764451051977987 * d.std(ddof=1) / math.sqrt(5)  # t_{0.975, 4}
    assert (r.bias_ci_low, r.bias_ci_high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert max(exp["abs_diff"]) == r.abs_diff["max"]


def test_latency_vector() -> None:
    tol, exp = LAT["tol"], LAT["expected"]
    assert latency_quantiles(LAT["primary"]) == approx(exp["primary"], tol)
    assert latency_quantiles(LAT["shadow"]) == approx(exp["shadow"], tol)
    r = latency_comparison(LAT["primary"], LAT["shadow"], min_n_p99=0, resamples=200)
    assert r.median_diff == approx(exp["median_diff"], tol)
    assert r.wilcoxon_statistic == approx(exp["wilcoxon_statistic"], tol)
    assert r.wilcoxon_p_value == approx(exp["wilcoxon_p"], tol)
    assert r.p99_ratio == pytest.approx(28.28 / 28.92)
    # default: p99 is withheld below 1000 pairs
    default = latency_comparison(LAT["primary"], LAT["shadow"])
    assert math.isnan(default.primary["p99"]) and math.isnan(default.p99_ratio)
    assert default.primary["p50"] == exp["primary"]["p50"]


def test_latency_bootstrap_is_seeded_and_covers_true_ratio() -> None:
    rng = np.random.default_rng(12)
    primary = rng.lognormal(3.0, 0.4, 3000)
    shadow = primary * 1.2 + rng.normal(0, 0.5, 3000)
    a = latency_comparison(primary, shadow, rng=np.random.default_rng(1))
    b = latency_comparison(primary, shadow, rng=np.random.default_rng(1))
    assert (a.p99_ratio_ci_low, a.p99_ratio_ci_high) == (b.p99_ratio_ci_low, b.p99_ratio_ci_high)
    assert a.p99_ratio_ci_low < 1.2 < a.p99_ratio_ci_high
    assert a.wilcoxon_p_value < 1e-10
    same = latency_comparison([5.0, 6.0, 7.0], [5.0, 6.0, 7.0])
    assert (same.wilcoxon_statistic, same.wilcoxon_p_value) == (0.0, 1.0)


def test_shadow_health_rates() -> None:
    h = ShadowHealth(mirrored=200, errors=4, timeouts=2, unmatched=10)
    assert (h.shadow_error_rate, h.shadow_timeout_rate, h.unmatched_rate) == (0.02, 0.01, 0.05)
    assert math.isnan(ShadowHealth(0, 0, 0, 0).shadow_error_rate)


def test_the_tail_bootstrap_draws_the_same_ci_as_resampling_every_pair() -> None:
    # the p99 ratio's bootstrap drawn from the two tails only must have the distribution of
    # the full resampling: over seeds, the CI bounds agree in mean within their spread
    from champion.analysis.shadow import _bootstrap_p99_ratio, _bootstrap_p99_ratio_full

    rng = np.random.default_rng(11)
    n = 3000
    p = rng.lognormal(0, 0.5, n)
    s = p * rng.lognormal(0.05, 0.1, n)
    tail = np.array([_bootstrap_p99_ratio(p, s, 300, 0.1, np.random.default_rng(k))
                     for k in range(16)])
    full = np.array([_bootstrap_p99_ratio_full(p, s, 300, 0.1, np.random.default_rng(k + 50))
                     for k in range(16)])
    spread = full.std(axis=0)
    assert np.all(np.abs(tail.mean(axis=0) - full.mean(axis=0)) < 2 * spread), (tail, full)
    assert np.all(tail.std(axis=0) < 2 * spread + 1e-9)
    # and on a sample large enough for the tails to matter, it stays exact in ties
    q = np.round(p, 1)  # many ties at the top
    lo, hi = _bootstrap_p99_ratio(q, q, 200, 0.05, np.random.default_rng(0))
    assert lo == hi == 1.0
