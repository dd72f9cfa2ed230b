"""Clicks feedback: the shapes the feedback API takes (ids, positions, weighted objects) and
clicks that arrive one post at a time."""

from __future__ import annotations

import orjson
import pytest

from champion.events.feedback import parse_item
from champion.events.ids import RequestIds

IDS = RequestIds("00" * 16)


def parse(item: dict[str, object]) -> dict[str, object]:
    return parse_item(item, "search", IDS, 1000.0)


def test_clicks_take_ids_positions_and_weighted_objects() -> None:
    rid = IDS.new()
    clicks = ["sku-3", 0, {"item": 17, "weight": 29.9}, {"position": 4}, {"item": "x",
                                                                           "weight": 0}]
    row = parse({"request_id": rid, "clicks": clicks})
    assert row["metric"] == "clicks" and row["value"] == 5.0
    assert orjson.loads(str(row["label"])) == clicks
    assert row["dedup"] == rid


@pytest.mark.parametrize("bad", [[1.5], [-1], [True], [None], [{"weight": 1}],
                                 [{"item": "a", "position": 1}], [{"item": "a", "weight": -2}],
                                 [{"item": "a", "weight": True}], [{"position": "2"}],
                                 [{"item": ["a"]}], [{"item": "a", "why": 1}], "a,b"])
def test_malformed_clicks_are_refused_with_the_forms_named(bad: object) -> None:
    with pytest.raises(ValueError, match="clicks"):
        parse({"request_id": IDS.new(), "clicks": bad})


def test_clicks_with_an_event_id_may_arrive_one_post_at_a_time() -> None:
    rid = IDS.new()
    first = parse({"request_id": rid, "clicks": ["a"], "event_id": "c1"})
    second = parse({"request_id": rid, "clicks": ["b"], "event_id": "c2"})
    assert first["dedup"] != second["dedup"] and str(first["dedup"]).startswith(rid)
    # other metrics keep one value per request, event id or not
    assert parse({"request_id": rid, "reward": 1, "event_id": "e"})["dedup"] == rid
    with pytest.raises(ValueError, match="event_id"):
        parse({"request_id": rid, "clicks": ["a"], "event_id": "x" * 200})
