"""Pure statistics layer (spec §2 A/B analysis, §6 shadow comparisons).

Inputs are sufficient statistics (:mod:`champion.analysis.summary`), never rows; nothing here
does I/O, reads a clock or owns an RNG. Degenerate data yields neutral results with an
:class:`ErrorCode` instead of exceptions (spec §0.3).
"""

from champion.analysis.bayes import (
    BayesResult,
    GaussianPrior,
    bayes_from_comparison,
    beta_binomial_chance_to_win,
    gaussian_chance_to_win,
)
from champion.analysis.cuped import CupedResult, cuped_theta, cuped_ttest
from champion.analysis.drift import KSResult, PSIResult, ks_drift, psi, psi_categorical
from champion.analysis.errors import ErrorCode
from champion.analysis.power import (
    SampleSize,
    minimum_detectable_effect,
    power_two_sided,
    sample_size_means,
    sample_size_proportions,
    sequential_inflation,
)
from champion.analysis.proportions import newcombe_interval, two_proportion_ztest, wilson_interval
from champion.analysis.ratio import ratio_ttest
from champion.analysis.sequential import (
    SequentialMonitor,
    SequentialResult,
    sequential_compare,
    sequential_test,
)
from champion.analysis.shadow import (
    AgreementResult,
    LatencyComparison,
    PairedAccuracyResult,
    RegressionDiffResult,
    ShadowHealth,
    label_agreement,
    latency_comparison,
    mcnemar_exact,
    paired_accuracy,
    regression_diff,
)
from champion.analysis.srm import SRMResult, srm_check
from champion.analysis.summary import CupedStats, MeanStats, Moments, ProportionStats, RatioStats
from champion.analysis.ttest import Comparison, Effect, welch_test, welch_ttest

__all__ = [
    "AgreementResult",
    "BayesResult",
    "Comparison",
    "CupedResult",
    "CupedStats",
    "Effect",
    "ErrorCode",
    "GaussianPrior",
    "KSResult",
    "LatencyComparison",
    "MeanStats",
    "Moments",
    "PSIResult",
    "PairedAccuracyResult",
    "ProportionStats",
    "RatioStats",
    "RegressionDiffResult",
    "SRMResult",
    "SampleSize",
    "SequentialMonitor",
    "SequentialResult",
    "ShadowHealth",
    "bayes_from_comparison",
    "beta_binomial_chance_to_win",
    "cuped_theta",
    "cuped_ttest",
    "gaussian_chance_to_win",
    "ks_drift",
    "label_agreement",
    "latency_comparison",
    "mcnemar_exact",
    "minimum_detectable_effect",
    "newcombe_interval",
    "paired_accuracy",
    "power_two_sided",
    "psi",
    "psi_categorical",
    "ratio_ttest",
    "regression_diff",
    "sample_size_means",
    "sample_size_proportions",
    "sequential_compare",
    "sequential_inflation",
    "sequential_test",
    "srm_check",
    "two_proportion_ztest",
    "welch_test",
    "welch_ttest",
    "wilson_interval",
]
