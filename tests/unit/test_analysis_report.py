"""JSON reports for A/B and shadow experiments (spec §2, §6)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from champion.analysis.report import (
    ArmData,
    Guardrail,
    MetricSums,
    ShadowPair,
    ab_report,
    shadow_report,
)

LATENCY = {"p50": 12.0, "p90": 20.0, "p99": 35.0, "mean": 13.5}


def conversions(n: int, k: int) -> MetricSums:
    return MetricSums(n=n, sum=float(k), sum_sq=float(k), binary=True)


def arm(
    name: str,
    units: int,
    metrics: dict[str, MetricSums],
    *,
    weight: float = 1.0,
    errors: int = 0,
    requests: int | None = None,
) -> ArmData:
    return ArmData(
        name=name,
        weight=weight,
        requests=units if requests is None else requests,
        units=units,
        errors=errors,
        latency_ms=dict(LATENCY),
        metrics=metrics,
    )


def comparison(report: dict[str, Any], arm_name: str, metric: str) -> dict[str, Any]:
    (found,) = [c for c in report["comparisons"] if c["arm"] == arm_name and c["metric"] == metric]
    return found


def assert_json_safe(report: dict[str, Any]) -> None:
    assert json.loads(json.dumps(report, allow_nan=False)) == report


def conversion_test(k_control: int, k_candidate: int, n: int = 20_000, **kw: Any) -> dict[str, Any]:
    arms = [
        arm("control", n, {"conversion": conversions(n, k_control)}),
        arm("candidate", n, {"conversion": conversions(n, k_candidate)}),
    ]
    kw.setdefault("primary", "conversion")
    return ab_report(arms, "control", **kw)


# --------------------------------------------------------------------------- A/B


def test_three_point_conversion_lift_with_20k_units_is_significant_and_wins() -> None:
    report = conversion_test(2000, 2600)  # 10% -> 13%
    c = comparison(report, "candidate", "conversion")
    assert c["type"] == "proportion"
    assert c["absolute"]["estimate"] == pytest.approx(0.03)
    assert c["absolute"]["ci_low"] < 0.03 < c["absolute"]["ci_high"]
    assert c["relative"]["estimate"] == pytest.approx(0.30)
    assert c["relative"]["ci_low"] > 0
    assert c["significant"] and c["p_value"] < 1e-10
    assert c["sequential"]["significant"] and c["sequential"]["absolute"]["ci_low"] > 0
    assert c["chance_to_beat_control"] > 0.999
    assert report["srm"]["fired"] is False
    assert report["decision"]["winner"] == "candidate"
    assert report["decision"]["code"] == "winner"
    assert_json_safe(report)


def test_aa_test_is_not_significant_and_has_no_winner() -> None:
    report = conversion_test(2000, 2010)
    c = comparison(report, "candidate", "conversion")
    assert not c["significant"] and not c["sequential"]["significant"]
    assert c["p_value"] > 0.5
    assert c["absolute"]["ci_low"] < 0 < c["absolute"]["ci_high"]
    assert 0.3 < c["chance_to_beat_control"] < 0.8
    assert report["decision"]["winner"] is None
    assert report["decision"]["reason"].startswith("not yet significant")


def test_srm_fires_for_90_10_config_observing_50_50_and_decision_is_withheld() -> None:
    n = 20_000
    arms = [
        arm("control", n, {"conversion": conversions(n, 2000)}, weight=90),
        arm("candidate", n, {"conversion": conversions(n, 2600)}, weight=10),
    ]
    report = ab_report(arms, "control", primary="conversion")
    srm = report["srm"]
    assert srm["fired"] is True and srm["p_value"] < 1e-100
    assert srm["expected"] == {"control": pytest.approx(36_000), "candidate": pytest.approx(4_000)}
    assert srm["observed"] == {"control": n, "candidate": n}
    assert srm["message"].startswith("SAMPLE RATIO MISMATCH")
    assert "do not trust these results" in srm["message"]
    assert [a["weight"] for a in report["arms"]] == pytest.approx([0.9, 0.1])
    assert comparison(report, "candidate", "conversion")["sequential"]["significant"]
    assert report["decision"]["winner"] is None
    assert report["decision"]["reason"].startswith("SRM fired")


def test_srm_counts_requests_when_no_units_are_recorded() -> None:
    arms = [arm("a", 0, {}, requests=5000), arm("b", 0, {}, requests=5100)]
    srm = ab_report(arms, "a")["srm"]
    assert srm["basis"] == "requests" and srm["fired"] is False
    assert srm["message"].startswith("No sample ratio mismatch")


@pytest.mark.parametrize(
    ("guardrail", "candidate_errors", "revenue_shift"),
    [(Guardrail("error_rate", bad="increase"), 300, 0.0), (Guardrail("revenue"), 0, -2.0)],
    ids=["error_rate_increase", "revenue_decrease"],
)
def test_significantly_worse_guardrail_withholds_winner(
    guardrail: Guardrail, candidate_errors: int, revenue_shift: float
) -> None:
    n = 20_000
    rng = np.random.default_rng(3)
    r_c = rng.normal(20.0, 5.0, n)
    r_t = rng.normal(20.0 + revenue_shift, 5.0, n)
    revenue_c = MetricSums(n, float(r_c.sum()), float((r_c**2).sum()), False)
    revenue_t = MetricSums(n, float(r_t.sum()), float((r_t**2).sum()), False)
    arms = [
        arm("control", n, {"conversion": conversions(n, 2000), "revenue": revenue_c}, errors=10),
        arm(
            "candidate",
            n,
            {"conversion": conversions(n, 2600), "revenue": revenue_t},
            errors=candidate_errors + 10,
        ),
    ]
    free = ab_report(arms, "control", primary="conversion")
    assert free["decision"]["winner"] == "candidate"
    guarded = ab_report(arms, "control", primary="conversion", guardrails=[guardrail])
    assert guarded["decision"]["winner"] is None
    assert guarded["decision"]["reason"] == f"guardrail {guardrail.metric} worse for candidate"


def test_guardrail_moving_in_the_good_direction_does_not_block() -> None:
    n = 20_000
    arms = [
        arm("control", n, {"conversion": conversions(n, 2000)}, errors=300),
        arm("candidate", n, {"conversion": conversions(n, 2600)}, errors=10),
    ]
    report = ab_report(
        arms, "control", primary="conversion", guardrails=[Guardrail("error_rate", "increase")]
    )
    err = comparison(report, "candidate", "error_rate")
    assert err["sequential"]["significant"] and err["absolute"]["estimate"] < 0
    assert err["higher_is_better"] is False and err["chance_to_beat_control"] > 0.99
    assert report["decision"]["winner"] == "candidate"


def test_best_of_several_winning_candidates_is_declared() -> None:
    n = 20_000
    arms = [
        arm("control", n, {"conversion": conversions(n, 2000)}),
        arm("good", n, {"conversion": conversions(n, 2400)}),
        arm("better", n, {"conversion": conversions(n, 2700)}),
    ]
    report = ab_report(arms, "control", primary="conversion")
    assert report["decision"]["winner"] == "better"
    assert len(report["comparisons"]) == 4  # 2 candidates x (conversion, error_rate)


def test_significantly_worse_candidate_is_reported_as_worse() -> None:
    report = conversion_test(2600, 2000)
    assert report["decision"] == {
        "winner": None,
        "code": "worse",
        "reason": "candidate is significantly worse than control on conversion",
    }


def test_no_primary_metric_means_no_winner() -> None:
    report = conversion_test(2000, 2600, primary=None)
    assert report["decision"]["winner"] is None
    assert report["decision"]["reason"] == "no primary metric"
    assert conversion_test(2000, 2600, primary="nope")["decision"]["code"] == "no_primary"


def test_mean_metric_matches_welch_and_sequential_spec_vectors() -> None:
    def sums(n: int, mean: float, sd: float) -> MetricSums:
        s = n * mean
        return MetricSums(n, s, sd * sd * (n - 1) + s * s / n, False)

    arms = [
        arm("a", 10_000, {"value": sums(10_000, 10.0, 5.0)}),
        arm("b", 10_000, {"value": sums(10_000, 10.2, 5.2)}),
    ]
    report = ab_report(arms, "a", primary="value")
    c = comparison(report, "b", "value")
    assert c["type"] == "mean"
    assert c["absolute"]["estimate"] == pytest.approx(0.2)
    assert c["p_value"] == pytest.approx(0.005569, rel=1e-3)
    assert (c["absolute"]["ci_low"], c["absolute"]["ci_high"]) == pytest.approx(
        (0.058602, 0.341398), rel=1e-5
    )
    assert c["relative"]["estimate"] == pytest.approx(0.02)
    seq = c["sequential"]["absolute"]
    assert c["sequential"]["p_value"] == pytest.approx(0.137868, rel=1e-5)
    assert (seq["ci_low"], seq["ci_high"]) == pytest.approx((-0.025586, 0.425586), rel=1e-5)
    assert c["significant"] and not c["sequential"]["significant"]
    assert c["chance_to_beat_control"] == pytest.approx(0.996983, rel=1e-5)
    assert report["decision"]["code"] == "not_significant"
    summary = report["arms"][0]["metrics"]["value"]
    assert summary["type"] == "mean" and summary["mean"] == pytest.approx(10.0)
    half = 1.96 * 5.0 / 100
    assert (summary["ci_low"], summary["ci_high"]) == pytest.approx(
        (10 - half, 10 + half), rel=1e-4
    )


def test_arm_summaries_carry_normalised_weights_error_rates_and_wilson_intervals() -> None:
    arms = [
        arm("a", 2000, {"conversion": conversions(2000, 200)}, weight=3, errors=20),
        arm("b", 2000, {"conversion": conversions(2000, 250)}, weight=1, requests=4000),
    ]
    report = ab_report(arms, "a")
    a, b = report["arms"]
    assert (a["weight"], b["weight"]) == (0.75, 0.25)
    assert a["error_rate"] == 0.01 and b["error_rate"] == 0.0 and b["requests"] == 4000
    assert a["latency_ms"] == LATENCY
    m = a["metrics"]["conversion"]
    assert m["type"] == "proportion" and m["n"] == 2000 and m["mean"] == 0.1
    assert m["ci_low"] < 0.1 < m["ci_high"] and m["error"] is None


def test_sample_size_reports_units_still_needed_for_the_mde() -> None:
    report = conversion_test(200, 210, n=2000, mde=0.1)
    size = comparison(report, "candidate", "conversion")["sample_size"]
    assert size["per_arm"] == 14751  # spec §2.8: p 0.10 -> 0.11
    assert size["additional_per_arm"] == 14751 - 2000
    assert size["per_arm_sequential"] > size["per_arm"]
    enough = conversion_test(2000, 2010, n=20_000, mde=0.1)
    assert comparison(enough, "candidate", "conversion")["sample_size"]["additional_per_arm"] == 0


def test_cuped_with_correlated_covariate_narrows_the_ci() -> None:
    rng = np.random.default_rng(11)
    n = 2000

    def sums(lift: float) -> MetricSums:
        x = rng.normal(10.0, 3.0, n)
        y = x + rng.normal(lift, 1.0, n)
        return MetricSums(
            n,
            float(y.sum()),
            float((y * y).sum()),
            False,
            x_sum=float(x.sum()),
            x_sum_sq=float((x * x).sum()),
            xy_sum=float((x * y).sum()),
        )

    arms = [arm("a", n, {"spend": sums(0.0)}), arm("b", n, {"spend": sums(0.3)})]
    c = comparison(ab_report(arms, "a", primary="spend"), "b", "spend")
    raw_width = c["absolute"]["ci_high"] - c["absolute"]["ci_low"]
    cuped = c["cuped"]
    adj_width = cuped["absolute"]["ci_high"] - cuped["absolute"]["ci_low"]
    assert adj_width < 0.5 * raw_width
    assert cuped["variance_reduction"] > 0.8 and cuped["correlation"] > 0.9
    assert cuped["absolute"]["ci_low"] < 0.3 < cuped["absolute"]["ci_high"]
    assert cuped["significant"] and cuped["p_value"] < c["p_value"]

    plain = [
        arm("a", n, {"spend": MetricSums(n, 1.0e4, 1.0e5, False)}),
        arm("b", n, {"spend": MetricSums(n, 1.1e4, 1.2e5, False)}),
    ]
    assert comparison(ab_report(plain, "a"), "b", "spend")["cuped"] is None


def test_degenerate_inputs_return_neutral_values_with_error_codes() -> None:
    arms = [
        arm(
            "control",
            1,
            {
                "empty": MetricSums(0, 0.0, 0.0, False),
                "single": MetricSums(1, 5.0, 25.0, False),
                "flat": MetricSums(1, 0.0, 0.0, True),
                "zero_base": conversions(1, 0),
            },
            requests=0,
        ),
        arm(
            "candidate",
            0,
            {
                "empty": MetricSums(0, 0.0, 0.0, False),
                "single": MetricSums(1, 7.0, 49.0, False),
                "flat": MetricSums(0, 0.0, 0.0, True),
            },
            requests=0,
        ),
    ]
    report = ab_report(arms, "control", primary="single", guardrails=[Guardrail("flat")])
    for metric in ("empty", "single", "flat", "zero_base", "error_rate"):
        c = comparison(report, "candidate", metric)
        assert c["error"] is not None, metric
        assert c["p_value"] == 1.0 and not c["significant"]
        assert (c["absolute"]["ci_low"], c["absolute"]["ci_high"]) == (0.0, 0.0)
        assert c["sequential"]["p_value"] == 1.0
        assert c["chance_to_beat_control"] == 0.5
        assert c["sample_size"]["per_arm"] is None and c["sample_size"]["error"] is not None
    assert comparison(report, "candidate", "empty")["error"] == "INSUFFICIENT_UNITS"
    assert comparison(report, "candidate", "single")["error"] == "ZERO_NEGATIVE_VARIANCE"
    assert report["srm"]["error"] == "INSUFFICIENT_UNITS" and report["srm"]["fired"] is False
    assert report["arms"][0]["error_rate"] is None
    assert report["arms"][1]["metrics"]["empty"]["error"] == "INSUFFICIENT_UNITS"
    assert report["decision"]["winner"] is None
    assert report["decision"]["code"] == "not_significant"
    assert_json_safe(report)


def test_zero_control_mean_keeps_absolute_lift_and_flags_relative() -> None:
    report = conversion_test(0, 50, n=1000)
    c = comparison(report, "candidate", "conversion")
    assert c["absolute"]["error"] is None and c["absolute"]["estimate"] == 0.05
    assert c["relative"]["error"] == "BASELINE_ZERO" and c["relative"]["estimate"] == 0.0
    assert c["chance_to_beat_control"] > 0.99  # falls back to the absolute scale
    assert c["sample_size"]["error"] == "BASELINE_ZERO"


def test_report_is_json_serialisable_even_with_infinite_statistics() -> None:
    arms = [
        arm("a", 500, {"conversion": conversions(500, 50)}, weight=1),
        arm("b", 480, {"conversion": conversions(480, 60)}, weight=1),
        arm("c", 10, {"conversion": conversions(10, 1)}, weight=0),  # hard SRM: chi2 = inf
    ]
    report = ab_report(arms, "a", primary="conversion")
    assert report["srm"]["fired"] is True and report["srm"]["chi2"] is None
    assert report["arms"][2]["weight"] == 0.0
    assert_json_safe(report)


def test_structurally_invalid_inputs_are_rejected() -> None:
    ok = [arm("a", 10, {}), arm("b", 10, {})]
    with pytest.raises(ValueError, match="control"):
        ab_report(ok, "missing")
    with pytest.raises(ValueError, match="duplicate"):
        ab_report([arm("a", 10, {}), arm("a", 10, {})], "a")
    with pytest.raises(ValueError, match="errors"):
        ab_report([arm("a", 10, {}, errors=11), arm("b", 10, {})], "a")
    with pytest.raises(ValueError, match="bad"):
        ab_report(ok, "a", guardrails=[Guardrail("x", bad="sideways")])


# --------------------------------------------------------------------------- shadow


def pair(
    live: Any, shadow: Any, label: Any = None, *, ms: tuple[float, float] = (10, 12)
) -> ShadowPair:
    return ShadowPair(live, shadow, ms[0], ms[1], True, True, label)


def test_identical_outputs_agree_fully_with_kappa_one() -> None:
    labels = ["cat", "dog", "bird"] * 100
    report = shadow_report([pair({"label": v}, {"label": v}) for v in labels])
    assert report["kind"] == "classification" and report["error"] is None
    agreement, confusion = report["agreement"], report["confusion"]
    assert agreement["rate"] == 1.0 and agreement["kappa"] == 1.0
    assert confusion["labels"] == ["bird", "cat", "dog"]
    assert confusion["counts"] == [[100, 0, 0], [0, 100, 0], [0, 0, 100]]
    assert (confusion["rows"], confusion["columns"]) == ("live", "shadow")
    assert confusion["flip_rates"] == [0.0, 0.0, 0.0] and report["labels"] is None
    assert report["drift"]["detected"] is False
    assert_json_safe(report)


def test_shadow_flipping_ten_percent_of_labels_agrees_about_ninety_percent() -> None:
    rng = np.random.default_rng(5)
    live = rng.choice(["cat", "dog", "bird"], size=2000).tolist()
    flip = set(rng.choice(2000, size=200, replace=False).tolist())
    other = {"cat": "dog", "dog": "bird", "bird": "cat"}
    shadow = [other[v] if i in flip else v for i, v in enumerate(live)]
    report = shadow_report([pair(a, b) for a, b in zip(live, shadow, strict=True)])
    agreement = report["agreement"]
    assert agreement["rate"] == pytest.approx(0.9) and agreement["n"] == 2000
    assert agreement["ci_low"] < 0.9 < agreement["ci_high"]
    assert agreement["ci_high"] - agreement["ci_low"] < 0.03
    assert 0.8 < agreement["kappa"] < 0.9
    assert sum(map(sum, report["confusion"]["counts"])) == 2000


def test_regression_with_small_noise_has_small_relative_differences() -> None:
    rng = np.random.default_rng(8)
    live = rng.uniform(10.0, 100.0, 800)
    shadow = live * (1.0 + rng.normal(0.0, 0.001, 800))
    report = shadow_report([pair(float(a), float(b)) for a, b in zip(live, shadow, strict=True)])
    assert report["kind"] == "regression" and report["agreement"] is None
    reg = report["regression"]
    assert reg["n"] == 800
    assert reg["sym_rel_diff"]["p50"] < 0.002 and reg["sym_rel_diff"]["max"] < 0.01
    assert reg["tolerance_agreement"] > 0.99
    assert reg["bias_ci_low"] < 0 < reg["bias_ci_high"]
    assert report["drift"]["detected"] is False and report["drift"]["ks"]["alert"] is False


def test_labels_present_add_accuracy_and_mcnemar() -> None:
    # live right on 60, shadow right on 80 of 100 labelled pairs; 2 unlabelled pairs
    pairs = [pair(1, 1, label=1) for _ in range(50)]
    pairs += [pair(1, 0, label=1) for _ in range(10)]  # live only right
    pairs += [pair(0, 1, label=1) for _ in range(30)]  # shadow only right
    pairs += [pair(0, 0, label=1) for _ in range(10)]
    pairs += [pair(1, 1), pair(0, 0)]
    report = shadow_report(pairs)
    acc = report["labels"]
    assert report["counts"]["labelled"] == 100
    assert acc["n"] == 100 and acc["accuracy_live"] == 0.6 and acc["accuracy_shadow"] == 0.8
    assert acc["difference"] == pytest.approx(0.2)
    assert acc["mcnemar"]["live_only_correct"] == 10
    assert acc["mcnemar"]["shadow_only_correct"] == 30
    assert acc["mcnemar"]["p_value"] < 0.01


def test_drift_is_detected_when_shadow_outputs_are_shifted() -> None:
    rng = np.random.default_rng(13)
    live = rng.normal(0.5, 0.1, 900)
    shadow = live + 0.05 + rng.normal(0.0, 0.01, 900)
    report = shadow_report([pair(float(a), float(b)) for a, b in zip(live, shadow, strict=True)])
    drift = report["drift"]
    assert drift["detected"] is True
    assert drift["ks"]["alert"] is True and drift["ks"]["statistic"] > 0.1
    assert drift["psi"]["value"] > 0.1
    assert report["regression"]["bias"] == pytest.approx(0.05, abs=0.002)


def test_small_tied_regression_samples_do_not_warn_or_raise() -> None:
    pairs = [pair(0.5 + i / 100, 0.51 + i / 100) for i in range(5)]  # ties across samples
    report = shadow_report(pairs)
    assert report["drift"]["ks"]["statistic"] == pytest.approx(0.2)
    assert report["regression"]["bias"] == pytest.approx(0.01)


def test_classification_drift_uses_categorical_psi() -> None:
    pairs = [pair("a", "a") for _ in range(50)] + [pair("b", "a") for _ in range(50)]
    drift = shadow_report(pairs)["drift"]
    assert drift["ks"] is None and drift["psi"]["level"] == "major" and drift["detected"]


def test_failed_calls_are_counted_but_not_compared() -> None:
    pairs = [pair(1, 1) for _ in range(8)]
    pairs.append(ShadowPair(1, None, 10, 3000, True, False))
    pairs.append(ShadowPair(None, 2, 10, 12, False, True))
    report = shadow_report(pairs, dropped=10)
    counts = report["counts"]
    assert counts == {
        "pairs": 10,
        "compared": 8,
        "labelled": 0,
        "live_errors": 1,
        "shadow_errors": 1,
        "live_error_rate": 0.1,
        "shadow_error_rate": 0.1,
        "dropped": 10,
        "dropped_rate": 0.5,
    }
    assert report["agreement"]["n"] == 8 and report["latency"]["n"] == 8


def test_field_selects_the_compared_output_of_dict_answers() -> None:
    pairs = [
        pair({"score": 0.25 + i / 100, "label": "x"}, {"score": 0.25 + i / 100, "label": "y"})
        for i in range(20)
    ]
    assert shadow_report(pairs)["agreement"]["rate"] == 0.0
    by_score = shadow_report(pairs, field="score")
    assert by_score["kind"] == "regression" and by_score["field"] == "score"
    assert by_score["regression"]["abs_diff"]["max"] == 0.0
    forced = shadow_report(pairs, field="score", kind="classification")
    assert forced["agreement"]["rate"] == 1.0


def test_latency_is_compared_pair_by_pair() -> None:
    live = [12, 15, 11, 30, 14, 13, 16, 12, 18, 14]
    shadow = [13, 17, 12, 29, 16, 15, 18, 13, 21, 15]
    report = shadow_report([pair(1, 1, ms=(a, b)) for a, b in zip(live, shadow, strict=True)])
    lat = report["latency"]
    assert lat["live"]["p50"] == 14 and lat["shadow"]["p50"] == 15.5
    assert lat["live"]["p99"] is None  # spec §6.4: p99 needs >= 1000 pairs
    assert lat["median_diff_ms"] == 1.5
    assert lat["median_ratio"] == pytest.approx(float(np.median(np.divide(shadow, live))))
    assert lat["wilcoxon_p_value"] == pytest.approx(0.01171875)

    rng = np.random.default_rng(2)
    big = rng.gamma(4.0, 5.0, 1000)
    many = shadow_report([pair(1, 1, ms=(float(x), float(2 * x))) for x in big])["latency"]
    assert many["shadow"]["p99"] == pytest.approx(2 * many["live"]["p99"])
    assert many["p99_ratio"] == pytest.approx(2.0)
    assert many["median_ratio"] == pytest.approx(2.0)


def test_empty_shadow_input_does_not_raise() -> None:
    report = shadow_report([])
    assert report["error"] == "NO_DATA" and report["kind"] is None
    assert report["counts"]["pairs"] == 0 and report["counts"]["live_error_rate"] is None
    assert report["agreement"] is None and report["confusion"] is None
    assert report["labels"] is None and report["regression"] is None
    assert report["latency"]["n"] == 0 and report["latency"]["live"]["p50"] is None
    assert report["drift"] == {"psi": None, "ks": None, "detected": False}
    assert_json_safe(report)
    all_failed = shadow_report([ShadowPair(None, None, 1, 1, False, False)], kind="regression")
    assert all_failed["error"] == "NO_DATA" and all_failed["counts"]["live_errors"] == 1
    assert_json_safe(all_failed)
