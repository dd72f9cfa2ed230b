"""Output-distribution drift: PSI on baseline deciles and the two-sample KS test (spec §6.5).

PSI bins are the deciles of the baseline (the primary's outputs on the same mirrored requests),
outer edges at ±∞; zero bin proportions are replaced by ``ε = 1e-4`` without renormalising.
Reading: < 0.1 no material shift, 0.1-0.25 moderate, > 0.25 major (credit-scoring convention).
KS alerts on effect size (``D ≥ 0.1``) *and* ``p < 0.01``, never on p alone.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from champion.analysis._lazy import distance, stats
from champion.analysis.errors import ErrorCode
from champion.analysis.shadow import canonical_label, sorted_labels

FloatArray = npt.NDArray[np.float64]
PSI_BINS = 10
PSI_EPS = 1e-4
PSI_MODERATE = 0.1
PSI_MAJOR = 0.25
KS_D_THRESHOLD = 0.1
KS_P_THRESHOLD = 0.01

@dataclass(frozen=True)
class PSIResult:
    """Population stability index over bins (``edges`` empty for categorical bins)."""

    value: float
    level: Literal["none", "moderate", "major", "no_data"]
    expected: tuple[float, ...]
    actual: tuple[float, ...]
    edges: tuple[float, ...] = ()
    categories: tuple[Hashable, ...] = ()
    js_distance: float = math.nan
    error: ErrorCode | None = None


def psi_level(value: float) -> Literal["none", "moderate", "major", "no_data"]:
    """Conventional reading: < 0.1 none, 0.1-0.25 moderate, > 0.25 major."""
    if math.isnan(value):
        return "no_data"
    if value < PSI_MODERATE:
        return "none"
    return "moderate" if value <= PSI_MAJOR else "major"


def psi_from_proportions(
    expected: npt.ArrayLike, actual: npt.ArrayLike, *, eps: float = PSI_EPS
) -> float:
    """``Σ (a - e) ln(a/e)`` with zero proportions replaced by ``eps`` (not renormalised)."""
    e, a = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    e = np.where(e == 0, eps, e)
    a = np.where(a == 0, eps, a)
    return float(((a - e) * np.log(a / e)).sum())


def _psi_result(
    e_counts: FloatArray,
    a_counts: FloatArray,
    eps: float,
    edges: tuple[float, ...] = (),
    categories: tuple[Hashable, ...] = (),
) -> PSIResult:
    e = e_counts / e_counts.sum()
    a = a_counts / a_counts.sum()
    value = psi_from_proportions(e, a, eps=eps)
    js = float(distance.jensenshannon(e, a, base=2))
    return PSIResult(
        value, psi_level(value), tuple(map(float, e)), tuple(map(float, a)), edges, categories, js
    )


def _no_data(edges: tuple[float, ...] = ()) -> PSIResult:
    return PSIResult(math.nan, "no_data", (), (), edges, (), math.nan, ErrorCode.NO_DATA)


def baseline_edges(baseline: npt.ArrayLike, bins: int = PSI_BINS) -> tuple[float, ...]:
    """Unique baseline quantile edges with the outer ones at ±∞ (constant → [-∞, v, ∞])."""
    x = np.asarray(baseline, dtype=float)
    x = x[~np.isnan(x)]
    edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, bins + 1)))
    if edges.size < 2:
        return (-math.inf, float(edges[0]), math.inf)
    edges[0], edges[-1] = -np.inf, np.inf
    return tuple(float(v) for v in edges)


def psi(
    baseline: npt.ArrayLike,
    candidate: npt.ArrayLike,
    *,
    bins: int = PSI_BINS,
    eps: float = PSI_EPS,
) -> PSIResult:
    """PSI of ``candidate`` against ``baseline`` deciles (spec §6.5).

    Bins are ``[e_i, e_{i+1})`` (last one closed). NaNs form an extra "missing" bin, included
    only when present. Empty baseline or candidate: ``value = NaN``, ``error = NO_DATA``.
    """
    b, c = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    b_ok, c_ok = b[~np.isnan(b)], c[~np.isnan(c)]
    if b.size == 0 or c.size == 0 or b_ok.size == 0:
        return _no_data()
    edges = baseline_edges(b_ok, bins)
    e_counts = np.histogram(b_ok, np.asarray(edges))[0].astype(float)
    a_counts = np.histogram(c_ok, np.asarray(edges))[0].astype(float)
    n_missing_b, n_missing_c = b.size - b_ok.size, c.size - c_ok.size
    if n_missing_b or n_missing_c:
        e_counts = np.append(e_counts, n_missing_b)
        a_counts = np.append(a_counts, n_missing_c)
    return _psi_result(e_counts, a_counts, eps, edges=edges)


def psi_categorical(
    baseline: Sequence[Hashable], candidate: Sequence[Hashable], *, eps: float = PSI_EPS
) -> PSIResult:
    """PSI with categories as bins (NaN / None as the "missing" category)."""
    if len(baseline) == 0 or len(candidate) == 0:
        return _no_data()
    b = [canonical_label(x) for x in baseline]
    c = [canonical_label(x) for x in candidate]
    cats = sorted_labels(set(b) | set(c))
    # one pass each (list.count per category was O(n * categories): 13 % of a shadow
    # report's time at 100,000 pairs)
    b_counts, c_counts = Counter(b), Counter(c)
    e_counts = np.array([b_counts[k] for k in cats], dtype=float)
    a_counts = np.array([c_counts[k] for k in cats], dtype=float)
    return _psi_result(e_counts, a_counts, eps, categories=cats)


@dataclass(frozen=True)
class KSResult:
    """Two-sample Kolmogorov-Smirnov drift test; alerts on effect size, never on p alone."""

    statistic: float
    p_value: float
    alert: bool
    error: ErrorCode | None = None


def ks_drift(
    baseline: npt.ArrayLike,
    candidate: npt.ArrayLike,
    *,
    d_threshold: float = KS_D_THRESHOLD,
    p_threshold: float = KS_P_THRESHOLD,
) -> KSResult:
    """``scipy.stats.ks_2samp`` on non-NaN values; alert when ``D ≥ 0.1`` and ``p < 0.01``."""
    b, c = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    b, c = b[~np.isnan(b)], c[~np.isnan(c)]
    if b.size == 0 or c.size == 0:
        return KSResult(math.nan, math.nan, False, ErrorCode.NO_DATA)
    res = stats.ks_2samp(b, c)
    d, p = float(res.statistic), float(res.pvalue)
    return KSResult(d, p, d >= d_threshold and p < p_threshold)
