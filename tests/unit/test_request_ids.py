"""Request ids: signed, time-ordered, carrying what served the request, old ones still valid."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from champion.events.feedback import parse_item
from champion.events.ids import KEY_LENGTH, MAX_LENGTH, Attribution, RequestIds

SECRET = "ab" * 16
IDS = RequestIds(SECRET)


def old_format(key: str) -> str:
    """An id as the first release issued it: ``<key>-<HMAC>``."""
    mac = hmac.new(bytes.fromhex(SECRET), key.encode(), hashlib.sha256).hexdigest()[:10]
    return f"{key}-{mac}"


def test_an_id_carries_the_version_the_experiment_and_the_arm() -> None:
    key = IDS.key()
    rid = IDS.issue(key, version=3, experiment="exp_0f2e3d4c", arm=2)
    assert rid.startswith(key + ".v3.e0f2e3d4c.a2-")
    assert RequestIds.key_of(rid) == key and len(key) == KEY_LENGTH
    carried = IDS.attribution(rid)
    assert carried == Attribution(carried.served_at if carried else 0.0, 3, "exp_0f2e3d4c", 2)
    assert carried is not None and abs(carried.served_at - time.time()) < 5
    assert IDS.valid(rid)


def test_versions_are_hex_and_the_longest_id_fits_the_column() -> None:
    rid = IDS.issue(IDS.key(), version=2**31 - 1, experiment="exp_" + "f" * 12, arm=99)
    assert len(rid) <= MAX_LENGTH - 1
    carried = IDS.attribution(rid)
    assert carried is not None and carried.version == 2**31 - 1 and carried.arm == 99
    assert ".v2a-" in IDS.issue(IDS.key(), version=42)


def test_ids_of_the_first_format_stay_valid() -> None:
    key = IDS.key()
    rid = old_format(key)
    assert IDS.new().count("-") == 1 and len(IDS.new()) == 35
    assert IDS.valid(rid)
    carried = IDS.attribution(rid)
    assert carried is not None and (carried.version, carried.experiment, carried.arm) == (
        None, None, None)
    assert IDS.issue(key) == rid  # the same format with no field


@pytest.mark.parametrize("tamper", [
    lambda r: r.replace(".a2", ".a1"),       # another arm
    lambda r: r.replace(".v3", ".v4"),       # another version
    lambda r: r[:-1] + ("0" if r[-1] != "0" else "1"),
    lambda r: r.replace(".e0f2e3d4c", ""),   # fields dropped
    lambda r: "x" + r[1:],
    lambda r: r + "0",
    lambda r: r.split("-")[0],
])
def test_a_changed_id_is_rejected(tamper) -> None:
    rid = IDS.issue(IDS.key(), version=3, experiment="exp_0f2e3d4c", arm=2)
    assert not IDS.valid(tamper(rid))
    assert not RequestIds("cd" * 16).valid(rid)


def test_fields_that_do_not_fit_are_left_out() -> None:
    key = IDS.key()
    assert IDS.issue(key, experiment="my-experiment", arm=1) == IDS.issue(key)
    assert IDS.issue(key, arm=1) == IDS.issue(key)


def test_feedback_rows_keep_what_the_id_carries() -> None:
    rid = IDS.issue(IDS.key(), version=7, experiment="exp_00aa11bb", arm=1)
    row = parse_item({"request_id": rid, "reward": 1}, "churn", IDS, time.time())
    assert (row["experiment"], row["arm_index"], row["version"]) == ("exp_00aa11bb", 1, 7)
    assert row["served_at"] == pytest.approx(time.time(), abs=5)
    plain = parse_item({"request_id": old_format(IDS.key()), "reward": 1}, "churn", IDS,
                       time.time())
    assert plain["experiment"] is None and plain["served_at"] is not None
    with pytest.raises(ValueError, match="not issued by this server"):
        parse_item({"request_id": rid.replace(".a1", ".a0"), "reward": 1}, "churn", IDS, 0.0)
