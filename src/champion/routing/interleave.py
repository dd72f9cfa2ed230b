"""Interleaving: merging rankers' lists into one, deterministically per request (spec §1).

* :func:`team_draft` (Radlinski, Kurup, Joachims 2008, spec §1.3): per round a coin
  ``u01(salt, rid, "td", nA) < 0.5`` says which of the two teams picks first; each picks its
  highest item not yet shown.
* :func:`balanced` (Joachims 2003, §1.2): the two lists alternate from the top, the first
  chosen by ``u01(salt, rid, "balanced")``.
* :func:`probabilistic` (Hofmann, Whiteson, de Rijke 2011, §1.4): per position a coin picks a
  ranker, which samples an item from a rank-based softmax (``r^-tau``) over its items not yet
  shown; the probabilities both rankers had for each shown item are kept for the credit.
* :func:`team_draft_multileave` (Schuth et al. 2014, §1.5): more than two lists, each
  contributing at most one item per round in a random order.

List hygiene (§1.1): each list is deduplicated first (first occurrence wins), items are
compared by canonical string ids (:func:`canonical_id`), and ``fill`` says what happens when
a list runs out: ``"continue"`` (the default) lets the others fill up to ``k`` and flags those
positions not competitive; ``"stop"`` ends the list there (the literal paper algorithms).
Pagination (§1.9) drafts ``k * page`` items and slices: page 2 continues page 1's draft, it
is never re-drafted. Everything is a pure function of the lists and ``(salt, request_id)``.

:class:`InterleavePolicy` is the routing side: every request (or a hashed share of them)
calls all the variants and merges their answers.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Self

import orjson

from champion.routing.base import (
    RoutingDecision,
    RoutingPolicy,
    RoutingRequest,
    UniformSource,
    register_policy,
)
from champion.routing.hashing import u01

Method = Literal["team_draft", "balanced", "probabilistic"]
Fill = Literal["continue", "stop"]
METHODS: tuple[str, ...] = ("team_draft", "balanced", "probabilistic")
MAX_PAGE = 1000


@dataclass(frozen=True)
class Draft:
    """A merged list: the shown ids and, per position, which list drafted it.

    ``teams[i]`` is the index of the list that drafted position ``i`` (balanced: the list
    whose turn added it); ``competitive[i]`` is False where fewer than two lists still had
    an item to offer. Probabilistic drafts keep ``probs[i][j]``, the probability list ``j``
    had for the shown item at that step (the credit needs them); balanced drafts keep
    ``ranks[i][j]``, the item's 0-based rank in list ``j`` (None: not in it). ``offset`` is
    the position of the first item on the whole draft (pages after the first).
    """

    method: str
    items: tuple[str, ...]
    teams: tuple[int, ...]
    competitive: tuple[bool, ...]
    probs: tuple[tuple[float, ...], ...] = ()
    ranks: tuple[tuple[int | None, ...], ...] = ()
    offset: int = 0

    def __len__(self) -> int:
        return len(self.items)

    def page(self, start: int, stop: int) -> Draft:
        """Positions ``start`` to ``stop`` of this draft."""
        return replace(self, items=self.items[start:stop], teams=self.teams[start:stop],
                       competitive=self.competitive[start:stop],
                       probs=self.probs[start:stop], ranks=self.ranks[start:stop],
                       offset=self.offset + start)


# --------------------------------------------------------------------------- list hygiene


def dedupe(items: Sequence[str]) -> list[str]:
    """The list without repeats, keeping each item's first (highest) position."""
    return list(dict.fromkeys(items))


def _get(value: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            raise KeyError(key)
        value = value[key]
    return value


def canonical_id(item: Any, item_key: str | None = "id") -> str:
    """The string an item is compared by: itself for strings, the decimal for integers, its
    ``item_key`` (a dotted path) for objects. ValueError when it has none."""
    if isinstance(item, Mapping):
        if not item_key:
            raise ValueError("items are objects: say which key holds the id (item_key)")
        try:
            item = _get(item, item_key)
        except KeyError:
            raise ValueError(f"an item has no {item_key!r}") from None
        if isinstance(item, (Mapping, list)):
            raise ValueError(f"an item's {item_key!r} is not a string or a number")
    if isinstance(item, str):
        return item
    if isinstance(item, int) and not isinstance(item, bool):
        return str(item)
    if isinstance(item, (float, bool)) or item is None:
        return orjson.dumps(item).decode()
    raise ValueError(f"an item is a {type(item).__name__}, not a string, number or object")


def canonical_ids(items: Sequence[Any], item_key: str | None = "id") -> list[str]:
    """:func:`canonical_id` of every item (with fast paths for the usual shapes: strings,
    or objects whose id is a string under one key)."""
    if all(type(x) is str for x in items):
        return list(items)
    if item_key and "." not in item_key and all(type(x) is dict for x in items):
        out = []
        for x in items:
            value = x.get(item_key)
            out.append(value if type(value) is str else canonical_id(x, item_key))
        return out
    return [canonical_id(x, item_key) for x in items]


def ranked_items(answer: Any, list_key: str | None) -> list[Any]:
    """The ranked list in a ranker's answer: the answer itself, or the list at ``list_key``
    (a dotted path). ValueError when there is none."""
    value = answer
    if list_key:
        try:
            value = _get(answer, list_key)
        except KeyError:
            raise ValueError(f"the answer has no {list_key!r}") from None
    if not isinstance(value, list):
        where = f"its {list_key!r}" if list_key else "the answer"
        raise ValueError(f"{where} is a {type(value).__name__}, not a list of items")
    return value


def with_items(answer: Any, list_key: str | None, items: list[Any]) -> Any:
    """``answer`` in its own shape with its ranked list replaced by ``items``."""
    if not list_key:
        return items
    keys = list_key.split(".")

    def put(value: Any, depth: int) -> Any:
        out = dict(value)
        out[keys[depth]] = items if depth == len(keys) - 1 else put(value[keys[depth]],
                                                                     depth + 1)
        return out

    return put(answer, 0)


# --------------------------------------------------------------------------- the methods


def _draws(salt: str, request_id: str, tag: str) -> Callable[[int], float]:
    """``r -> u01(salt, request_id, tag, r)`` with the checks and the joined prefix done
    once (a draft draws up to k coins from the same prefix)."""
    u01(salt, request_id, tag)  # rejects a '|' in salt or request id
    prefix = f"{salt}|{request_id}|{tag}|".encode()

    def draw(r: int) -> float:
        return int.from_bytes(hashlib.sha256(prefix + str(r).encode()).digest()[:8],
                              "big") / 2.0**64

    return draw


class _Cursor:
    """The next item of a list not yet shown (amortised O(1) per step)."""

    __slots__ = ("at", "items")

    def __init__(self, items: Sequence[str]) -> None:
        self.items = items
        self.at = 0

    def next(self, used: set[str]) -> str | None:
        while self.at < len(self.items) and self.items[self.at] in used:
            self.at += 1
        return self.items[self.at] if self.at < len(self.items) else None


def team_draft(a: Sequence[str], b: Sequence[str], k: int, salt: str, request_id: str,
               fill: Fill = "continue") -> Draft:
    """Team-draft interleaving of two lists (spec §1.3); teams 0 (``a``) and 1 (``b``)."""
    la, lb = dedupe(a), dedupe(b)
    len_a, len_b = len(la), len(lb)
    items: list[str] = []
    teams: list[int] = []
    competitive: list[bool] = []
    used: set[str] = set()
    ia = ib = 0  # the next item of each list not yet shown
    n_a = n_b = 0
    coin = _draws(salt, request_id, "td")
    while len(items) < k:
        while ia < len_a and la[ia] in used:
            ia += 1
        while ib < len_b and lb[ib] in used:
            ib += 1
        has_a, has_b = ia < len_a, ib < len_b
        if not (has_a or has_b):
            break
        both = has_a and has_b
        if not both and fill == "stop":
            break
        # a coin per round (when the teams are level), indexed by the round
        pick_a = (n_a < n_b or (n_a == n_b and coin(n_a) < 0.5)) if both else has_a
        if pick_a:
            item = la[ia]
            n_a += 1
        else:
            item = lb[ib]
            n_b += 1
        items.append(item)
        used.add(item)
        teams.append(0 if pick_a else 1)
        competitive.append(both)
    return Draft("team_draft", tuple(items), tuple(teams), tuple(competitive))


def balanced(a: Sequence[str], b: Sequence[str], k: int, salt: str, request_id: str,
             fill: Fill = "continue") -> Draft:
    """Balanced interleaving (spec §1.2): the lists alternate from the top, the first picked
    by a coin; an item already shown is skipped but still advances its list."""
    la, lb = dedupe(a), dedupe(b)
    a_first = u01(salt, request_id, "balanced") < 0.5
    rank_a = {d: i for i, d in enumerate(la)}
    rank_b = {d: i for i, d in enumerate(lb)}
    items: list[str] = []
    teams: list[int] = []
    competitive: list[bool] = []
    used: set[str] = set()
    ka = kb = 0
    while len(items) < k and (ka < len(la) or kb < len(lb)):
        a_ok, b_ok = ka < len(la), kb < len(lb)
        if not (a_ok and b_ok) and fill == "stop":
            break
        take_a = a_ok and (not b_ok or ka < kb or (ka == kb and a_first))
        item = la[ka] if take_a else lb[kb]
        if item not in used:
            used.add(item)
            items.append(item)
            teams.append(0 if take_a else 1)
            competitive.append(a_ok and b_ok)
        if take_a:
            ka += 1
        else:
            kb += 1
    ranks = tuple((rank_a.get(d), rank_b.get(d)) for d in items)
    return Draft("balanced", tuple(items), tuple(teams), tuple(competitive), ranks=ranks)


def softmax(items: Sequence[str], remaining: set[str], tau: float = 3.0) -> dict[str, float]:
    """Rank-based softmax of one list over its remaining items: ``r^-tau`` normalised, with
    ``r`` the item's 1-based rank in the (deduplicated) list (spec §1.4)."""
    weights = {d: 1.0 / (r + 1) ** tau for r, d in enumerate(items) if d in remaining}
    total = sum(weights.values())
    return {d: w / total for d, w in weights.items()} if total > 0 else {}


def probabilistic(a: Sequence[str], b: Sequence[str], k: int, salt: str, request_id: str,
                  fill: Fill = "continue", tau: float = 3.0) -> Draft:
    """Probabilistic interleaving (spec §1.4). ``teams`` holds the ranker that sampled each
    item (for the response; the credit marginalises over it with ``probs``)."""
    la, lb = dedupe(a), dedupe(b)
    # r^-tau per list, in rank order; the softmax at a step is these over the items left,
    # normalised by their sum (summed in rank order, as softmax() does)
    wa = [(d, 1.0 / (r + 1) ** tau) for r, d in enumerate(la)]
    wb = [(d, 1.0 / (r + 1) ** tau) for r, d in enumerate(lb)]
    in_a, in_b = dict(wa), dict(wb)
    remaining = set(la) | set(lb)
    items: list[str] = []
    teams: list[int] = []
    competitive: list[bool] = []
    probs: list[tuple[float, float]] = []
    ranker_coin = _draws(salt, request_id, "pi_ranker")
    doc_draw = _draws(salt, request_id, "pi_doc")
    i = 0
    while len(items) < k and remaining:
        za = sum(w for d, w in wa if d in remaining)
        zb = sum(w for d, w in wb if d in remaining)
        if not za > 0 and not zb > 0:
            break
        if not (za > 0 and zb > 0) and fill == "stop":
            break
        use_a = ranker_coin(i) < 0.5
        if use_a and not za > 0:
            use_a = False
        if not use_a and not zb > 0:
            use_a = True
        weights, z = (wa, za) if use_a else (wb, zb)
        u = doc_draw(i)
        cum = 0.0
        pick = ""
        for d, w in weights:
            if d in remaining:
                pick = d
                cum += w / z
                if u < cum:
                    break
        items.append(pick)
        teams.append(0 if use_a else 1)
        competitive.append(za > 0 and zb > 0)
        probs.append((in_a[pick] / za if pick in in_a else 0.0,
                      in_b[pick] / zb if pick in in_b else 0.0))
        remaining.discard(pick)
        i += 1
    return Draft("probabilistic", tuple(items), tuple(teams), tuple(competitive),
                 probs=tuple(probs))


def team_draft_multileave(lists: Sequence[Sequence[str]], k: int, salt: str, request_id: str,
                          fill: Fill = "continue") -> Draft:
    """Team-draft multileaving (spec §1.5): per round ``r`` the lists pick in the order of
    ``(u01(salt, rid, "tdm", r, j), j)``, each its highest item not yet shown."""
    cursors = [_Cursor(dedupe(x)) for x in lists]
    items: list[str] = []
    teams: list[int] = []
    competitive: list[bool] = []
    used: set[str] = set()
    r = 0
    while len(items) < k:
        order = sorted(range(len(cursors)),
                       key=lambda j: (u01(salt, request_id, "tdm", r, j), j))
        added = False
        for j in order:
            if len(items) >= k:
                break
            offered = [c.next(used) for c in cursors]
            live = sum(1 for d in offered if d is not None)
            if fill == "stop" and live < len(cursors):
                return Draft("team_draft_multileave", tuple(items), tuple(teams),
                             tuple(competitive))
            d = offered[j]
            if d is not None:
                items.append(d)
                used.add(d)
                teams.append(j)
                competitive.append(live >= 2)
                added = True
        if not added:
            break
        r += 1
    return Draft("team_draft_multileave", tuple(items), tuple(teams), tuple(competitive))


def interleave(lists: Sequence[Sequence[str]], method: Method, k: int, salt: str,
               request_id: str, *, fill: Fill = "continue", tau: float = 3.0,
               page: int = 1) -> Draft:
    """Merge ``lists`` (canonical ids, best first) into page ``page`` of ``k`` items.

    Two lists use ``method``; more use team-draft multileaving (balanced and probabilistic
    interleaving are defined for two). Page ``p`` is positions ``k(p-1)`` to ``kp`` of the
    draft of ``kp`` items, so a later page continues the first page's draft.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    if not 1 <= page <= MAX_PAGE:
        raise ValueError(f"page must be between 1 and {MAX_PAGE}")
    if len(lists) < 2:
        raise ValueError("interleaving needs at least two lists")
    total = k * page
    if len(lists) > 2:
        if method != "team_draft":
            raise ValueError(f"{method} interleaving takes two lists; more need team_draft")
        draft = team_draft_multileave(lists, total, salt, request_id, fill)
    elif method == "team_draft":
        draft = team_draft(lists[0], lists[1], total, salt, request_id, fill)
    elif method == "balanced":
        draft = balanced(lists[0], lists[1], total, salt, request_id, fill)
    elif method == "probabilistic":
        draft = probabilistic(lists[0], lists[1], total, salt, request_id, fill, tau)
    else:
        raise ValueError(f"unknown interleaving method {method!r}")
    return draft.page(k * (page - 1), total) if page > 1 else draft


def identical(lists: Sequence[Sequence[str]], k: int) -> bool:
    """Whether every list shows the same first ``k`` items in the same order: then the
    merged list is that list whatever the coins, and a click says nothing about which
    ranker is better (its credit is a coin flip)."""
    heads = [tuple(dedupe(x)[:k]) for x in lists]
    return all(h == heads[0] for h in heads[1:])


# --------------------------------------------------------------------------- the policy


@register_policy("interleave")
@dataclass(frozen=True)
class InterleavePolicy(RoutingPolicy):
    """Every request calls all ``names`` and merges their answers; with ``percent`` below
    100, only that share of requests (hashed from the request id) is interleaved and the
    others get ``names[0]`` alone. A request may name a page of an earlier request's draft
    in its context (``page``, ``draft``): it is passed on to the merge in the decision's
    ``params``."""

    names: tuple[str, ...]
    salt: str
    percent: float = 100.0

    def __post_init__(self) -> None:
        names = tuple(self.names)
        if len(names) < 2 or len(set(names)) != len(names) or not all(names):
            raise ValueError("interleaving needs at least two distinct variant names")
        if not self.salt or "|" in self.salt:
            raise ValueError("salt must be a non-empty string without '|'")
        if not (math.isfinite(self.percent) and 0.0 <= self.percent <= 100.0):
            raise ValueError("percent must be in [0, 100]")
        object.__setattr__(self, "names", names)

    @property
    def variants(self) -> tuple[str, ...]:
        return self.names

    def decide(self, request: RoutingRequest, rng: UniformSource) -> RoutingDecision:
        if self.percent < 100.0:
            key = request.request_id.replace("|", "%7C")
            u = u01(self.salt, key, "interleave") if key else rng.random()
            if u >= self.percent / 100.0:
                return RoutingDecision(self.names[0], (), self.name, "not_covered")
        params = {k: request.context[k] for k in ("page", "draft") if k in request.context}
        return RoutingDecision(self.names[0], (), self.name, "merge", merge=self.names,
                               params=params)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        return cls(tuple(config["names"]), str(config["salt"]),
                   float(config.get("percent", 100.0)))

    def to_config(self) -> dict[str, Any]:
        return {"names": list(self.names), "salt": self.salt, "percent": self.percent}
