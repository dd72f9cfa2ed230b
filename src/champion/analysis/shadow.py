"""Shadow-test comparisons on paired (primary, shadow) outputs (spec §6).

* §6.1 health rates (errors, timeouts, unmatched mirrored requests);
* §6.2 classification: agreement with a Wilson CI, Cohen's κ, confusion matrix and flip
  rates, exact McNemar test against ground truth;
* §6.3 regression: signed / absolute / bounded symmetric relative differences, tolerance
  agreement;
* §6.4 latency: per-arm quantiles, paired differences, Wilcoxon signed-rank, bootstrap CI
  of the p99 ratio.

Output-distribution drift (§6.5, PSI and KS) lives in :mod:`champion.analysis.drift`.

Quantiles use numpy's 'linear' method. NaN / None outputs are a separate "missing" category.
The bootstrap takes its random generator as an argument (seeded default).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from champion.analysis._lazy import stats
from champion.analysis.proportions import wilson_interval

FloatArray = npt.NDArray[np.float64]
MISSING = "__missing__"
MIN_N_P99 = 1000
BOOTSTRAP_RESAMPLES = 2000


# --------------------------------------------------------------------------- §6.1 health


@dataclass(frozen=True)
class ShadowHealth:
    """Error / timeout / unmatched rates over mirrored requests (never dropped silently)."""

    mirrored: int
    errors: int
    timeouts: int
    unmatched: int

    def _rate(self, k: int) -> float:
        return k / self.mirrored if self.mirrored > 0 else math.nan

    @property
    def shadow_error_rate(self) -> float:
        """Shadow errors / mirrored."""
        return self._rate(self.errors)

    @property
    def shadow_timeout_rate(self) -> float:
        """Shadow timeouts (join timeout exceeded) / mirrored."""
        return self._rate(self.timeouts)

    @property
    def unmatched_rate(self) -> float:
        """Mirrored requests without a joined pair / mirrored."""
        return self._rate(self.unmatched)


# --------------------------------------------------------------------------- §6.2 labels


def canonical_label(label: Hashable) -> Hashable:
    """Map ``None`` / NaN outputs to the :data:`MISSING` category; other labels unchanged."""
    if label is None or (isinstance(label, float) and math.isnan(label)):
        return MISSING
    return label


def sorted_labels(labels: set[Hashable]) -> tuple[Hashable, ...]:
    """Deterministic label order: natural sort, or by ``repr`` for mixed types."""
    try:
        return tuple(sorted(labels))  # type: ignore[type-var]
    except TypeError:
        return tuple(sorted(labels, key=repr))


@dataclass(frozen=True)
class ConfusionMatrix:
    """Counts ``counts[i][j]`` of (primary = labels[i], shadow = labels[j])."""

    labels: tuple[Hashable, ...]
    counts: tuple[tuple[int, ...], ...]

    def flip_rates(self) -> dict[Hashable, float]:
        """``P(shadow ≠ c | primary = c)`` per class (NaN for classes primary never output)."""
        out: dict[Hashable, float] = {}
        for i, label in enumerate(self.labels):
            row = sum(self.counts[i])
            out[label] = (row - self.counts[i][i]) / row if row > 0 else math.nan
        return out


def confusion_matrix(primary: Sequence[Hashable], shadow: Sequence[Hashable]) -> ConfusionMatrix:
    """Primary x shadow confusion matrix over the union of labels (missing as a category)."""
    if len(primary) != len(shadow):
        raise ValueError("primary and shadow must be paired (same length)")
    p = [canonical_label(x) for x in primary]
    s = [canonical_label(x) for x in shadow]
    labels = sorted_labels(set(p) | set(s))
    index = {lab: i for i, lab in enumerate(labels)}
    m = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for a, b in zip(p, s, strict=True):
        m[index[a], index[b]] += 1
    return ConfusionMatrix(labels, tuple(tuple(int(v) for v in row) for row in m))


def cohens_kappa(cm: ConfusionMatrix) -> float:
    """``κ = (p_o - p_e)/(1 - p_e)``; if ``p_e = 1``, κ = 1 when ``p_o = 1`` else 0."""
    m = np.asarray(cm.counts, dtype=float)
    n = m.sum()
    if n == 0:
        return math.nan
    p_o = float(np.trace(m) / n)
    p_e = float((m.sum(axis=1) / n) @ (m.sum(axis=0) / n))
    if p_e >= 1.0:
        return 1.0 if p_o >= 1.0 else 0.0
    return (p_o - p_e) / (1.0 - p_e)


@dataclass(frozen=True)
class AgreementResult:
    """Label agreement between primary and shadow."""

    n: int
    agreements: int
    rate: float
    ci_low: float
    ci_high: float
    kappa: float
    confusion: ConfusionMatrix


def label_agreement(
    primary: Sequence[Hashable], shadow: Sequence[Hashable], *, alpha: float = 0.05
) -> AgreementResult:
    """Agreement rate with Wilson CI, Cohen's κ and the confusion matrix (spec §6.2)."""
    cm = confusion_matrix(primary, shadow)
    n = sum(sum(row) for row in cm.counts)
    k = sum(cm.counts[i][i] for i in range(len(cm.labels)))
    lo, hi = wilson_interval(k, n, alpha)
    rate = k / n if n > 0 else math.nan
    return AgreementResult(n, k, rate, lo, hi, cohens_kappa(cm), cm)


def mcnemar_exact(b: int, c: int) -> float:
    """Exact McNemar p-value ``binomtest(b, b + c, 0.5)`` on the discordant counts."""
    if b + c == 0:
        return 1.0
    return float(stats.binomtest(b, b + c, 0.5).pvalue)


@dataclass(frozen=True)
class PairedAccuracyResult:
    """Primary vs shadow accuracy against delayed ground truth."""

    n: int
    primary_only_correct: int
    shadow_only_correct: int
    accuracy_primary: float
    accuracy_shadow: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float


def paired_accuracy(
    primary_correct: npt.ArrayLike, shadow_correct: npt.ArrayLike, *, alpha: float = 0.05
) -> PairedAccuracyResult:
    """McNemar exact test and accuracy difference ``(c - b)/n`` with a paired Wald CI (§6.2).

    ``b`` = primary right & shadow wrong, ``c`` = primary wrong & shadow right.
    """
    pc = np.asarray(primary_correct, dtype=bool)
    sc = np.asarray(shadow_correct, dtype=bool)
    if pc.shape != sc.shape:
        raise ValueError("primary_correct and shadow_correct must be paired")
    n = int(pc.size)
    b = int((pc & ~sc).sum())
    c = int((~pc & sc).sum())
    p_value = mcnemar_exact(b, c)
    if n == 0:
        return PairedAccuracyResult(0, 0, 0, math.nan, math.nan, math.nan, 0.0, 0.0, 1.0)
    diff = (c - b) / n
    var = max(((b + c) / n - diff * diff) / n, 0.0)
    half = float(stats.norm.ppf(1 - alpha / 2)) * math.sqrt(var)
    return PairedAccuracyResult(
        n, b, c, float(pc.mean()), float(sc.mean()), diff, diff - half, diff + half, p_value
    )


# --------------------------------------------------------------------------- §6.3 regression


def _quantiles(x: FloatArray, qs: Sequence[float], names: Sequence[str]) -> dict[str, float]:
    if x.size == 0:
        return {name: math.nan for name in names}
    vals = np.quantile(x, list(qs), method="linear")
    return {name: float(v) for name, v in zip(names, vals, strict=True)}


def symmetric_relative_diff(primary: npt.ArrayLike, shadow: npt.ArrayLike) -> FloatArray:
    """``2|s - p|/(|p| + |s|)`` in [0, 2]; 0 when both are 0."""
    p, s = np.asarray(primary, dtype=float), np.asarray(shadow, dtype=float)
    den = np.abs(p) + np.abs(s)
    out: FloatArray = np.zeros_like(den)
    np.divide(2.0 * np.abs(s - p), den, out=out, where=den > 0)
    return out


@dataclass(frozen=True)
class RegressionDiffResult:
    """Paired numeric output differences ``d = shadow - primary``."""

    n: int
    bias: float
    bias_ci_low: float
    bias_ci_high: float
    abs_diff: dict[str, float]
    sym_rel_diff: dict[str, float]
    rel_diff: dict[str, float]
    tolerance_agreement: float


def regression_diff(
    primary: npt.ArrayLike,
    shadow: npt.ArrayLike,
    *,
    rtol: float = 0.01,
    atol: float | None = None,
    rel_floor: float = 1e-9,
    alpha: float = 0.05,
) -> RegressionDiffResult:
    """Bias with paired-t CI, |d| / srd / floored-relative quantiles and tolerance agreement (§6.3).

    ``atol`` defaults to ``1e-6 x scale`` with scale = mean ``|primary|`` (1 when that is 0).
    Tolerance agreement is ``mean(|d| ≤ max(atol, rtol·|p|))``.
    """
    p, s = np.asarray(primary, dtype=float), np.asarray(shadow, dtype=float)
    if p.shape != s.shape:
        raise ValueError("primary and shadow must be paired (same length)")
    keys, names = (0.5, 0.9, 0.99, 1.0), ("p50", "p90", "p99", "max")
    n = int(p.size)
    d = s - p
    ad = np.abs(d)
    if atol is None:
        scale = float(np.abs(p).mean()) if n else 0.0
        atol = 1e-6 * (scale if scale > 0 else 1.0)
    bias = float(d.mean()) if n else math.nan
    lo = hi = math.nan
    if n >= 2:
        half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * float(d.std(ddof=1)) / math.sqrt(n)
        lo, hi = bias - half, bias + half
    agree = float(np.mean(ad <= np.maximum(atol, rtol * np.abs(p)))) if n else math.nan
    return RegressionDiffResult(
        n,
        bias,
        lo,
        hi,
        _quantiles(ad, keys, names),
        _quantiles(symmetric_relative_diff(p, s), keys, names),
        _quantiles(ad / np.maximum(np.abs(p), rel_floor), keys, names),
        agree,
    )


# --------------------------------------------------------------------------- §6.4 latency


@dataclass(frozen=True)
class LatencyComparison:
    """Paired latency comparison; p99 figures are NaN below ``min_n_p99`` pairs."""

    n: int
    primary: dict[str, float]
    shadow: dict[str, float]
    median_diff: float
    diff_quantiles: dict[str, float]
    wilcoxon_statistic: float
    wilcoxon_p_value: float
    p99_ratio: float
    p99_ratio_ci_low: float
    p99_ratio_ci_high: float


def latency_quantiles(values: npt.ArrayLike) -> dict[str, float]:
    """p50 / p95 / p99 with numpy 'linear' quantiles."""
    return _quantiles(np.asarray(values, dtype=float), (0.5, 0.95, 0.99), ("p50", "p95", "p99"))


def _bootstrap_p99_ratio(
    p: FloatArray, s: FloatArray, resamples: int, alpha: float, rng: np.random.Generator
) -> tuple[float, float]:
    """Percentile CI of p99(s*) / p99(p*) over ``resamples`` paired resamples.

    A resample's p99 depends only on its top ~1 %, so it is drawn from the tails alone (the
    same distribution as resampling all ``n`` pairs, at a few per cent of the work): of the
    ``n`` draws of a resample, the number that land on the union of the two arms' top
    ``m`` pairs is Binomial(n, u/n), each landing uniformly on one of those ``u`` pairs, and
    every draw elsewhere has a value below the tail's, so the top values of each arm's
    resample are the top values of its draws in its own tail. A resample that drew too
    few there (never seen; the tail holds 3 % where 1 % is needed) is drawn whole instead.
    """
    n = p.size
    h = 0.99 * (n - 1)  # numpy's 'linear' p99: between sorted positions j and j + 1
    j = math.floor(h)
    frac = h - j
    top = n - 1 - j  # the descending rank of position j; rank top - 1 is position j + 1
    m = max(3 * (top + 1) + 30, int(0.03 * n))
    if 2 * m >= n:
        return _bootstrap_p99_ratio_full(p, s, resamples, alpha, rng)
    tail_p = np.argpartition(p, n - m)[n - m:]
    tail_s = np.argpartition(s, n - m)[n - m:]
    union = np.union1d(tail_p, tail_s)
    in_p, in_s = np.isin(union, tail_p), np.isin(union, tail_s)
    pu, su = p[union], s[union]
    landed = rng.binomial(n, union.size / n, size=resamples)

    def p99(values: FloatArray) -> float:
        d = -np.partition(-values, top)[: top + 1]  # the top + 1 largest
        d.sort()
        hi_v, lo_v = d[-top], d[-top - 1]  # descending ranks top - 1 and top
        return float(lo_v + frac * (hi_v - lo_v))

    ratios = np.empty(resamples)
    for b in range(resamples):
        draws = rng.integers(0, union.size, size=int(landed[b]))
        dp, ds = pu[draws[in_p[draws]]], su[draws[in_s[draws]]]
        if dp.size <= top or ds.size <= top:
            idx = rng.integers(0, n, size=n)
            qp, qs = float(np.quantile(p[idx], 0.99)), float(np.quantile(s[idx], 0.99))
        else:
            qp, qs = p99(dp), p99(ds)
        ratios[b] = qs / qp if qp > 0 else math.nan
    return _percentile_ci(ratios, alpha)


def _bootstrap_p99_ratio_full(
    p: FloatArray, s: FloatArray, resamples: int, alpha: float, rng: np.random.Generator
) -> tuple[float, float]:
    """The same CI by resampling all pairs (small ``n``)."""
    n = p.size
    chunk = max(1, min(resamples, 4_000_000 // max(n, 1)))
    ratios: list[FloatArray] = []
    done = 0
    while done < resamples:
        k = min(chunk, resamples - done)
        idx = rng.integers(0, n, size=(k, n))
        qp = np.quantile(p[idx], 0.99, axis=1)
        qs = np.quantile(s[idx], 0.99, axis=1)
        ratios.append(qs / np.where(qp > 0, qp, np.nan))
        done += k
    return _percentile_ci(np.concatenate(ratios), alpha)


def _percentile_ci(r: FloatArray, alpha: float) -> tuple[float, float]:
    r = r[np.isfinite(r)]
    if r.size == 0:
        return (math.nan, math.nan)
    lo, hi = np.quantile(r, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))


def latency_comparison(
    primary_ms: npt.ArrayLike,
    shadow_ms: npt.ArrayLike,
    *,
    min_n_p99: int = MIN_N_P99,
    resamples: int = BOOTSTRAP_RESAMPLES,
    alpha: float = 0.05,
    rng: np.random.Generator | None = None,
) -> LatencyComparison:
    """Per-arm quantiles, paired ``δ = shadow - primary`` and Wilcoxon signed-rank (§6.4).

    The p99 ratio (shadow/primary) and its paired bootstrap CI are computed only when
    ``n ≥ min_n_p99``; ``rng`` defaults to ``numpy.random.default_rng(0)``.
    """
    p, s = np.asarray(primary_ms, dtype=float), np.asarray(shadow_ms, dtype=float)
    if p.shape != s.shape:
        raise ValueError("primary_ms and shadow_ms must be paired (same length)")
    n = int(p.size)
    qp, qs = latency_quantiles(p), latency_quantiles(s)
    if n < min_n_p99:
        qp["p99"] = qs["p99"] = math.nan
    delta = s - p
    diff_q = _quantiles(delta, (0.05, 0.5, 0.95), ("p05", "p50", "p95"))
    nonzero = delta[delta != 0]
    if nonzero.size == 0:
        w_stat, w_p = 0.0, 1.0
    else:
        res = stats.wilcoxon(nonzero, zero_method="wilcox")
        w_stat, w_p = float(res.statistic), float(res.pvalue)
    ratio = lo = hi = math.nan
    if n >= max(min_n_p99, 1):
        ratio = qs["p99"] / qp["p99"] if qp["p99"] > 0 else math.nan
        gen = rng if rng is not None else np.random.default_rng(0)
        lo, hi = _bootstrap_p99_ratio(p, s, resamples, alpha, gen)
    median = float(np.median(delta)) if n else math.nan
    return LatencyComparison(n, qp, qs, median, diff_q, w_stat, w_p, ratio, lo, hi)
