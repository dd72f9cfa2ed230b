"""Pure statistics layer (spec §2 A/B analysis, §6 shadow comparisons).

Inputs are sufficient statistics (:mod:`champion.analysis.summary`), never rows; nothing here
does I/O, reads a clock or owns an RNG. Degenerate data yields neutral results with an
:class:`ErrorCode` instead of exceptions (spec §0.3).

The names below load on first use (PEP 562): a server that imports one submodule (a strategy's
policy, say) does not pay for scipy through all the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_HOME: dict[str, str] = {
    "AgreementResult": "shadow",
    "BayesResult": "bayes",
    "Comparison": "ttest",
    "CupedResult": "cuped",
    "CupedStats": "summary",
    "Effect": "ttest",
    "ErrorCode": "errors",
    "GaussianPrior": "bayes",
    "KSResult": "drift",
    "LatencyComparison": "shadow",
    "MeanStats": "summary",
    "Moments": "summary",
    "PSIResult": "drift",
    "PairedAccuracyResult": "shadow",
    "ProportionStats": "summary",
    "RatioStats": "summary",
    "RegressionDiffResult": "shadow",
    "SRMResult": "srm",
    "SampleSize": "power",
    "SequentialMonitor": "sequential",
    "SequentialResult": "sequential",
    "ShadowHealth": "shadow",
    "bayes_from_comparison": "bayes",
    "beta_binomial_chance_to_win": "bayes",
    "cuped_theta": "cuped",
    "cuped_ttest": "cuped",
    "gaussian_chance_to_win": "bayes",
    "ks_drift": "drift",
    "label_agreement": "shadow",
    "latency_comparison": "shadow",
    "mcnemar_exact": "shadow",
    "minimum_detectable_effect": "power",
    "newcombe_interval": "proportions",
    "paired_accuracy": "shadow",
    "power_two_sided": "power",
    "psi": "drift",
    "psi_categorical": "drift",
    "ratio_ttest": "ratio",
    "regression_diff": "shadow",
    "sample_size_means": "power",
    "sample_size_proportions": "power",
    "sequential_compare": "sequential",
    "sequential_inflation": "power",
    "sequential_test": "sequential",
    "srm_check": "srm",
    "two_proportion_ztest": "proportions",
    "welch_test": "ttest",
    "welch_ttest": "ttest",
    "wilson_interval": "proportions",
}

__all__ = sorted(_HOME)

if TYPE_CHECKING:
    from champion.analysis.bayes import BayesResult as BayesResult
    from champion.analysis.bayes import GaussianPrior as GaussianPrior
    from champion.analysis.bayes import bayes_from_comparison as bayes_from_comparison
    from champion.analysis.bayes import beta_binomial_chance_to_win as beta_binomial_chance_to_win
    from champion.analysis.bayes import gaussian_chance_to_win as gaussian_chance_to_win
    from champion.analysis.cuped import CupedResult as CupedResult
    from champion.analysis.cuped import cuped_theta as cuped_theta
    from champion.analysis.cuped import cuped_ttest as cuped_ttest
    from champion.analysis.drift import KSResult as KSResult
    from champion.analysis.drift import PSIResult as PSIResult
    from champion.analysis.drift import ks_drift as ks_drift
    from champion.analysis.drift import psi as psi
    from champion.analysis.drift import psi_categorical as psi_categorical
    from champion.analysis.errors import ErrorCode as ErrorCode
    from champion.analysis.power import SampleSize as SampleSize
    from champion.analysis.power import minimum_detectable_effect as minimum_detectable_effect
    from champion.analysis.power import power_two_sided as power_two_sided
    from champion.analysis.power import sample_size_means as sample_size_means
    from champion.analysis.power import sample_size_proportions as sample_size_proportions
    from champion.analysis.power import sequential_inflation as sequential_inflation
    from champion.analysis.proportions import newcombe_interval as newcombe_interval
    from champion.analysis.proportions import two_proportion_ztest as two_proportion_ztest
    from champion.analysis.proportions import wilson_interval as wilson_interval
    from champion.analysis.ratio import ratio_ttest as ratio_ttest
    from champion.analysis.sequential import SequentialMonitor as SequentialMonitor
    from champion.analysis.sequential import SequentialResult as SequentialResult
    from champion.analysis.sequential import sequential_compare as sequential_compare
    from champion.analysis.sequential import sequential_test as sequential_test
    from champion.analysis.shadow import AgreementResult as AgreementResult
    from champion.analysis.shadow import LatencyComparison as LatencyComparison
    from champion.analysis.shadow import PairedAccuracyResult as PairedAccuracyResult
    from champion.analysis.shadow import RegressionDiffResult as RegressionDiffResult
    from champion.analysis.shadow import ShadowHealth as ShadowHealth
    from champion.analysis.shadow import label_agreement as label_agreement
    from champion.analysis.shadow import latency_comparison as latency_comparison
    from champion.analysis.shadow import mcnemar_exact as mcnemar_exact
    from champion.analysis.shadow import paired_accuracy as paired_accuracy
    from champion.analysis.shadow import regression_diff as regression_diff
    from champion.analysis.srm import SRMResult as SRMResult
    from champion.analysis.srm import srm_check as srm_check
    from champion.analysis.summary import CupedStats as CupedStats
    from champion.analysis.summary import MeanStats as MeanStats
    from champion.analysis.summary import Moments as Moments
    from champion.analysis.summary import ProportionStats as ProportionStats
    from champion.analysis.summary import RatioStats as RatioStats
    from champion.analysis.ttest import Comparison as Comparison
    from champion.analysis.ttest import Effect as Effect
    from champion.analysis.ttest import welch_test as welch_test
    from champion.analysis.ttest import welch_ttest as welch_ttest


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
