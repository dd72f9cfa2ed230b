"""Interleave: rankers' lists merged into one per request; clicks say which ranker is better.

Every request (or a hashed ``percent`` of them) calls all the variants concurrently; their
ranked lists are merged by team-draft interleaving (the default; multileaving with more than
two variants), balanced or probabilistic interleaving (:mod:`champion.routing.interleave`),
deterministically from ``(salt, request id)``. The caller gets the merged list in the
rankers' own answer shape, with ``teams`` (which variant drafted each position) beside it;
the request log keeps the shown ids and their teams. Clicks come back as ``clicks``
feedback by request id and credit the team of each clicked item
(:mod:`champion.analysis.interleave`).

The report counts impressions, those with a click, wins, losses and ties per pair, the
preference Δ with its interval, the sign test, and the user-level analysis (the default
decision, spec §1.7), with Holm's correction over multileaving's pairs; the impressions
still needed for the configured power; a first-slot check (each team should open the list
half the time: a failing check means a position bias, and nothing is decided). Impressions
where only one variant's list could be shown (another errored, timed out, returned no list,
or all lists were identical on the shown prefix) are counted but not credited. Interleaving
measures which ranker users prefer, not by how much a business metric moves: a winner's
next step is an A/B test on business metrics.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from champion.analysis.interleave import (
    PairSummary,
    UserLevel,
    holm,
    pair_outcomes,
    sample_size,
    summarise_pair,
)
from champion.analysis.report_ab import jsonable
from champion.analysis.srm import srm_check
from champion.routing.base import RoutingDecision, RoutingPolicy
from champion.routing.interleave import (
    MAX_PAGE,
    InterleavePolicy,
    canonical_id,
    canonical_ids,
    dedupe,
    interleave,
    ranked_items,
    with_items,
)
from champion.strategies.base import (
    Answer,
    Experiment,
    Merged,
    State,
    Step,
    Strategy,
    alert,
    chart,
    column,
    register,
    table,
    view,
)
from champion.strategies.settings import SettingsError, setting

FIRST_SLOT_THRESHOLD = 0.001
NEXT_STEP = ("interleaving shows which ranker users prefer, not how much a business metric "
             "moves: confirm the preferred ranker with an A/B test on business metrics "
             "(conversions, revenue, retention) and guardrails (latency) before shipping it")


@dataclass(frozen=True)
class InterleaveSettings:
    method: Literal["team_draft", "balanced", "probabilistic"] = setting(
        "team_draft", "How lists are merged: team_draft (multileaving with more than two "
        "variants), balanced or probabilistic (two variants).")
    k: int = setting(10, "Length of the merged list (one page).", low=1, high=100)
    fill: Literal["continue", "stop"] = setting(
        "continue", "When a list runs out: the others fill up to k (those positions are "
        "flagged not competitive), or the merged list stops there.")
    list_key: str | None = setting(
        None, "Where the ranked list is in each ranker's answer: a key, dotted for nested "
        "ones (default: the answer is the list).")
    item_key: str = setting("id", "When items are objects: the key of an item's id "
                            "(dotted for nested ones).")
    click_ids: Literal["auto", "items", "positions"] = setting(
        "auto", "What clicks name: auto (strings are item ids, integers 0-based positions), "
        "items (item ids, integers too) or positions.")
    percent: float = setting(100.0, "Share of requests interleaved (hashed from the request "
                             "id); the others get the control alone.", low=0.0, high=100.0)
    tau: float = setting(3.0, "Probabilistic interleaving: the exponent of the rank-based "
                         "softmax.", above=0.0, high=20.0)
    decide_by: Literal["user", "impression"] = setting(
        "user", "The unit of the deciding test: users (a unit's impressions are not "
        "independent; requests without a unit are their own) or impressions.")
    min_win_rate: float = setting(0.55, "The win rate the sample size is computed for.",
                                  above=0.5, high=0.99)
    power: float = setting(0.8, "The power the sample size is computed for.", above=0.5,
                           high=0.999)
    n_star: int = setting(1000, "Automatic decisions: tuning of the always-valid test, the "
                          "expected number of deciding units.", low=10, high=10**9)
    on_winner: Literal["promote", "stop"] = setting(
        "promote", "Automatic decisions: promote the preferred variant, or stop and keep "
        "production (to confirm with an A/B test first).")
    max_impressions: int = setting(50_000, "The report reads at most this many of the "
                                   "newest impressions.", low=100, high=10**7)


# --------------------------------------------------------------------------- merging


def _page(params: Mapping[str, Any], request_id: str) -> tuple[int, str]:
    page = params.get("page", 1)
    if isinstance(page, bool) or not isinstance(page, int) or not 1 <= page <= MAX_PAGE:
        raise ValueError(f"'page' is a whole number from 1 to {MAX_PAGE}")
    draft = params.get("draft")
    if draft is None:
        if page > 1:
            raise ValueError("a later page continues an earlier request's merged list: send "
                             "that request's id as 'draft' with 'page'")
        return page, request_id
    if not isinstance(draft, str) or not draft or "|" in draft or len(draft) > 64:
        raise ValueError("'draft' is the request id of the list's first page")
    return page, draft


def _merge(settings: InterleaveSettings, exp: Experiment, decision: RoutingDecision,
           request_id: str, answers: Mapping[str, Answer]) -> Merged:
    names = [n for n in exp.variants if n in decision.merge]
    page, draft_id = _page(decision.params, request_id)
    lists: dict[str, list[str]] = {}
    objects: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    for n in names:
        answer = answers.get(n)
        if answer is None or not answer.ok:
            failed[n] = ((answer.error if answer else None) or "no answer")[:200]
            continue
        try:
            items = ranked_items(answer.data, settings.list_key)
            ids = canonical_ids(items, settings.item_key)
        except ValueError as exc:
            failed[n] = f"no ranked list: {exc}"[:200]
            continue
        lists[n] = dedupe(ids)
        first: dict[str, Any] = {}
        for i, x in zip(reversed(ids), reversed(items), strict=True):
            first[i] = x  # the first occurrence wins: it is written last
        objects[n] = first
    live = [n for n in names if n in lists]
    detail: dict[str, Any] = {"method": settings.method, "k": settings.k, "variants": names,
                              "lists": live}
    if page > 1 or draft_id != request_id:
        detail.update(page=page, draft=draft_id)
    if failed:
        detail["failed"] = failed
    if not live:  # no ranked list at all: the control's answer as it came
        source = next(n for n in [decision.variant, *names] if answers[n].ok)
        detail.update(items=[], teams=[], competitive=False, reason="no_list")
        return Merged(answers[source].data, source, extra={"teams": []}, detail=detail)
    total = settings.k * page
    extra_detail: dict[str, Any] = {}
    if len(live) == 1:
        only = live[0]
        shown = lists[only][total - settings.k:total]
        teams = [0] * len(shown)
        open_positions = list(range(len(shown)))
        offset, method = total - settings.k, "single"
    else:
        draft = interleave([lists[n] for n in live], settings.method, settings.k,
                           exp.salt, draft_id, fill=settings.fill, tau=settings.tau,
                           page=page)
        shown, teams, offset, method = list(draft.items), list(draft.teams), draft.offset, \
            draft.method
        open_positions = [i for i, c in enumerate(draft.competitive) if not c]
        if draft.probs:
            extra_detail["probs"] = [list(p) for p in draft.probs]
        if draft.ranks:
            extra_detail["ranks"] = [[*r] for r in draft.ranks]
    team_names = [live[t] for t in teams]
    heads = [lists[n][:total] for n in live]  # the lists are deduplicated already
    same = len(live) > 1 and all(h == heads[0] for h in heads[1:])
    competitive = len(live) > 1 and not same and len(open_positions) < len(shown)
    detail.update(method=method, items=shown, teams=team_names, competitive=competitive,
                  **extra_detail)
    if offset:
        detail["offset"] = offset
    if open_positions:
        detail["open"] = open_positions
    if not competitive:
        detail["reason"] = ("identical" if same else "empty" if not shown
                            else "one_sided" if len(live) > 1 else "failed")
    merged_items = [objects[v][d] for v, d in zip(team_names, shown, strict=True)]
    envelope = decision.variant if decision.variant in lists else live[0]
    data = with_items(answers[envelope].data, settings.list_key, merged_items)
    contributors = [n for n in live if n in set(team_names)] or [envelope]
    arm = "+".join(contributors)
    return Merged(data, arm if len(arm) <= 64 else envelope, extra={"teams": team_names},
                  detail=detail)


# --------------------------------------------------------------------------- clicks


def _resolve_clicks(rows: Sequence[Mapping[str, Any]], items: Sequence[str], mode: str
                    ) -> tuple[dict[int, float], Counter[str]]:
    """Clicked positions of the shown list with their weights (a position counts once, with
    the largest weight sent for it), and the clicks that could not count, by reason."""
    index = {d: i for i, d in enumerate(items)}
    out: dict[int, float] = {}
    bad: Counter[str] = Counter()
    for row in rows:
        label = row.get("label")
        if not isinstance(label, list):
            bad["malformed"] += 1
            continue
        for click in label:
            weight: Any = 1.0
            kind: str | None = None
            ref = click
            if isinstance(click, dict):
                weight = click.get("weight", 1.0)
                if "position" in click:
                    kind, ref = "position", click["position"]
                elif "item" in click:
                    kind, ref = "item", click["item"]
                else:
                    bad["malformed"] += 1
                    continue
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (
                    math.isfinite(weight) and weight >= 0):
                bad["malformed"] += 1
                continue
            is_int = isinstance(ref, int) and not isinstance(ref, bool)
            if kind is None:
                kind = ("position" if mode == "positions" else "item" if mode == "items"
                        else "position" if is_int else "item")
            if kind == "position":
                if not is_int:
                    bad["malformed"] += 1
                    continue
                if not 0 <= ref < len(items):
                    bad["unshown_position"] += 1
                    continue
                position = int(ref)
            else:
                if isinstance(ref, (dict, list, bool)) or ref is None:
                    bad["malformed"] += 1
                    continue
                found = index.get(canonical_id(ref, None))
                if found is None:
                    bad["unknown_item"] += 1
                    continue
                position = found
            if weight > 0:
                out[position] = max(out.get(position, 0.0), float(weight))
    return out, bad


# --------------------------------------------------------------------------- the report


def _pairs(exp: Experiment) -> list[tuple[str, str]]:
    """Every pair as (a, b) with a the later variant: (candidate, control) for two."""
    v = exp.variants
    return [(v[j], v[i]) for i in range(len(v)) for j in range(i + 1, len(v))]


def _key(a: str, b: str) -> str:
    return f"{a}_vs_{b}"


def _interval(i: Any) -> dict[str, float]:
    return {"estimate": i.estimate, "low": i.low, "high": i.high}


def _users(u: UserLevel) -> dict[str, Any]:
    return {"units": u.units, "wins": u.wins, "losses": u.losses, "ties": u.ties,
            "sign_p": u.sign_p, "mean_preference": u.mean, "t": u.t, "t_p": u.t_p,
            "delta": _interval(u.delta), "sequential_p": u.sequential_p, "error": u.error}


class Interleave(Strategy[InterleaveSettings]):
    name = "interleave"
    summary = ("rankers' lists merged per request; clicks credit the ranker that drafted "
               "the item")
    settings_type = InterleaveSettings
    min_variants = 2
    max_variants = 10

    # ------------------------------------------------------------ settings and routing

    def check(self, settings: InterleaveSettings, exp: Experiment) -> None:
        if settings.method != "team_draft" and len(exp.variants) > 2:
            raise SettingsError("interleave.method", f"{settings.method} interleaving "
                                "merges two lists; with more variants use team_draft "
                                "(multileaving)")
        for field in ("list_key", "item_key"):
            value = getattr(settings, field)
            if value is not None and (not value or any(not p for p in value.split("."))):
                raise SettingsError(f"interleave.{field}", "a key, or keys joined by dots")
        if (exp.auto.get("enabled") and settings.on_winner == "promote"
                and not all(exp.own_variant(v) for v in exp.variants)):
            raise SettingsError("interleave.on_winner", "automatic promotion needs every "
                                f"variant to be a version of {exp.endpoint!r}; use 'stop'")

    def policy(self, settings: InterleaveSettings, state: State, exp: Experiment
               ) -> RoutingPolicy:
        return InterleavePolicy(exp.variants, exp.salt, settings.percent)

    def merge(self, settings: InterleaveSettings, exp: Experiment, decision: RoutingDecision,
              request_id: str, answers: Mapping[str, Answer]) -> Merged:
        return _merge(settings, exp, decision, request_id, answers)

    def describe(self, settings: InterleaveSettings, state: State, exp: Experiment
                 ) -> dict[str, Any]:
        return {"interleave": self.dump(settings)}

    def promotable(self, settings: InterleaveSettings, state: State, exp: Experiment,
                   report: Mapping[str, Any] | None) -> str | None:
        return ((report or {}).get("decision") or {}).get("winner")

    # ------------------------------------------------------------ report

    def needs(self, settings: InterleaveSettings, state: State, exp: Experiment, now: float
              ) -> dict[str, dict[str, Any]]:
        return {"details": {"metric": "clicks", "limit": settings.max_impressions}}

    def report(self, settings: InterleaveSettings, state: State, exp: Experiment,
               stats: Mapping[str, Any], now: float, rng: np.random.Generator
               ) -> dict[str, Any]:
        details = stats.get("details") or {}
        rows = details.get("requests") or []
        feedback = details.get("feedback") or {}
        pairs = _pairs(exp)
        outcomes: dict[tuple[str, str], list[tuple[str, int]]] = {p: [] for p in pairs}
        expected: dict[tuple[str, str], list[float]] = {p: [] for p in pairs}
        first_ts: dict[tuple[str, str], list[float]] = {p: [] for p in pairs}
        counts: Counter[str] = Counter()
        not_competitive: Counter[str] = Counter()
        failures: Counter[str] = Counter()
        bad_clicks: Counter[str] = Counter()
        first_slot: Counter[str] = Counter()
        methods: Counter[str] = Counter()
        for imp in rows:
            d = imp["detail"]
            items = [str(x) for x in d.get("items") or []]
            teams = [str(x) for x in d.get("teams") or []]
            counts["total"] += 1
            for v in d.get("failed") or {}:
                failures[v] += 1
            clicks, bad = _resolve_clicks(feedback.get(imp["request_id"], []), items,
                                          settings.click_ids)
            if bad:
                bad_clicks.update(bad)
                counts["with_bad_clicks"] += 1
            if clicks:
                counts["clicked"] += 1
            if not d.get("competitive"):
                not_competitive[str(d.get("reason") or "one_sided")] += 1
                continue
            counts["competitive"] += 1
            method = str(d.get("method", "team_draft"))
            methods[method] += 1
            lists = [str(x) for x in d.get("lists") or []]
            if not d.get("offset") and teams and set(lists) == set(exp.variants):
                first_slot[teams[0]] += 1
            if not clicks:
                counts["no_signal"] += 1
                continue
            index = {n: i for i, n in enumerate(lists)}
            try:
                by_pair = pair_outcomes("team_draft" if method.startswith("team_draft")
                                        else method, [index.get(t, -1) for t in teams],
                                        len(lists), clicks, probs=d.get("probs") or (),
                                        ranks=d.get("ranks") or ())
            except (IndexError, KeyError, TypeError, ValueError):
                counts["unreadable"] += 1
                continue
            signal = False
            for (i, j), (o, e) in by_pair.items():
                if o is None:
                    continue
                signal = True
                a, b = lists[j], lists[i]  # report pairs: the later variant first
                if (a, b) not in outcomes:
                    continue
                outcomes[(a, b)].append((str(imp["unit"]), -o))
                expected[(a, b)].append(-e)
                first_ts[(a, b)].append(float(imp["ts"]))
            counts["with_signal" if signal else "no_signal"] += 1
        summaries = {p: summarise_pair(outcomes[p], exp.alpha, settings.n_star,
                                       expected[p] if methods.get("probabilistic") else None)
                     for p in pairs}
        body = self._body(settings, exp, summaries, counts, not_competitive, failures,
                          bad_clicks, first_slot, methods, details)
        body["view"] = _view(body, exp)
        out: dict[str, Any] = jsonable(body)
        return out

    def _body(self, settings: InterleaveSettings, exp: Experiment,
              summaries: Mapping[tuple[str, str], PairSummary], counts: Counter[str],
              not_competitive: Counter[str], failures: Counter[str], bad_clicks: Counter[str],
              first_slot: Counter[str], methods: Counter[str], details: Mapping[str, Any]
              ) -> dict[str, Any]:
        by_user = settings.decide_by == "user"
        deciding = [(s.users if by_user else s.impressions) for s in summaries.values()]
        p_deciding = [u.sign_p if by_user else s.sign_p
                      for u, s in zip(deciding, summaries.values(), strict=True)]
        adjusted = holm(p_deciding)
        n_needed = math.ceil(1.02 * sample_size(settings.min_win_rate, exp.alpha,
                                                settings.power))
        competitive = counts["competitive"]
        pair_rows: list[dict[str, Any]] = []
        for (pair, s), u, p_dec, p_adj in zip(summaries.items(), deciding, p_deciding,
                                              adjusted, strict=True):
            a, b = pair
            c = s.counts
            delta = u.delta if by_user else s.delta
            preferred = None
            if p_adj < exp.alpha and c.n:
                preferred = a if delta.estimate > 0 else b if delta.estimate < 0 else None
            have = u.wins + u.losses  # decisive units of the deciding test
            per_unit = (competitive / have) if have else None
            decisive_rate = (c.wins + c.losses) / c.n if c.n else None
            observed = (c.wins / (c.wins + c.losses)) if (c.wins + c.losses) else None
            pair_rows.append({
                "a": a, "b": b, "wins": c.wins, "losses": c.losses, "ties": c.ties,
                "impressions": c.n, "win_rate": observed,
                "delta": _interval(s.delta), "sign_p": s.sign_p,
                "users": _users(s.users),
                "expected_outcome": s.expected,
                "p_value": p_dec, "p_adjusted": p_adj,
                "significant": preferred is not None, "preferred": preferred,
                "sequential_p": u.sequential_p,
                "sample_size": {
                    "unit": settings.decide_by, "win_rate": settings.min_win_rate,
                    "power": settings.power, "decisive_needed": n_needed,
                    "decisive_have": have,
                    "impressions_needed": (math.ceil(max(n_needed - have, 0) * per_unit)
                                           if per_unit is not None else None),
                    "decisive_share": decisive_rate,
                    "at_observed_win_rate": (
                        math.ceil(1.02 * sample_size(observed, exp.alpha, settings.power))
                        if observed is not None and observed not in (0.0, 0.5, 1.0)
                        else None),
                },
            })
        health = srm_check([first_slot.get(v, 0) for v in exp.variants],
                           [1.0] * len(exp.variants), threshold=FIRST_SLOT_THRESHOLD)
        first = {
            "counts": {v: first_slot.get(v, 0) for v in exp.variants},
            "share": {v: (first_slot.get(v, 0) / sum(first_slot.values())
                          if first_slot else None) for v in exp.variants},
            "p_value": health.p_value,
            "fired": health.p_value < FIRST_SLOT_THRESHOLD and sum(first_slot.values()) >= 20,
            "threshold": FIRST_SLOT_THRESHOLD,
        }
        decision = _decide(exp, settings, pair_rows, first, counts)
        impressions = {
            "total": counts["total"], "competitive": competitive,
            "with_signal": counts["with_signal"], "no_signal": counts["no_signal"],
            "clicked": counts["clicked"],
            "not_competitive": dict(not_competitive),
            "failed": {v: failures.get(v, 0) for v in exp.variants},
            "unreadable": counts["unreadable"],
        }
        return {
            "interleave": self.dump(settings),
            "method": (max(methods, key=lambda m: methods[m]) if methods else
                       ("team_draft_multileave" if len(exp.variants) > 2 and
                        settings.method == "team_draft" else settings.method)),
            "impressions": impressions,
            "bad_clicks": {"total": sum(bad_clicks.values()), **dict(bad_clicks),
                           "impressions": counts["with_bad_clicks"]},
            "pairs": pair_rows,
            "first_slot": first,
            "decision": decision,
            "next_step": NEXT_STEP,
            "truncated": bool(details.get("truncated")),
            "logged_impressions": int(details.get("total") or counts["total"]),
        }

    # ------------------------------------------------------------ decisions

    def cadence(self, settings: InterleaveSettings, exp: Experiment) -> float | None:
        return 5.0 if exp.auto.get("enabled") else None

    def step(self, settings: InterleaveSettings, state: State, exp: Experiment,
             report: Mapping[str, Any], now: float) -> Step | None:
        if not exp.auto.get("enabled"):
            return None
        decision = report.get("decision") or {}
        winner = decision.get("winner")
        if not winner or not decision.get("auto_ready"):
            return None
        if int(decision.get("units") or 0) < int(exp.auto.get("min_units", 100)):
            return None
        reason = (f"automatic: {winner} preferred ({decision.get('reason', '')}); "
                  "next: an A/B test on business metrics")
        if settings.on_winner == "promote" and winner != exp.control and exp.own_variant(
                winner):
            return Step(action="stop", decision={"promote": winner}, reason=reason)
        return Step(action="stop", decision={"action": "keep", "preferred": winner},
                    reason=reason)

    def snapshot(self, report: Mapping[str, Any]) -> dict[str, Any] | None:
        imp = report.get("impressions") or {}
        point: dict[str, Any] = {"impressions": imp.get("total"),
                                 "with_signal": imp.get("with_signal"), "pairs": {},
                                 "first_slot": (report.get("first_slot") or {}).get("share")}
        by_user = (report.get("interleave") or {}).get("decide_by", "user") == "user"
        for p in report.get("pairs") or []:
            delta = (p.get("users") or {}).get("delta") if by_user else p.get("delta")
            point["pairs"][_key(p["a"], p["b"])] = {
                "wins": p.get("wins"), "losses": p.get("losses"), "ties": p.get("ties"),
                "delta": delta, "p": p.get("p_value")}
        return point


def _decide(exp: Experiment, settings: InterleaveSettings, pairs: Sequence[Mapping[str, Any]],
            first: Mapping[str, Any], counts: Counter[str]) -> dict[str, Any]:
    by_user = settings.decide_by == "user"
    level = "user" if by_user else "impression"
    units = max((int(p["users"]["units"] if by_user else p["impressions"]) for p in pairs),
                default=0)
    base: dict[str, Any] = {
        "winner": None, "auto_ready": False, "units": units,
        "test": f"{level}-level sign test at alpha {exp.alpha}"
                + (", Holm-corrected over the pairs" if len(pairs) > 1 else "")}
    if counts["total"] == 0:
        return {**base, "code": "no_impressions", "reason": "no impressions logged yet"}
    if first["fired"]:
        return {**base, "code": "first_slot", "reason": (
            f"first-slot check failed (p = {first['p_value']:.3g}): the teams do not open "
            "the list equally often; find the position bias before reading any result")}
    if not any(p["impressions"] for p in pairs):
        return {**base, "code": "no_signal",
                "reason": "no competitive impression with a click yet"}
    beats: dict[str, set[str]] = {v: set() for v in exp.variants}
    for p in pairs:
        if p["preferred"]:
            beats[p["preferred"]].add(p["b"] if p["preferred"] == p["a"] else p["a"])
    winner = next((v for v in exp.variants if beats[v] == set(exp.variants) - {v}), None)
    if winner is None:
        best = min(pairs, key=lambda p: p["p_adjusted"])
        return {**base, "code": "not_significant", "reason": (
            f"no variant preferred over {'every other' if len(pairs) > 1 else 'the other'} "
            f"yet (smallest deciding p = {best['p_adjusted']:.3g}, "
            f"{best['impressions']} impressions with signal)")}
    mine = [p for p in pairs if winner in (p["a"], p["b"])]
    deltas = [(1 if p["a"] == winner else -1)
              * (p["users"]["delta"] if by_user else p["delta"])["estimate"] for p in mine]
    if len(pairs) == 1:
        over = f"over {mine[0]['b'] if mine[0]['a'] == winner else mine[0]['a']}"
    else:
        over = "over every other variant"
    worst_p = max(p["p_adjusted"] for p in mine)
    seq = max(p["sequential_p"] for p in mine)
    return {**base, "winner": winner, "code": "winner", "auto_ready": seq < exp.alpha,
            "sequential_p": seq,
            "reason": (f"{winner} preferred {over} at the {level} level "
                       f"(Δ {min(deltas):+.3f}, p = {worst_p:.3g})")}


# --------------------------------------------------------------------------- the view


def _view(body: Mapping[str, Any], exp: Experiment) -> dict[str, Any]:
    imp = body["impressions"]
    decision = body["decision"]
    first = body["first_slot"]
    alerts = []
    if first["fired"]:
        alerts.append(alert("first_slot", "error", "First-slot check failed", (
            f"Each team should open the list half the time; counts {first['counts']} "
            f"(p = {first['p_value']:.3g} < {first['threshold']}). Something biases the "
            "positions (a client re-ordering the list, business rules after the merge): "
            "do not trust these results."), greys=("delta", "wins")))
    failed = {v: n for v, n in imp["failed"].items() if n}
    if failed:
        alerts.append(alert("failures", "warning", "Rankers failed", (
            "; ".join(f"{v} on {n} impressions" for v, n in failed.items())
            + ": the other lists were served alone; those impressions are counted, not "
            "credited.")))
    bad = body["bad_clicks"]
    if bad["total"]:
        kinds = ", ".join(f"{bad.get(k, 0)} {k.replace('_', ' ')}" for k in
                          ("unshown_position", "unknown_item", "malformed") if bad.get(k))
        alerts.append(alert("bad_clicks", "warning", "Clicks on items never shown", (
            f"{bad['total']} clicks in {bad['impressions']} impressions could not be "
            f"credited ({kinds}): a stale page or a client bug; they are ignored.")))
    if body["truncated"]:
        alerts.append(alert("truncated", "info", "Newest impressions only", (
            f"The report reads the newest {imp['total']} of {body['logged_impressions']} "
            "impressions (interleave.max_impressions).")))
    if not imp["total"]:
        alerts.append(alert("no_impressions", "info", "No impressions yet", (
            "Impressions are read from the request log (interleaved answers within the log's "
            "flush interval; none when the server runs with --no-request-log).")))
    pair_rows = []
    size_rows = []
    for p in body["pairs"]:
        u = p["users"]
        label = f"{p['a']} vs {p['b']}"
        pair_rows.append({
            "pair": label, "impressions": p["impressions"], "wins": p["wins"],
            "losses": p["losses"], "ties": p["ties"], "delta": p["delta"],
            "sign_p": p["sign_p"], "users": u["units"], "user_delta": u["delta"],
            "user_p": u["sign_p"], "t_p": u["t_p"], "p_adjusted": p["p_adjusted"],
            "preferred": p["preferred"] or "-"})
        s = p["sample_size"]
        size_rows.append({"pair": label, "unit": s["unit"], "win_rate": s["win_rate"],
                          "needed": s["decisive_needed"], "have": s["decisive_have"],
                          "more": s["impressions_needed"],
                          "observed": s["at_observed_win_rate"]})
    nc = imp["not_competitive"]
    count_rows = [
        {"what": "impressions", "n": imp["total"]},
        {"what": "competitive", "n": imp["competitive"]},
        {"what": "with signal (a click on a competitive impression)", "n": imp["with_signal"]},
        {"what": "no signal (no click)", "n": imp["no_signal"]},
        {"what": "not competitive: identical lists", "n": nc.get("identical", 0)},
        {"what": "not competitive: one list only (a ranker failed or was empty)",
         "n": sum(nc.get(k, 0) for k in ("one_sided", "failed", "no_list", "empty"))},
        {"what": "clicks that could not count", "n": body["bad_clicks"]["total"]},
    ] + [{"what": f"failed: {v}", "n": n} for v, n in imp["failed"].items()]
    charts = [
        chart("delta", "Cumulative preference Δ with its interval (above 0: the first of "
              "the pair)", "band",
              [{"label": f"{p['a']} vs {p['b']}",
                "path": f"pairs.{_key(p['a'], p['b'])}.delta.estimate",
                "low_path": f"pairs.{_key(p['a'], p['b'])}.delta.low",
                "high_path": f"pairs.{_key(p['a'], p['b'])}.delta.high"}
               for p in body["pairs"]], source="timeline"),
        chart("wins", "Wins over time", "line",
              [s for p in body["pairs"] for s in (
                  {"label": f"{p['a']} wins", "path": f"pairs.{_key(p['a'], p['b'])}.wins"},
                  {"label": f"{p['b']} wins", "path": f"pairs.{_key(p['a'], p['b'])}.losses"},
                  {"label": f"ties ({p['a']} vs {p['b']})",
                   "path": f"pairs.{_key(p['a'], p['b'])}.ties", "dashed": True})],
              source="timeline", y_format="int"),
        chart("first_slot", "First-slot share per team (expect equal)", "line",
              [{"label": v, "path": f"first_slot.{v}"} for v in exp.variants],
              source="timeline", y_format="pct"),
        chart("outcomes", "Outcomes per pair", "bar",
              [{"label": kind, "x": [f"{p['a']} vs {p['b']}" for p in body["pairs"]],
                "y": [p[key] for p in body["pairs"]]}
               for kind, key in (("first wins", "wins"), ("second wins", "losses"),
                                 ("ties", "ties"))], x_format="text", y_format="int"),
    ]
    if decision.get("winner"):
        headline = (f"{decision['reason']}; next: confirm with an A/B test on business "
                    "metrics")
    else:
        more = [p["sample_size"]["impressions_needed"] for p in body["pairs"]
                if p["sample_size"]["impressions_needed"] is not None]
        hint = (f"; about {max(more):,} more impressions for {body['interleave']['power']:.0%}"
                f" power at a {body['interleave']['min_win_rate']:.0%} win rate"
                if more and max(more) > 0 else "")
        headline = f"no winner yet: {decision['reason']}{hint}"
    return view(headline, alerts=alerts, charts=charts, tables=[
        table("pairs", "Preference per pair (Δ above 0: the first of the pair is preferred)", [
            column("pair", "pair"), column("impressions", "with signal", "int"),
            column("wins", "first wins", "int"), column("losses", "second wins", "int"),
            column("ties", "ties", "int"), column("delta", "Δ [CI]", "ci"),
            column("sign_p", "sign p", "p"), column("users", "users", "int"),
            column("user_delta", "user Δ [CI]", "ci"), column("user_p", "user sign p", "p"),
            column("t_p", "user t p", "p"), column("p_adjusted", "deciding p (Holm)", "p"),
            column("preferred", "preferred")], pair_rows),
        table("impressions", "Impressions", [column("what", "impressions"),
                                            column("n", "count", "int")], count_rows),
        table("sample_size", "Sample size for the deciding test", [
            column("pair", "pair"), column("unit", "unit"),
            column("win_rate", "win rate", "pct"), column("needed", "decisive needed", "int"),
            column("have", "decisive so far", "int"),
            column("more", "impressions still needed", "int"),
            column("observed", "decisive needed at the observed rate", "int")], size_rows),
    ])


register(Interleave())
