"""Interleaved lists (routing/interleave.py) against every merging vector of spec §1, from the
project's own case file, plus list hygiene, pagination and the policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from champion.routing import RoutingRequest, u01
from champion.routing.interleave import (
    InterleavePolicy,
    balanced,
    canonical_id,
    dedupe,
    identical,
    interleave,
    probabilistic,
    ranked_items,
    softmax,
    team_draft,
    team_draft_multileave,
    with_items,
)

CASES: dict[str, Any] = json.loads(
    (Path(__file__).parent / "cases" / "interleave.json").read_text(encoding="utf-8"))
A, B = CASES["lists"]["A"], CASES["lists"]["B"]
AB = "AB"


def test_u01_vector() -> None:
    for c in CASES["u01"]:
        assert u01(c["salt"], c["request_id"], *c["keys"]) == pytest.approx(c["value"],
                                                                            abs=1e-15)


@pytest.mark.parametrize("case", CASES["team_draft"]["cases"], ids=lambda c: c["request_id"])
def test_team_draft_vectors(case: dict[str, Any]) -> None:
    td = CASES["team_draft"]
    coins = [u01(td["salt"], case["request_id"], "td", r) for r in range(3)]
    assert coins == pytest.approx(case["coins"], abs=5e-5)
    draft = team_draft(A, B, td["k"], td["salt"], case["request_id"])
    assert list(draft.items) == case["items"]
    assert [AB[t] for t in draft.teams] == case["teams"]
    assert all(draft.competitive)


def test_team_draft_deduplicates_and_fills_unequal_lists() -> None:
    h = CASES["team_draft"]["hygiene"]
    assert dedupe(CASES["team_draft"]["dedupe"]["in"]) == CASES["team_draft"]["dedupe"]["out"]
    for fill in ("continue", "stop"):
        draft = team_draft(h["A"], h["B"], h["k"], "exp42", h["request_id"], fill=fill)
        assert list(draft.items) == h[fill]["items"], fill
        assert [AB[t] for t in draft.teams] == h[fill]["teams"], fill
    cont = team_draft(h["A"], h["B"], h["k"], "exp42", h["request_id"])
    # the last position came from A alone: B had nothing left to offer
    assert cont.competitive == (True, True, False)


@pytest.mark.parametrize("case", CASES["balanced"]["cases"], ids=lambda c: c["request_id"])
@pytest.mark.parametrize("fill", ["continue", "stop"])
def test_balanced_vectors(case: dict[str, Any], fill: str) -> None:
    bal = CASES["balanced"]
    assert (u01(bal["salt"], case["request_id"], "balanced") < 0.5) is case["a_first"]
    draft = balanced(A, B, bal["k"], bal["salt"], case["request_id"], fill=fill)  # type: ignore[arg-type]
    assert list(draft.items) == case["items"]
    # each shown item's rank in both lists, None where absent
    for item, (ra, rb) in zip(draft.items, draft.ranks, strict=True):
        assert ra == (A.index(item) if item in A else None)
        assert rb == (B.index(item) if item in B else None)


def test_balanced_of_identical_lists_is_the_list() -> None:
    for rid in ("r1", "r2", "r3"):
        assert list(balanced(A, A, 5, "s", rid).items) == A


def test_softmax_vector() -> None:
    items = ["w", "x", "y", "z"]
    p = softmax(items, set(items), CASES["probabilistic"]["tau"])
    assert [p[d] for d in items] == pytest.approx(CASES["probabilistic"]["softmax_4"],
                                                  abs=1e-6)


def test_probabilistic_sampling_vector() -> None:
    s = CASES["probabilistic"]["sample"]
    draft = probabilistic(A, B, s["k"], s["salt"], s["request_id"])
    assert list(draft.items) == s["items"]
    assert [AB[t] for t in draft.teams] == s["assignments"]
    # the probabilities both rankers had for each shown item, for the credit
    assert len(draft.probs) == 5 and all(0 <= p <= 1 for pair in draft.probs for p in pair)
    assert draft.probs[0][1] > 0.8  # d2 is B's first item


def test_probabilistic_keeps_the_probabilities_the_credit_needs() -> None:
    c = CASES["probabilistic"]["credit"]
    # Recompute q for the shown list [b, a, c] from the drafts' own probabilities: any
    # request whose draft shows this list must carry the same P_A, P_B per position.
    for i in range(400):
        draft = probabilistic(c["A"], c["B"], 3, "exp42", f"r{i}")
        if list(draft.items) == c["shown"]:
            q = [pa / (pa + pb) if pa + pb else 0.5 for pa, pb in draft.probs]
            assert q == pytest.approx(c["q"], abs=1e-6)
            break
    else:
        pytest.fail("no request drew the list [b, a, c]")


@pytest.mark.parametrize("case", CASES["multileave"]["cases"], ids=lambda c: c["request_id"])
def test_multileave_vectors(case: dict[str, Any]) -> None:
    ml = CASES["multileave"]
    draft = team_draft_multileave(ml["lists"], ml["k"], ml["salt"], case["request_id"])
    assert list(draft.items) == case["items"]
    assert list(draft.teams) == case["teams"]
    via = interleave(ml["lists"], "team_draft", ml["k"], ml["salt"], case["request_id"])
    assert via == draft


def test_multileaving_gives_each_list_one_item_per_round() -> None:
    lists = [[f"{j}-{i}" for i in range(10)] for j in range(4)]
    for rid in ("a", "b", "c"):
        draft = team_draft_multileave(lists, 8, "s", rid)
        assert sorted(draft.teams[:4]) == [0, 1, 2, 3]
        assert sorted(draft.teams[4:]) == [0, 1, 2, 3]


def test_dispatch_matches_the_methods_and_refuses_what_they_do_not_define() -> None:
    assert interleave([A, B], "team_draft", 5, "exp42", "req-1") == team_draft(
        A, B, 5, "exp42", "req-1")
    assert interleave([A, B], "balanced", 5, "exp42", "req-1") == balanced(
        A, B, 5, "exp42", "req-1")
    assert interleave([A, B], "probabilistic", 5, "exp42", "req-1") == probabilistic(
        A, B, 5, "exp42", "req-1")
    with pytest.raises(ValueError, match="two lists"):
        interleave([A, B, A], "balanced", 5, "s", "r")
    with pytest.raises(ValueError, match="at least two"):
        interleave([A], "team_draft", 5, "s", "r")
    with pytest.raises(ValueError, match="k must"):
        interleave([A, B], "team_draft", 0, "s", "r")
    with pytest.raises(ValueError, match=r"\|"):
        interleave([A, B], "team_draft", 5, "s", "bad|id")


def test_the_same_request_always_gets_the_same_list() -> None:
    for method in ("team_draft", "balanced", "probabilistic"):
        first = interleave([A, B], method, 5, "salt", "req-77")  # type: ignore[arg-type]
        assert all(interleave([A, B], method, 5, "salt", "req-77") == first  # type: ignore[arg-type]
                   for _ in range(3))


@pytest.mark.parametrize("method", ["team_draft", "balanced", "probabilistic"])
def test_a_later_page_continues_the_first_pages_draft(method: Any) -> None:
    la = [f"a{i}" for i in range(30)]
    lb = [f"b{i}" for i in range(10)] + la[:20]
    whole = interleave([la, lb], method, 15, "s", "rid")
    page1 = interleave([la, lb], method, 5, "s", "rid", page=1)
    page2 = interleave([la, lb], method, 5, "s", "rid", page=2)
    page3 = interleave([la, lb], method, 5, "s", "rid", page=3)
    assert page1.items + page2.items + page3.items == whole.items
    assert page1.teams + page2.teams + page3.teams == whole.teams
    assert (page1.offset, page2.offset, page3.offset) == (0, 5, 10)
    assert not set(page2.items) & set(page1.items)


def test_one_empty_list_leaves_the_other_to_fill_every_slot_not_competitively() -> None:
    for method in ("team_draft", "balanced", "probabilistic"):
        draft = interleave([A, []], method, 5, "s", "r")  # type: ignore[arg-type]
        assert set(draft.items) == set(A) and set(draft.teams) == {0}
        assert not any(draft.competitive)
        stopped = interleave([A, []], method, 5, "s", "r", fill="stop")  # type: ignore[arg-type]
        assert stopped.items == ()


def test_k_larger_than_the_union_gives_a_shorter_list() -> None:
    draft = team_draft(["x", "y"], ["y", "z"], 10, "s", "r")
    assert sorted(draft.items) == ["x", "y", "z"]


def test_identical_lists_are_recognised_on_the_shown_prefix() -> None:
    assert identical([A, list(A)], 5)
    assert identical([[*A, "q"], [*A, "r"]], 5)
    assert not identical([A, B], 5)
    assert not identical([A, A[::-1]], 5)


def test_canonical_ids_and_the_ranked_list_in_an_answer() -> None:
    assert canonical_id("x") == "x" and canonical_id(7) == "7"
    assert canonical_id({"id": 7, "score": 0.3}) == "7"
    assert canonical_id({"doc": {"sku": "a-1"}}, "doc.sku") == "a-1"
    with pytest.raises(ValueError, match="no 'id'"):
        canonical_id({"sku": 1})
    with pytest.raises(ValueError, match="not a string"):
        canonical_id([1, 2])
    answer = {"results": {"items": [1, 2]}, "model": "v2"}
    assert ranked_items(answer, "results.items") == [1, 2]
    assert ranked_items([3, 4], None) == [3, 4]
    with pytest.raises(ValueError, match="no 'hits'"):
        ranked_items(answer, "hits")
    with pytest.raises(ValueError, match="not a list"):
        ranked_items({"a": 1}, None)
    assert with_items(answer, "results.items", [9]) == {"results": {"items": [9]},
                                                        "model": "v2"}
    assert answer["results"]["items"] == [1, 2]  # not changed in place
    assert with_items([1], None, [5]) == [5]


def test_policy_merges_every_variant_and_passes_a_page_on() -> None:
    policy = InterleavePolicy(("control", "candidate"), "salt")
    d = policy.decide(RoutingRequest("r1", None, {"page": 2, "draft": "r0", "x": 1}), None)  # type: ignore[arg-type]
    assert d.merge == ("control", "candidate") and d.variant == "control"
    assert d.params == {"page": 2, "draft": "r0"}
    assert InterleavePolicy.from_config(policy.to_config()) == policy
    half = InterleavePolicy(("a", "b"), "salt", 50.0)
    merged = sum(bool(half.decide(RoutingRequest(f"r{i}"), None).merge)  # type: ignore[arg-type]
                 for i in range(2000))
    assert 900 < merged < 1100
    with pytest.raises(ValueError):
        InterleavePolicy(("a", "a"), "salt")
