"""Sufficient statistics: the only inputs of the A/B analysis layer (spec §0.2).

All objects are immutable and mergeable (``a + b`` or :meth:`merge`), so they can be
accumulated per shard / per time window and combined later. Variances follow the
gbstats conventions of §0.2: sample variance ``(sum_sq - sum**2/n)/(n-1)`` for means
(0 when ``n <= 1``) and the population form ``p(1-p)`` for proportions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Self

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def _check_n(n: int) -> None:
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")


def _as_array(values: Iterable[float]) -> FloatArray:
    if isinstance(values, np.ndarray):
        return values.astype(float, copy=False).ravel()
    return np.asarray(list(values), dtype=float)


def _sample_var(n: int, s: float, ss: float) -> float:
    if n <= 1:
        return 0.0
    return max((ss - s * s / n) / (n - 1), 0.0)


def _sample_cov(n: int, sx: float, sy: float, sxy: float) -> float:
    if n <= 1:
        return 0.0
    return (sxy - sx * sy / n) / (n - 1)


@dataclass(frozen=True)
class Moments:
    """Per-arm moments fed to the Welch machinery: mean, per-unit variance and units.

    For a ratio metric the "per-unit variance" is ``n * Var(R)`` (spec §2.3); for CUPED it is
    the adjusted variance (spec §2.5).
    """

    mean: float
    variance: float
    n: int


@dataclass(frozen=True)
class MeanStats:
    """Mean metric sufficient statistics ``(n, sum, sum_sq)`` (spec §0.2)."""

    n: int = 0
    sum: float = 0.0
    sum_sq: float = 0.0

    def __post_init__(self) -> None:
        _check_n(self.n)

    @classmethod
    def from_values(cls, values: Iterable[float]) -> Self:
        """Build from raw per-unit values (convenience for tests and offline use)."""
        x = _as_array(values)
        return cls(n=int(x.size), sum=float(x.sum()), sum_sq=float((x * x).sum()))

    @classmethod
    def from_moments(cls, n: int, mean: float, sd: float) -> Self:
        """Build from a published summary ``(n, mean, sample sd)``."""
        s = n * mean
        ss = sd * sd * (n - 1) + s * s / n if n > 0 else 0.0
        return cls(n=n, sum=s, sum_sq=ss)

    def add(self, value: float) -> Self:
        """Return the statistics with one more observation."""
        return type(self)(self.n + 1, self.sum + value, self.sum_sq + value * value)

    def merge(self, other: MeanStats) -> Self:
        """Combine two disjoint samples."""
        return type(self)(self.n + other.n, self.sum + other.sum, self.sum_sq + other.sum_sq)

    def __add__(self, other: MeanStats) -> Self:
        return self.merge(other)

    @property
    def mean(self) -> float:
        """``sum / n`` (0 when empty)."""
        return self.sum / self.n if self.n > 0 else 0.0

    @property
    def variance(self) -> float:
        """Sample variance; 0 when ``n <= 1`` (clamped at 0 against round-off)."""
        return _sample_var(self.n, self.sum, self.sum_sq)

    @property
    def sd(self) -> float:
        """Sample standard deviation."""
        return math.sqrt(self.variance)

    def moments(self) -> Moments:
        """Mean, per-unit variance and n."""
        return Moments(self.mean, self.variance, self.n)


@dataclass(frozen=True)
class ProportionStats:
    """Proportion metric sufficient statistics ``(n, conversions)`` (spec §0.2)."""

    n: int = 0
    conversions: int = 0

    def __post_init__(self) -> None:
        _check_n(self.n)
        if not 0 <= self.conversions <= self.n:
            raise ValueError(f"conversions must be in [0, n], got {self.conversions}/{self.n}")

    @classmethod
    def from_outcomes(cls, outcomes: Iterable[bool | int]) -> Self:
        """Build from per-unit 0/1 outcomes."""
        x = np.asarray(list(outcomes), dtype=bool)
        return cls(n=int(x.size), conversions=int(x.sum()))

    def merge(self, other: ProportionStats) -> Self:
        """Combine two disjoint samples."""
        return type(self)(self.n + other.n, self.conversions + other.conversions)

    def __add__(self, other: ProportionStats) -> Self:
        return self.merge(other)

    @property
    def mean(self) -> float:
        """Conversion rate ``p`` (0 when empty)."""
        return self.conversions / self.n if self.n > 0 else 0.0

    @property
    def variance(self) -> float:
        """Population variance ``p(1-p)`` (gbstats convention)."""
        p = self.mean
        return p * (1.0 - p)

    def moments(self) -> Moments:
        """Mean, per-unit variance and n."""
        return Moments(self.mean, self.variance, self.n)


@dataclass(frozen=True)
class RatioStats:
    """Ratio metric sufficient statistics (spec §0.2, §2.3).

    ``m`` is the numerator and ``d`` the denominator of each unit (e.g. clicks and sessions
    per user); ``md_sum`` is the sum of per-unit products.
    """

    n: int = 0
    m_sum: float = 0.0
    m_sum_sq: float = 0.0
    d_sum: float = 0.0
    d_sum_sq: float = 0.0
    md_sum: float = 0.0

    def __post_init__(self) -> None:
        _check_n(self.n)

    @classmethod
    def from_values(cls, numerators: Iterable[float], denominators: Iterable[float]) -> Self:
        """Build from paired per-unit numerator and denominator values."""
        m, d = _as_array(numerators), _as_array(denominators)
        if m.shape != d.shape:
            raise ValueError("numerators and denominators must have the same length")
        return cls(
            n=int(m.size),
            m_sum=float(m.sum()),
            m_sum_sq=float((m * m).sum()),
            d_sum=float(d.sum()),
            d_sum_sq=float((d * d).sum()),
            md_sum=float((m * d).sum()),
        )

    def merge(self, other: RatioStats) -> Self:
        """Combine two disjoint samples."""
        return type(self)(
            self.n + other.n,
            self.m_sum + other.m_sum,
            self.m_sum_sq + other.m_sum_sq,
            self.d_sum + other.d_sum,
            self.d_sum_sq + other.d_sum_sq,
            self.md_sum + other.md_sum,
        )

    def __add__(self, other: RatioStats) -> Self:
        return self.merge(other)

    @property
    def numerator(self) -> MeanStats:
        """Numerator statistics."""
        return MeanStats(self.n, self.m_sum, self.m_sum_sq)

    @property
    def denominator(self) -> MeanStats:
        """Denominator statistics."""
        return MeanStats(self.n, self.d_sum, self.d_sum_sq)

    @property
    def covariance(self) -> float:
        """Sample covariance ``s_MD`` of numerator and denominator."""
        return _sample_cov(self.n, self.m_sum, self.d_sum, self.md_sum)


@dataclass(frozen=True)
class CupedStats:
    """CUPED sufficient statistics: post metric ``y`` and pre-period covariate ``x`` (§0.2, §2.5).

    Units without pre-period data contribute ``x = 0``.
    """

    n: int = 0
    y_sum: float = 0.0
    y_sum_sq: float = 0.0
    x_sum: float = 0.0
    x_sum_sq: float = 0.0
    xy_sum: float = 0.0

    def __post_init__(self) -> None:
        _check_n(self.n)

    @classmethod
    def from_values(cls, post: Iterable[float], pre: Iterable[float]) -> Self:
        """Build from paired per-unit post-period and pre-period values."""
        y, x = _as_array(post), _as_array(pre)
        if y.shape != x.shape:
            raise ValueError("post and pre must have the same length")
        return cls(
            n=int(y.size),
            y_sum=float(y.sum()),
            y_sum_sq=float((y * y).sum()),
            x_sum=float(x.sum()),
            x_sum_sq=float((x * x).sum()),
            xy_sum=float((x * y).sum()),
        )

    def merge(self, other: CupedStats) -> Self:
        """Combine two disjoint samples."""
        return type(self)(
            self.n + other.n,
            self.y_sum + other.y_sum,
            self.y_sum_sq + other.y_sum_sq,
            self.x_sum + other.x_sum,
            self.x_sum_sq + other.x_sum_sq,
            self.xy_sum + other.xy_sum,
        )

    def __add__(self, other: CupedStats) -> Self:
        return self.merge(other)

    @property
    def post(self) -> MeanStats:
        """Post-period metric statistics."""
        return MeanStats(self.n, self.y_sum, self.y_sum_sq)

    @property
    def pre(self) -> MeanStats:
        """Pre-period covariate statistics."""
        return MeanStats(self.n, self.x_sum, self.x_sum_sq)

    @property
    def covariance(self) -> float:
        """Sample covariance ``s_XY`` of covariate and metric."""
        return _sample_cov(self.n, self.x_sum, self.y_sum, self.xy_sum)
