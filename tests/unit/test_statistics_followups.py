"""Statistics follow-ups of issue 14: Newcombe/Wilson where Wald is unreliable, a matched
p-value/interval pair, and multiple-testing correction across variants and metrics (spec
§2.2, §2.9). Vectors are copied here from shared/spec/ALGORITHMS.md where it has them; the
others are stated with how they were derived."""

from __future__ import annotations

import pytest

from champion.analysis.multiple import adjust, benjamini_hochberg, holm
from champion.analysis.proportions import (
    newcombe_interval,
    newcombe_p_value,
    two_proportion_ztest,
)
from champion.analysis.report import ArmData, MetricSums, ab_report
from champion.analysis.summary import ProportionStats

LATENCY = {"p50": 12.0, "p90": 20.0, "p99": 35.0, "mean": 13.5}


def arm(name: str, n: int, metrics: dict[str, MetricSums]) -> ArmData:
    return ArmData(name=name, weight=1.0, requests=n, units=n, errors=0,
                   latency_ms=dict(LATENCY), metrics=metrics)


def conv(n: int, k: int) -> MetricSums:
    return MetricSums(n=n, sum=float(k), sum_sq=float(k), binary=True)


# ----------------------------------------------------------- spec §2.2 vectors, kept


def test_spec_vector_pooled_p_and_wald_interval_are_unchanged_by_default():
    # spec §2.2: 200/2000 vs 250/2000: z = 2.501955, p = 0.012351, Wald CI (0.005431, 0.044569)
    r = two_proportion_ztest(ProportionStats(2000, 200), ProportionStats(2000, 250)).absolute
    assert r.statistic == pytest.approx(2.501955, abs=1e-6)
    assert r.p_value == pytest.approx(0.012351, abs=1e-6)
    assert (r.ci_low, r.ci_high) == pytest.approx((0.005431, 0.044569), abs=1e-6)


def test_spec_vector_zero_conversion_arm_wald_interval():
    # spec §2.2: 0/1000 vs 5/1000: z = 2.238868, p = 0.025164, CI (0.000628, 0.009372)
    r = two_proportion_ztest(ProportionStats(1000, 0), ProportionStats(1000, 5)).absolute
    assert r.p_value == pytest.approx(0.025164, abs=1e-6)
    assert (r.ci_low, r.ci_high) == pytest.approx((0.000628, 0.009372), abs=1e-6)


# ----------------------------------------------------------- matched pairs


def _excludes_zero(lo: float, hi: float) -> bool:
    return lo > 0 or hi < 0


@pytest.mark.parametrize("c, t", [((2000, 200), (2000, 250)), ((4000, 400), (400, 53)),
                                  ((1000, 0), (1000, 5)), ((80, 48), (70, 56))])
@pytest.mark.parametrize("method", ["wald", "newcombe"])
def test_the_matched_p_value_is_the_level_where_the_interval_reaches_zero(c, t, method):
    control, treatment = ProportionStats(*c), ProportionStats(*t)
    r = two_proportion_ztest(control, treatment, ci_method=method, matched=True).absolute
    # at alpha = p the interval has 0 at one end; a little either side, it does or does not
    at = two_proportion_ztest(control, treatment, ci_method=method, matched=True,
                              alpha=r.p_value).absolute
    assert min(abs(at.ci_low), abs(at.ci_high)) == pytest.approx(0.0, abs=1e-9)
    for alpha in (r.p_value * 0.9, r.p_value * 1.1):
        x = two_proportion_ztest(control, treatment, ci_method=method, matched=True,
                                 alpha=alpha).absolute
        assert _excludes_zero(x.ci_low, x.ci_high) == (r.p_value < alpha)


def test_pooled_p_and_wald_interval_disagree_where_the_matched_pair_does_not():
    # 400/4000 vs 53/400 (found by search): pooled p = 0.0414 < 0.05, yet the Wald 95 %
    # interval (-0.0020, 0.0670) includes 0.
    control, treatment = ProportionStats(4000, 400), ProportionStats(400, 53)
    default = two_proportion_ztest(control, treatment).absolute
    assert default.p_value == pytest.approx(0.041417, abs=1e-6)
    assert default.ci_low < 0 < default.ci_high
    matched = two_proportion_ztest(control, treatment, matched=True).absolute
    assert matched.p_value > 0.05 and not matched.significant
    report = ab_report([arm("a", 4000, {"c": conv(4000, 400)}),
                        arm("b", 400, {"c": conv(400, 53)})], "a", srm_threshold=1e-300)
    comp = next(x for x in report["comparisons"] if x["metric"] == "c")
    assert comp["test"]["method"] == "wald"
    assert comp["p_value"] == pytest.approx(matched.p_value)
    assert comp["absolute"]["ci_low"] < 0 < comp["absolute"]["ci_high"]
    assert comp["significant"] is False


def test_newcombe_literature_vector_and_its_matched_p_value():
    # Newcombe (1998), Stat. Med. 17:873, example (a): 56/70 - 48/80, method 10:
    # (0.0524, 0.3339)
    control, treatment = ProportionStats(80, 48), ProportionStats(70, 56)
    assert newcombe_interval(control, treatment) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    p = newcombe_p_value(control, treatment)
    assert 0 < p < 0.05
    assert newcombe_interval(control, treatment, p)[0] == pytest.approx(0.0, abs=1e-9)
    assert newcombe_p_value(ProportionStats(100, 10), ProportionStats(100, 10)) == 1.0


# ----------------------------------------------------------- Newcombe where Wald fails


def test_the_report_uses_newcombe_for_small_counts_and_zero_conversion_arms():
    report = ab_report([arm("a", 1000, {"c": conv(1000, 0)}),
                        arm("b", 1000, {"c": conv(1000, 5)})], "a")
    comp = next(x for x in report["comparisons"] if x["metric"] == "c")
    assert comp["test"]["method"] == "newcombe"
    assert "Newcombe" in comp["test"]["interval"]
    lo, hi = newcombe_interval(ProportionStats(1000, 0), ProportionStats(1000, 5))
    assert (comp["absolute"]["ci_low"], comp["absolute"]["ci_high"]) == pytest.approx((lo, hi))
    # Wald's interval for these counts is (0.000628, 0.009372) (spec §2.2): too narrow
    assert lo < 0.000628 and hi > 0.009372
    assert comp["p_value"] == pytest.approx(newcombe_p_value(ProportionStats(1000, 0),
                                                             ProportionStats(1000, 5)))
    large = ab_report([arm("a", 2000, {"c": conv(2000, 200)}),
                       arm("b", 2000, {"c": conv(2000, 250)})], "a")
    assert next(x for x in large["comparisons"] if x["metric"] == "c")["test"]["method"] == (
        "wald")


# ----------------------------------------------------------- multiple testing


# R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") -> 0.03 0.06 0.06 0.02
#    p.adjust(c(0.01, 0.04, 0.03, 0.005), "BH")   -> 0.02 0.04 0.04 0.02
# (by hand: Holm sorts 0.005 0.01 0.03 0.04 and takes the running max of 4p, 3p, 2p, 1p;
# BH the running min from the top of 4p/1, 4p/2, 4p/3, 4p/4)
P = [0.01, 0.04, 0.03, 0.005]


def test_holm_vector():
    assert holm(P) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_benjamini_hochberg_vector():
    assert benjamini_hochberg(P) == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_corrections_cap_at_one_and_keep_a_single_test():
    assert holm([0.6, 0.7]) == [1.0, 1.0]
    assert benjamini_hochberg([0.6, 0.7]) == pytest.approx([0.7, 0.7])
    assert holm([0.03]) == [0.03] and benjamini_hochberg([0.03]) == [0.03]
    assert adjust(P, "none") == P
    with pytest.raises(ValueError):
        adjust(P, "bonferroni")  # type: ignore[arg-type]


def _three_arms(correction: str = "holm") -> dict:
    arms = [arm("a", 20_000, {"m1": conv(20_000, 2000), "m2": conv(20_000, 4000)}),
            arm("b", 20_000, {"m1": conv(20_000, 2100), "m2": conv(20_000, 4050)}),
            arm("c", 20_000, {"m1": conv(20_000, 2080), "m2": conv(20_000, 4000)})]
    return ab_report(arms, "a", correction=correction)  # type: ignore[arg-type]


def test_the_report_corrects_across_candidates_and_metrics_and_says_how():
    report = _three_arms()
    mt = report["multiple_testing"]
    assert mt["method"] == "holm" and "Holm" in mt["label"]
    assert sorted(map(tuple, mt["family"])) == [("b", "m1"), ("b", "m2"), ("c", "m1"),
                                                ("c", "m2")]
    assert mt["size"] == 4 and "error_rate" in mt["excluded"]
    family = [c for c in report["comparisons"] if c["metric"] in ("m1", "m2")]
    expected = holm([c["p_value"] for c in family])
    assert [c["p_value_adjusted"] for c in family] == pytest.approx(expected)
    seq_expected = holm([c["sequential"]["p_value"] for c in family])
    assert [c["sequential"]["p_value_adjusted"] for c in family] == pytest.approx(seq_expected)
    for c in family:
        assert c["p_value_adjusted"] >= c["p_value"]
        assert c["significant_adjusted"] == (c["p_value_adjusted"] < 0.05)
    outside = [c for c in report["comparisons"] if c["metric"] == "error_rate"]
    assert outside and all(c["p_value_adjusted"] is None for c in outside)
    bh = _three_arms("bh")
    assert bh["multiple_testing"]["method"] == "bh"
    assert [c["p_value_adjusted"] for c in bh["comparisons"] if c["metric"] in ("m1", "m2")
            ] == pytest.approx(benjamini_hochberg([c["p_value"] for c in family]))


def test_guardrails_are_not_in_the_family():
    from champion.analysis.report import Guardrail

    arms = [arm("a", 5000, {"m1": conv(5000, 500), "g": conv(5000, 50)}),
            arm("b", 5000, {"m1": conv(5000, 560), "g": conv(5000, 52)})]
    report = ab_report(arms, "a", primary="m1", guardrails=[Guardrail("g", "increase")])
    assert report["multiple_testing"]["family"] == [["b", "m1"]]
    g = next(c for c in report["comparisons"] if c["metric"] == "g")
    assert g["p_value_adjusted"] is None
