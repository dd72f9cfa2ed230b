"""One list of the keys a prediction is read from (issue 14): deployment accuracy (the
ledger) and shadow agreement read the same field of the same answer."""

from __future__ import annotations

import pytest

from champion.analysis.report_shadow import LABEL_KEYS, ShadowPair, prediction_of, shadow_report
from champion.store import ledger


@pytest.mark.parametrize("answer, expected", [
    ({"y": 1, "p": 0.9}, 1),
    ({"class": "a", "y": 2}, "a"),
    ({"label": 0, "prediction": 1}, 0),
    ({"score": 0.3}, {"score": 0.3}),
    (5, 5),
])
def test_the_prediction_of_an_answer(answer, expected):
    assert prediction_of(answer) == expected


def test_the_ledger_reads_predictions_with_the_shadow_reports_list():
    assert "y" in LABEL_KEYS
    assert ledger.prediction_of is prediction_of
    assert not hasattr(ledger, "LABEL_KEYS")


def test_shadow_agreement_reads_y():
    pairs = [ShadowPair(live={"y": i % 2, "p": 0.1}, shadow={"y": i % 2, "p": 0.9},
                        live_ms=1.0, shadow_ms=1.0, live_ok=True, shadow_ok=True)
             for i in range(20)]
    report = shadow_report(pairs)
    assert report["kind"] == "classification", report
    assert report["agreement"]["rate"] == 1.0
