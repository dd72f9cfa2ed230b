"""Deterministic hashing: u01, SHA-256 bucketing, GrowthBook compatibility (§0.1, §3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from champion.routing.hashing import (
    BUCKETS,
    bucket,
    fnv1a32,
    growthbook_bucket_ranges,
    growthbook_choose_variation,
    growthbook_hash,
    hash_u64,
    in_coverage,
    u01,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "cases" / "spec_vectors.json").read_text(encoding="utf-8")
)



def test_u01_vectors() -> None:
    block = VECTORS["u01"]
    for case in block["cases"]:
        assert u01(case["salt"], case["request_id"], *case["keys"]) == case["expected"]
    for case in block["rounded_cases"]:
        got = u01(case["salt"], case["request_id"], *case["keys"])
        assert got == pytest.approx(case["expected"], abs=block["rounded_tol"]["abs"])


def test_u01_rejects_ambiguous_parts_and_is_uniform() -> None:
    with pytest.raises(ValueError):
        u01("exp|1", "req")
    with pytest.raises(ValueError):
        u01("exp", "req", "a|b")
    draws = np.array([u01("salt", f"req-{i}") for i in range(5000)])
    assert draws.min() >= 0.0 and draws.max() < 1.0
    assert stats.kstest(draws, "uniform").pvalue > 0.001


@pytest.mark.parametrize("case", VECTORS["sha256_bucket"]["cases"], ids=lambda c: c["unit"])
def test_sha256_bucket_vectors(case: dict[str, Any]) -> None:
    salt = VECTORS["sha256_bucket"]["salt"]
    assert hash_u64(f"{salt}.{case['unit']}") == case["u64"]
    assert bucket(case["unit"], salt) == case["bucket"]
    assert (bucket(case["unit"], salt) < 50 * 100) is case["pass_at_50"]


def test_bucket_rules() -> None:
    with pytest.raises(ValueError):
        bucket("", "salt")
    assert bucket("User-1", "s") != bucket("user-1", "s")  # case-sensitive, never lower-cased
    assert bucket("u", "s", buckets=100) < 100
    counts = np.bincount([bucket(f"u{i}", "exp") % 10 for i in range(20_000)], minlength=10)
    assert stats.chisquare(counts).pvalue > 0.001
    assert BUCKETS == 10_000


def test_coverage_is_monotone_and_independent_of_bucket() -> None:
    units = [f"user-{i}" for i in range(4000)]
    at20 = {u for u in units if in_coverage(u, "exp", 0.2)}
    at50 = {u for u in units if in_coverage(u, "exp", 0.5)}
    assert at20 <= at50  # raising coverage only adds units
    assert len(at50) / len(units) == pytest.approx(0.5, abs=0.03)
    low_bucket = {u for u in units if bucket(u, "exp") < 5000}
    assert len(low_bucket & at50) / len(at50) == pytest.approx(0.5, abs=0.05)
    assert not any(in_coverage(u, "exp", 0.0) for u in units[:100])
    assert all(in_coverage(u, "exp", 1.0) for u in units[:100])


@pytest.mark.parametrize(
    "case", VECTORS["growthbook_hash"]["cases"], ids=lambda c: f"{c[0]}|{c[1]}|v{c[2]}"
)
def test_growthbook_hash_vectors(case: list[Any]) -> None:
    seed, value, version, expected = case
    got = growthbook_hash(seed, value, version)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    "case", VECTORS["growthbook_bucket_ranges"]["cases"], ids=lambda c: c[0]
)
def test_growthbook_range_vectors(case: list[Any]) -> None:
    _, (n, coverage, weights), expected = case
    got = growthbook_bucket_ranges(n, coverage, weights)
    assert len(got) == len(expected)
    for (a, b), (ea, eb) in zip(got, expected, strict=True):
        assert (a, b) == pytest.approx((ea, eb), abs=1e-9)


def test_growthbook_choose_and_fnv() -> None:
    ranges = growthbook_bucket_ranges(3, 0.2, [0.2, 0.3, 0.5])
    assert growthbook_choose_variation(0.03, ranges) == 0
    assert growthbook_choose_variation(0.1, ranges) == -1
    assert growthbook_choose_variation(0.55, ranges) == 2
    assert fnv1a32("") == 0x811C9DC5
    assert fnv1a32("a") == 0xE40C292C  # published FNV-1a 32 test vector
