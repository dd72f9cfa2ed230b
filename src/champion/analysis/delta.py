"""Delta-method variances for ratios of means and relative lifts (spec §2.1, §2.3).

These are the gbstats ``variance_of_ratios`` formulas; they work on *variances of means*
(``s**2 / n``), so they serve ratio metrics, relative lifts and CUPED alike.
"""

from __future__ import annotations

from champion.analysis.summary import Moments


def ratio_variance(
    mean_num: float,
    var_num: float,
    mean_den: float,
    var_den: float,
    cov: float = 0.0,
) -> float:
    """Delta-method variance of ``mean_num / mean_den`` (spec §2.3).

    ``Var ≈ var_num/d**2 + var_den*m**2/d**4 - 2*cov*m/d**3`` where the inputs are the
    variances (and covariance) of the two *estimators*. Returns 0 when ``mean_den == 0``.
    """
    if mean_den == 0:
        return 0.0
    d2 = mean_den * mean_den
    return (
        var_num / d2
        + var_den * mean_num * mean_num / (d2 * d2)
        - 2.0 * cov * mean_num / (d2 * mean_den)
    )


def relative_lift(control_mean: float, treatment_mean: float) -> float:
    """Relative lift ``(m_T - m_C)/|m_C|`` (spec §2.1; |m_C| keeps the sign for negative baselines).

    Returns ``nan`` when the baseline is 0.
    """
    if control_mean == 0:
        return float("nan")
    return (treatment_mean - control_mean) / abs(control_mean)


def relative_lift_variance(control: Moments, treatment: Moments) -> float:
    """``Var(L) = s²_T/(m_C² n_T) + s²_C m_T²/(m_C⁴ n_C)`` for independent arms (spec §2.1).

    Returns 0 when the baseline mean is 0 or an arm is empty.
    """
    if control.mean == 0 or control.n <= 0 or treatment.n <= 0:
        return 0.0
    return ratio_variance(
        treatment.mean,
        treatment.variance / treatment.n,
        control.mean,
        control.variance / control.n,
    )
