"""Always-valid inference that survives continuous peeking (spec §2.6).

GrowthBook's asymptotic confidence sequence (Waudby-Smith et al. 2103.06476, eqs. 9/155/161)
with tuning parameter ``N*`` (expected total sample size at decision, default 5000):

* ``rho = sqrt((-2 ln alpha + ln(-2 ln alpha + 1)) / N*)``
* half-width ``= sqrt(s²)·sqrt(2(nrho²+1)/(n²rho²)·ln(sqrt(nrho²+1)/alpha))``, ``s² = SE²·n``
* p-value ``= min(1, 1/E)``, ``E = exp(rho² st²/(2(nrho²+1)))/sqrt(nrho²+1)`` with
  ``st² = (est-θ0)²·n/SE²``

The p-value is the normal-mixture mSPRT of Johari et al. (2017) with ``τ² = rho² s²``; the
interval equals Eppo's published bound with ``rho_E = 1/rho²``. ``p < alpha`` exactly when the
sequence excludes ``θ0``. :class:`SequentialMonitor` keeps the running minimum of p, the
strict always-valid p-value when results are recomputed over time. Keep ``N*`` fixed for
the life of an experiment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from champion.analysis.errors import NEUTRAL_ESTIMATE, NEUTRAL_P_VALUE, ErrorCode
from champion.analysis.summary import MeanStats, ProportionStats

DEFAULT_N_STAR = 5000.0
EPPO_N_STAR = 10000.0
DEFAULT_ALPHA = 0.05


def sequential_rho(alpha: float = DEFAULT_ALPHA, n_star: float = DEFAULT_N_STAR) -> float:
    """Mixing parameter ``rho`` for tuning size ``N*`` (Waudby-Smith eq. 161)."""
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    if n_star <= 0:
        raise ValueError("n_star must be > 0")
    la = -2.0 * math.log(alpha)
    return math.sqrt((la + math.log(la + 1.0)) / n_star)


def cs_half_width(
    se: float, n: float, alpha: float = DEFAULT_ALPHA, n_star: float = DEFAULT_N_STAR
) -> float:
    """Two-sided confidence-sequence half-width for an estimate with standard error ``se``.

    ``n`` is the total number of units (both arms).
    """
    rho2 = sequential_rho(alpha, n_star) ** 2
    s2 = se * se * n
    tr = n * rho2 + 1.0
    return math.sqrt(s2) * math.sqrt(2.0 * tr / (n * n * rho2) * math.log(math.sqrt(tr) / alpha))


def cs_half_width_one_sided(
    se: float, n: float, alpha: float = DEFAULT_ALPHA, n_star: float = DEFAULT_N_STAR
) -> float:
    """One-sided confidence-sequence half-width; ``rho`` is computed at ``2alpha`` (spec §2.6)."""
    if not 0 < alpha < 0.5:
        raise ValueError("ALPHA_GREATER_THAN_0.5_FOR_SEQUENTIAL_ONE_SIDED_TEST")
    rho2 = sequential_rho(2.0 * alpha, n_star) ** 2
    s2 = se * se * n
    tr = n * rho2 + 1.0
    return math.sqrt(s2 * 2.0 * tr / (n * n * rho2) * math.log(1.0 + math.sqrt(tr) / (2.0 * alpha)))


def sequential_p_value(
    estimate: float,
    se: float,
    n: float,
    alpha: float = DEFAULT_ALPHA,
    n_star: float = DEFAULT_N_STAR,
    null: float = 0.0,
) -> float:
    """Always-valid two-sided p-value ``min(1, 1/E)`` (computed in log space)."""
    rho2 = sequential_rho(alpha, n_star) ** 2
    tr = n * rho2 + 1.0
    st2 = (estimate - null) ** 2 * n / (se * se)
    log_e = rho2 * st2 / (2.0 * tr) - 0.5 * math.log(tr)
    return 1.0 if log_e <= 0 else math.exp(-log_e)


def msprt_likelihood_ratio(
    estimate: float, variance: float, tau2: float, null: float = 0.0
) -> float:
    """Normal-mixture mSPRT statistic ``Λ`` of Johari et al. (2017); ``p = min(1, 1/Λ)``.

    ``variance`` is ``SE²`` of the estimate and ``tau2`` the mixing variance (``rho²·s²``).
    """
    v = variance
    shift = (estimate - null) ** 2
    return math.exp(0.5 * math.log(v / (v + tau2)) + tau2 * shift / (2.0 * v * (v + tau2)))


def eppo_rho(n_tune: float, alpha: float = DEFAULT_ALPHA) -> float:
    """Eppo's ``rho_E = N_tune/(ln ln(e/alpha²) - 2 ln alpha)``; equals ``1/rho²`` of GrowthBook."""
    return n_tune / (math.log(math.log(math.e / alpha**2)) - 2.0 * math.log(alpha))


def eppo_half_width(
    se: float, n: float, alpha: float = DEFAULT_ALPHA, n_tune: float = EPPO_N_STAR
) -> float:
    """Eppo's bound ``se·sqrt((t+rho_E)·ln((t+rho_E)/(rho_E·alpha²)))/sqrt(t)``.

    Howard et al. (2021) eq. 14 with ``t = n``; identical to :func:`cs_half_width` when
    ``n_tune`` equals ``N*``.
    """
    r = eppo_rho(n_tune, alpha)
    return se * math.sqrt((n + r) * math.log((n + r) / (r * alpha * alpha))) / math.sqrt(n)


@dataclass(frozen=True)
class SequentialResult:
    """Always-valid result for one look at the data."""

    estimate: float
    se: float
    n: int
    ci_low: float
    ci_high: float
    p_value: float
    alpha: float
    n_star: float
    error: ErrorCode | None = None

    @property
    def half_width(self) -> float:
        """Half-width of the confidence sequence."""
        return (self.ci_high - self.ci_low) / 2.0

    @property
    def ci(self) -> tuple[float, float]:
        """The (1 - alpha) confidence sequence at this look."""
        return (self.ci_low, self.ci_high)

    @property
    def significant(self) -> bool:
        """True when valid and ``p < alpha`` (equivalently the sequence excludes the null)."""
        return self.error is None and self.p_value < self.alpha


def sequential_test(
    estimate: float,
    se: float,
    n: int,
    *,
    alpha: float = DEFAULT_ALPHA,
    n_star: float = DEFAULT_N_STAR,
    null: float = 0.0,
) -> SequentialResult:
    """Confidence sequence and always-valid p-value for ``estimate ± se`` at ``n`` total units.

    ``n = 0`` or ``se <= 0`` returns the neutral output of spec §0.3.
    """
    if n <= 0:
        return _neutral(n, alpha, n_star, ErrorCode.INSUFFICIENT_UNITS)
    if not se > 0 or not math.isfinite(se):
        return _neutral(n, alpha, n_star, ErrorCode.ZERO_NEGATIVE_VARIANCE)
    half = cs_half_width(se, n, alpha, n_star)
    p = sequential_p_value(estimate, se, n, alpha, n_star, null)
    return SequentialResult(estimate, se, n, estimate - half, estimate + half, p, alpha, n_star)


def _neutral(n: int, alpha: float, n_star: float, error: ErrorCode) -> SequentialResult:
    e = NEUTRAL_ESTIMATE
    return SequentialResult(e, 0.0, n, e, e, NEUTRAL_P_VALUE, alpha, n_star, error)


def _diff_and_se(
    m_c: float, v_c: float, n_c: int, m_t: float, v_t: float, n_t: int, relative: bool
) -> tuple[float, float] | ErrorCode:
    if n_c <= 1 or n_t <= 1:
        return ErrorCode.INSUFFICIENT_UNITS
    if relative:
        if m_c == 0:
            return ErrorCode.BASELINE_ZERO
        var = v_t / (m_c * m_c * n_t) + v_c * m_t * m_t / (m_c**4 * n_c)
        return (m_t - m_c) / abs(m_c), math.sqrt(max(var, 0.0))
    return m_t - m_c, math.sqrt(max(v_c / n_c + v_t / n_t, 0.0))


def sequential_compare(
    control: MeanStats | ProportionStats,
    treatment: MeanStats | ProportionStats,
    *,
    alpha: float = DEFAULT_ALPHA,
    n_star: float = DEFAULT_N_STAR,
    relative: bool = False,
    null: float = 0.0,
) -> SequentialResult:
    """Sequential test of treatment vs control (absolute or delta-method relative effect)."""
    n = control.n + treatment.n
    got = _diff_and_se(
        control.mean,
        control.variance,
        control.n,
        treatment.mean,
        treatment.variance,
        treatment.n,
        relative,
    )
    if isinstance(got, ErrorCode):
        return _neutral(n, alpha, n_star, got)
    est, se = got
    return sequential_test(est, se, n, alpha=alpha, n_star=n_star, null=null)


@dataclass
class SequentialMonitor:
    """Running-minimum always-valid p-value across repeated looks (spec §2.6).

    Feed each look's :class:`SequentialResult`; the returned result carries
    ``p_t = min(p_{t-1}, p_t)``. Pure state: no clock, no I/O.
    """

    alpha: float = DEFAULT_ALPHA
    min_p_value: float = 1.0
    looks: int = 0
    stopped_at: int | None = field(default=None)

    def update(self, result: SequentialResult) -> SequentialResult:
        """Record one look and return it with the running-minimum p-value."""
        self.looks += 1
        if result.error is None:
            self.min_p_value = min(self.min_p_value, result.p_value)
        if self.stopped_at is None and self.min_p_value < self.alpha:
            self.stopped_at = result.n
        return SequentialResult(
            result.estimate,
            result.se,
            result.n,
            result.ci_low,
            result.ci_high,
            self.min_p_value,
            result.alpha,
            result.n_star,
            result.error,
        )

    @property
    def rejected(self) -> bool:
        """True once any look had an always-valid p below alpha."""
        return self.min_p_value < self.alpha
