"""Deterministic hashing: per-request randomness and unit bucketing (spec §0.1, §3.1, §3.5).

* :func:`u01` — ``uint64_be(SHA-256("|".join([salt, request_id, *keys]))[:8]) / 2**64`` in
  [0, 1), reproducible from ``(salt, request_id)`` across languages (spec §0.1).
* :func:`bucket` — the project's scheme: ``uint64_be(SHA-256(salt + "." + unit_id)[:8]) mod B``
  with ``B = 10,000`` buckets (spec §3.5, the Statsig construction); :func:`in_coverage` uses
  an independent ``salt + ".cov"`` hash so that raising coverage only adds units.
* GrowthBook compatibility (spec §3.1): FNV-1a 32-bit over UTF-16 code units, ``hash`` v1/v2,
  bucket ranges and variation choice, for users migrating from GrowthBook.

Inputs are UTF-8 (UTF-16 code units in GrowthBook mode) and case-sensitive.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

BUCKETS = 10_000
_SEP = "|"


def hash_u64(key: str) -> int:
    """Big-endian uint64 of the first 8 bytes of ``SHA-256(utf8(key))``."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")


def u01(salt: str, request_id: str, *keys: str | int) -> float:
    """Deterministic uniform in [0, 1) for ``(salt, request_id, *keys)`` (spec §0.1).

    Raises ``ValueError`` when a part contains ``|`` (the join would be ambiguous).
    A coin is ``u01(...) < 0.5``.
    """
    parts = [salt, request_id, *map(str, keys)]
    if any(_SEP in part for part in parts):
        raise ValueError("salt, request_id and keys must not contain '|'")
    return hash_u64(_SEP.join(parts)) / 2.0**64


def bucket(unit_id: str, salt: str, buckets: int = BUCKETS) -> int:
    """Bucket in ``[0, buckets)`` of ``unit_id`` under ``salt`` (spec §3.5).

    Raises ``ValueError`` for an empty unit id: anonymous traffic must never share a bucket.
    """
    if not unit_id:
        raise ValueError("unit_id must be a non-empty string")
    return hash_u64(f"{salt}.{unit_id}") % buckets


def in_coverage(unit_id: str, salt: str, coverage: float, buckets: int = BUCKETS) -> bool:
    """``bucket(unit, salt + ".cov") < coverage·B`` (coverage clamped to [0, 1])."""
    cov = min(max(coverage, 0.0), 1.0)
    return bucket(unit_id, f"{salt}.cov", buckets) < cov * buckets


# --------------------------------------------------------------------------- GrowthBook compat


def _utf16_units(s: str) -> tuple[int, ...]:
    raw = s.encode("utf-16-le")
    return struct.unpack(f"<{len(raw) // 2}H", raw)


def fnv1a32(s: str) -> int:
    """FNV-1a 32-bit over UTF-16 code units (JavaScript ``charCodeAt``), as GrowthBook does."""
    h = 0x811C9DC5
    for unit in _utf16_units(s):
        h ^= unit
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def growthbook_hash(seed: str, value: str, version: int = 2) -> float | None:
    """GrowthBook ``hash``: v2 ``fnv(str(fnv(seed+value))) % 10000 / 1e4``, v1 legacy; else None."""
    if version == 2:
        return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    return None


def growthbook_bucket_ranges(
    n: int, coverage: float = 1.0, weights: Sequence[float] | None = None
) -> list[tuple[float, float]]:
    """GrowthBook ``getBucketRanges``: ``[cum_i, cum_i + coverage·w_i)`` per variation.

    Coverage is clamped to [0, 1]; weights fall back to equal when the length is wrong or the
    sum is outside [0.99, 1.01].
    """
    cov = min(max(coverage, 0.0), 1.0)
    equal = [1.0 / n] * n
    w = list(weights) if weights is not None and len(weights) == n else equal
    if not 0.99 <= sum(w) <= 1.01:
        w = equal
    ranges: list[tuple[float, float]] = []
    cum = 0.0
    for wi in w:
        start = cum
        cum += wi
        ranges.append((start, start + cov * wi))
    return ranges


def growthbook_choose_variation(h: float, ranges: Sequence[tuple[float, float]]) -> int:
    """Index of the first range with ``start ≤ h < end``; -1 when not in the experiment."""
    for i, (start, end) in enumerate(ranges):
        if start <= h < end:
            return i
    return -1
