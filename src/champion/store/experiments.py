"""Experiments in the store: their rows, transitions, shadow answers and report inputs."""

from __future__ import annotations

import math
import operator
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import sqlalchemy as sa

from champion.latency import quantiles
from champion.store import schema as t
from champion.store.leases import Fence, LeaseMixin
from champion.store.ledger import chunks

_SHADOW_COLUMNS = ("request_id", "arm", "experiment", "ts", "variant", "status", "latency_ms",
                   "output", "error")
_SHADOW_ROW = operator.itemgetter(*_SHADOW_COLUMNS)  # an event dict -> its row, in C

Row = dict[str, Any]

ACTIVE = ("running", "paused")


# On PostgreSQL, feedback is summed into a process's reward tally only up to the highest id
# seen this long ago: ids come from a sequence when a row is written, and a transaction
# that commits later than that after its id was drawn would be missed by the tally (until
# it is begun again). SQLite writes one transaction at a time: there, up to the last id.
REWARD_FOLD_LAG_S = 300.0
SQLITE_FOLD_LAG_S = 0.0
MAX_TALLIES = 64  # experiments x metrics whose tallies a process keeps (the least recent go)

_ARM_ZERO = {"n": 0, "sum": 0.0, "sum_sq": 0.0, "min": None, "max": None, "non_binary": 0,
             "late": 0, "n_before": 0, "sum_before": 0.0}


def _sum_when(cond: Any, value: Any) -> Any:
    return sa.func.sum(sa.case((cond, value), else_=0))


def _reward_figures(on_time: Any) -> list[Any]:
    """The aggregates of a group of rewards: on time, their count, sum, sum of squares, min,
    max and how many are not 0 or 1; and how many came late."""
    f, one = t.feedback, sa.literal(1)
    return [_sum_when(on_time, one), _sum_when(on_time, f.c.value),
            _sum_when(on_time, f.c.value * f.c.value),
            sa.func.min(sa.case((on_time, f.c.value), else_=None)),
            sa.func.max(sa.case((on_time, f.c.value), else_=None)),
            _sum_when(sa.and_(on_time, f.c.value.not_in([0.0, 1.0])), one),
            _sum_when(sa.not_(on_time), one)]


class _Tally:
    """One experiment's rewards of one metric and window, summed by the minute their requests
    were served in and arm, for the feedback rows up to id ``folded``."""

    def __init__(self, deleted: str | None) -> None:
        self.deleted = deleted  # the store's mark of feedback deleted, when it was begun
        self.folded = 0  # rows with an id up to this one are in the cells
        self.seen: list[tuple[float, int]] = []  # (when, the highest id then), oldest first
        # (minute, arm) -> [n, sum, sum_sq, min, max, non_binary], on-time rewards only
        self.cells: dict[tuple[int, str], list[Any]] = {}
        self.late: dict[str, int] = defaultdict(int)

    def add(self, minute: int, arm: str, figures: Any) -> None:
        n, s, ss, lo, hi, nb, late = figures
        self.late[arm] += int(late or 0)
        if not n:
            return
        cell = self.cells.get((minute, arm))
        if cell is None:
            self.cells[(minute, arm)] = [int(n), float(s or 0.0), float(ss or 0.0),
                                         float(lo), float(hi), int(nb or 0)]
            return
        cell[0] += int(n)
        cell[1] += float(s or 0.0)
        cell[2] += float(ss or 0.0)
        cell[3] = min(cell[3], float(lo))
        cell[4] = max(cell[4], float(hi))
        cell[5] += int(nb or 0)

    def merged(self, recent: Row, edge: dict[str, tuple[int, float]], cutoff: float,
               period: int) -> Row:
        """What the tally holds, plus ``recent`` (the rewards of rows after ``folded``, read
        whole) and ``edge`` (its rewards served in the minute ``cutoff``
        falls in, before it), in ``arm_rewards``' shape."""
        whole = math.floor(cutoff / 60) * 60  # the minutes before it are all before cutoff
        arms: dict[str, Row] = {arm: dict(_ARM_ZERO, late=late)
                                for arm, late in self.late.items()}
        periods: dict[tuple[int, str], list[Any]] = {}
        for (minute, arm), (n, s, ss, lo, hi, nb) in self.cells.items():
            a = arms.setdefault(arm, dict(_ARM_ZERO))
            a["n"] += n
            a["sum"] += s
            a["sum_sq"] += ss
            a["min"] = lo if a["min"] is None else min(a["min"], lo)
            a["max"] = hi if a["max"] is None else max(a["max"], hi)
            a["non_binary"] += nb
            if minute < whole:
                a["n_before"] += n
                a["sum_before"] += s
            cell = periods.setdefault((minute - minute % period, arm), [0, 0.0, 0.0])
            cell[0] += n
            cell[1] += s
            cell[2] += ss
        for arm, (n, s) in edge.items():
            a = arms.setdefault(arm, dict(_ARM_ZERO))
            a["n_before"] += n
            a["sum_before"] += s
        for arm, r in recent["arms"].items():
            a = arms.setdefault(arm, dict(_ARM_ZERO))
            for k in ("n", "sum", "sum_sq", "non_binary", "late", "n_before", "sum_before"):
                a[k] += r[k]
            for k, pick in (("min", min), ("max", max)):
                if r[k] is not None:
                    a[k] = r[k] if a[k] is None else pick(a[k], r[k])
        for p, arm, n, s, ss in recent["periods"]:
            cell = periods.setdefault((p, arm), [0, 0.0, 0.0])
            cell[0] += n
            cell[1] += s
            cell[2] += ss
        return {"arms": arms,
                "periods": [[p, arm, n, s, ss] for (p, arm), (n, s, ss) in sorted(periods.items())],
                "newest": recent["newest"]}


class ExperimentConflict(Exception):
    """Another experiment is already active on the endpoint."""


class StateConflict(Exception):
    """The experiment's state moved since it was read (another writer won)."""


class ExperimentStoreMixin(LeaseMixin):
    engine: sa.Engine
    log_engine: sa.Engine
    _tallies: dict[tuple[str, str, str, float], _Tally]
    _tally_lock: threading.Lock

    def get_meta(self, key: str) -> str | None:
        """Provided by Store."""
        raise NotImplementedError

    def write(self, engine: sa.Engine | None = None, *, wait: bool = True) -> Any:
        """Provided by Store."""
        raise NotImplementedError

    @staticmethod
    def _bump(conn: sa.Connection) -> None:  # provided by Store
        raise NotImplementedError

    def create_experiment(self, row: Row, actor: str) -> None:
        with self.write() as conn:
            conn.execute(sa.insert(t.experiments).values(**row))
            conn.execute(sa.insert(t.experiment_events).values(
                experiment_id=row["id"], ts=row["created_at"], actor=actor, action="create",
                from_status=None, to_status=row["status"], reason="", detail={}))
            self._bump(conn)

    def get_experiment(self, experiment_id: str) -> Row | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.experiments).where(t.experiments.c.id == experiment_id)
            ).mappings().first()
        return dict(row) if row else None

    def list_experiments(self, endpoint: str | None = None,
                         status: str | None = None) -> list[Row]:
        q = sa.select(t.experiments).order_by(t.experiments.c.created_at.desc())
        if endpoint is not None:
            q = q.where(t.experiments.c.endpoint == endpoint)
        if status is not None:
            q = q.where(t.experiments.c.status == status)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def active_experiments(self) -> list[Row]:
        q = sa.select(t.experiments).where(t.experiments.c.active_endpoint.is_not(None))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def transition_experiment(
        self,
        experiment_id: str,
        expect: tuple[str, ...],
        to_status: str,
        actor: str,
        action: str,
        reason: str = "",
        detail: dict[str, Any] | None = None,
        *,
        decision: dict[str, Any] | None = None,
        state: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
        fence: Fence | None = None,
    ) -> Row:
        """Move an experiment between states, recording who, when and why.

        Raises LookupError when it is not in one of ``expect`` and ExperimentConflict when
        another experiment is active on the same endpoint; with a ``fence``, LeaseLost when
        the writer no longer holds the lease.
        """
        now = time.time()
        e = t.experiments
        with self.write() as conn:
            self.check_fence(conn, fence)
            row = conn.execute(sa.select(e).where(e.c.id == experiment_id)).mappings().first()
            if row is None:
                raise KeyError(experiment_id)
            if row["status"] not in expect:
                raise LookupError(row["status"])
            values: dict[str, Any] = {
                "status": to_status,
                "active_endpoint": row["endpoint"] if to_status in ACTIVE else None,
            }
            if to_status == "running" and row["started_at"] is None:
                values["started_at"] = now
            if to_status == "stopped":
                values["stopped_at"] = now
            if decision is not None:
                values["decision"] = decision
            if state is not None:
                values["state"] = state
                values["state_version"] = row["state_version"] + 1
            if config is not None:
                values["config"] = config
            try:
                with conn.begin_nested():
                    conn.execute(sa.update(e).where(e.c.id == experiment_id).values(**values))
            except sa.exc.IntegrityError:
                raise ExperimentConflict(row["endpoint"]) from None
            conn.execute(sa.insert(t.experiment_events).values(
                experiment_id=experiment_id, ts=now, actor=actor, action=action,
                from_status=row["status"], to_status=to_status, reason=reason,
                detail=detail or {}))
            self._bump(conn)
            return {**dict(row), **values}

    def update_experiment_state(
        self,
        experiment_id: str,
        expect_version: int,
        state: dict[str, Any],
        actor: str,
        event: str | None = None,
        reason: str = "",
        detail: dict[str, Any] | None = None,
        *,
        fence: Fence | None = None,
    ) -> int:
        """Replace the hot state if it is still at ``expect_version``; the new version.

        Does not bump the registry generation: processes follow state versions on their own.
        Raises StateConflict when another writer moved the state first (nothing changes).
        """
        now = time.time()
        e = t.experiments
        with self.write() as conn:
            self.check_fence(conn, fence)
            updated = conn.execute(
                sa.update(e)
                .where(e.c.id == experiment_id, e.c.state_version == expect_version)
                .values(state=state, state_version=expect_version + 1)
            ).rowcount
            if not updated:
                raise StateConflict(experiment_id)
            if event is not None:
                status = conn.execute(sa.select(e.c.status).where(e.c.id == experiment_id)
                                      ).scalar_one()
                conn.execute(sa.insert(t.experiment_events).values(
                    experiment_id=experiment_id, ts=now, actor=actor, action=event,
                    from_status=status, to_status=status, reason=reason, detail=detail or {}))
            return expect_version + 1

    def update_experiment_config(
        self,
        experiment_id: str,
        expect_version: int,
        config: dict[str, Any],
        state: dict[str, Any],
        actor: str,
        event: str,
        reason: str = "",
        detail: dict[str, Any] | None = None,
    ) -> int:
        """Replace the config and the hot state together if the state is still at
        ``expect_version`` (a change of variants or settings while it exists); the new
        version, which every process follows as it follows any state change. Raises
        StateConflict when another writer moved the state first."""
        now = time.time()
        e = t.experiments
        with self.write() as conn:
            updated = conn.execute(
                sa.update(e)
                .where(e.c.id == experiment_id, e.c.state_version == expect_version)
                .values(config=config, state=state, state_version=expect_version + 1)
            ).rowcount
            if not updated:
                raise StateConflict(experiment_id)
            status = conn.execute(sa.select(e.c.status).where(e.c.id == experiment_id)
                                  ).scalar_one()
            conn.execute(sa.insert(t.experiment_events).values(
                experiment_id=experiment_id, ts=now, actor=actor, action=event,
                from_status=status, to_status=status, reason=reason, detail=detail or {}))
            self._bump(conn)
            return expect_version + 1

    def active_state_versions(self) -> dict[str, int]:
        """Experiment id -> state version, for every running or paused experiment."""
        e = t.experiments
        q = sa.select(e.c.id, e.c.state_version).where(e.c.active_endpoint.is_not(None))
        with self.engine.connect() as conn:
            return {i: int(v) for i, v in conn.execute(q)}

    # ------------------------------------------------------------ timeline

    def add_snapshot(self, experiment_id: str, ts: float, point: dict[str, Any], *,
                     fence: Fence | None = None) -> None:
        with self.write() as conn:
            self.check_fence(conn, fence)
            conn.execute(sa.insert(t.experiment_snapshots).values(
                experiment_id=experiment_id, ts=ts, point=point))

    def snapshots(self, experiment_id: str, since: float | None = None,
                  limit: int = 2000) -> list[Row]:
        """Timeline points, oldest first (at most the newest ``limit`` of them)."""
        s = t.experiment_snapshots
        q = sa.select(s.c.ts, s.c.point).where(s.c.experiment_id == experiment_id)
        if since is not None:
            q = q.where(s.c.ts >= since)
        q = q.order_by(s.c.ts.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = [{"ts": float(ts), **(point or {})} for ts, point in conn.execute(q)]
        return rows[::-1]

    def last_snapshot_at(self, experiment_id: str) -> float | None:
        s = t.experiment_snapshots
        q = sa.select(sa.func.max(s.c.ts)).where(s.c.experiment_id == experiment_id)
        with self.engine.connect() as conn:
            value = conn.execute(q).scalar()
        return None if value is None else float(value)

    def experiment_events(self, experiment_id: str) -> list[Row]:
        q = (sa.select(t.experiment_events)
             .where(t.experiment_events.c.experiment_id == experiment_id)
             .order_by(t.experiment_events.c.id))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    # ------------------------------------------------------------ shadow answers

    def insert_shadow_events(self, rows: list[Row], *, wait: bool = True) -> None:
        if rows:
            with self.write(self.log_engine, wait=wait) as conn:
                # the DB-API's executemany, as for the request log: SQLAlchemy's compiled
                # insert cost ~6 us a row on the server's loop (py-spy, 100 % shadow)
                mark = "%s" if conn.dialect.name == "postgresql" else "?"
                conn.exec_driver_sql(
                    f"INSERT INTO shadow_events ({', '.join(_SHADOW_COLUMNS)}) "
                    f"VALUES ({', '.join([mark] * len(_SHADOW_COLUMNS))})",
                    list(map(_SHADOW_ROW, rows)))

    def shadow_pairs(self, experiment_id: str, limit: int = 100_000) -> list[Row]:
        """Live and shadow answers of the same requests, newest first, with any label."""
        r, s, f = t.requests, t.shadow_events, t.feedback
        label = (sa.select(f.c.label)
                 .where(f.c.request_id == r.c.request_id, f.c.metric == "label")
                 .limit(1).scalar_subquery())
        q = (
            sa.select(s.c.arm, r.c.output.label("live_output"), s.c.output.label("shadow_output"),
                      r.c.latency_ms.label("live_ms"), s.c.latency_ms.label("shadow_ms"),
                      r.c.status.label("live_status"), s.c.status.label("shadow_status"),
                      label.label("label"))
            .select_from(s.join(r, r.c.request_id == s.c.request_id))
            .where(s.c.experiment == experiment_id)
            .order_by(s.c.ts.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            result = conn.execute(q)
            keys = list(result.keys())
            # plain tuples zipped into dicts: a RowMapping per row cost half the report's
            # time at 70,000 pairs
            return [dict(zip(keys, x, strict=True)) for x in result.tuples()]

    # ------------------------------------------------------------ report inputs

    def arm_rows(self, experiment_id: str, arms: Iterable[str], since: float,
                 until: float | None = None, *, chunk: int = 20_000
                 ) -> Iterator[list[tuple[str, float, int, float]]]:
        """The experiment's logged requests of ``arms`` with ``since <= ts < until``, in
        chunks, each arm's in order of time: ``(arm, ts, status, latency_ms)``. One range of
        the (experiment, arm, ts) index per arm; what the canary's window cache folds in
        once (registry/windows.py)."""
        r = t.requests
        with self.engine.connect() as conn:
            for arm in arms:
                q = (sa.select(r.c.arm, r.c.ts, r.c.status, r.c.latency_ms)
                     .where(r.c.experiment == experiment_id, r.c.arm == arm, r.c.ts >= since,
                            *([] if until is None else [r.c.ts < until]))
                     .order_by(r.c.ts))
                result = conn.execution_options(yield_per=chunk).execute(q)
                for part in result.partitions():
                    yield [tuple(x) for x in part]

    def arm_window_metrics(self, experiment_id: str, endpoint: str, since: float,
                           metrics: list[str], *, until: float | None = None
                           ) -> dict[str, dict[str, Row]]:
        """Per arm and feedback metric, over requests from ``since`` (to ``until``): the
        sum, the sum of squares and whether every value was 0 or 1."""
        if not metrics:
            return {}
        r, f = t.requests, t.feedback
        in_window = [r.c.experiment == experiment_id, r.c.arm.is_not(None), r.c.ts >= since]
        if until is not None:
            in_window.append(r.c.ts < until)
        sums = (sa.func.sum(f.c.value), sa.func.sum(f.c.value * f.c.value),
                sa.func.sum(sa.case((f.c.value.in_([0.0, 1.0]), 0), else_=1)))
        wanted = [f.c.deployment == endpoint, f.c.metric.in_(metrics), f.c.value.is_not(None)]
        # Feedback credited by what its request id carried (its log row may be lost), then
        # feedback of ids that carried nothing, through the log.
        arm = sa.func.coalesce(f.c.arm, r.c.arm)
        served = sa.func.coalesce(f.c.served_at, r.c.ts)
        when = [served >= since] + ([served < until] if until is not None else [])
        by_id = (sa.select(arm, f.c.metric, *sums)
                 .select_from(f.outerjoin(r, r.c.request_id == f.c.request_id))
                 .where(f.c.experiment == experiment_id, *when, *wanted)
                 .group_by(arm, f.c.metric))
        by_log = (sa.select(r.c.arm, f.c.metric, *sums)
                  .select_from(f.join(r, r.c.request_id == f.c.request_id))
                  .where(f.c.experiment.is_(None), *in_window, *wanted)
                  .group_by(r.c.arm, f.c.metric))
        out: dict[str, dict[str, Row]] = defaultdict(dict)
        with self.engine.connect() as conn:
            for q in (by_id, by_log):
                for name, metric, total, total_sq, non_binary in conn.execute(q):
                    if name is None:
                        continue
                    cell = out[name].setdefault(metric, {"sum": 0.0, "sum_sq": 0.0,
                                                         "binary": True})
                    cell["sum"] += float(total or 0.0)
                    cell["sum_sq"] += float(total_sq or 0.0)
                    cell["binary"] = cell["binary"] and not non_binary
        return dict(out)

    def arm_units_since(self, experiment_id: str, since: float) -> dict[str, int]:
        """Per arm: distinct units with a request at or after ``since`` (a request without
        a unit is its own).

        From the per-arm units (each with the minute of its newest request) and totals the
        log's writer keeps; the log itself only for the minute ``since`` falls in (an index
        range). Counting distinct units over every log row since a re-weighting cost a
        second at a million rows, at every timeline point. Equal to that count
        (tests/unit/test_store.py)."""
        a, u, r = t.arm_totals, t.arm_units, t.requests
        edge = int(since // 60) * 60  # minutes after it are whole
        out: dict[str, int] = defaultdict(int)
        later = (sa.select(u.c.arm, sa.func.count())
                 .where(u.c.experiment == experiment_id, u.c.minute > edge).group_by(u.c.arm))
        anonymous = (sa.select(a.c.arm, sa.func.sum(a.c.anonymous))
                     .where(a.c.experiment == experiment_id, a.c.minute > edge)
                     .group_by(a.c.arm))
        arms = sa.select(a.c.arm).where(a.c.experiment == experiment_id).distinct()
        with self.engine.connect() as conn:
            for q in (later, anonymous):
                for arm, n in conn.execute(q):
                    out[arm] += int(n or 0)
            for (arm,) in conn.execute(arms).all():
                # the edge minute, arm by arm (an index range each): units whose newest
                # request is in it count if one is at or after since (those with a newer
                # one are counted above), and so does each request without a unit
                in_edge = [r.c.experiment == experiment_id, r.c.arm == arm, r.c.ts >= since,
                           r.c.ts < edge + 60]
                named = (sa.select(sa.func.count(sa.distinct(r.c.unit)))
                         .select_from(r.join(u, sa.and_(u.c.experiment == r.c.experiment,
                                                        u.c.arm == r.c.arm,
                                                        u.c.unit == r.c.unit)))
                         .where(*in_edge, u.c.minute == edge))
                lone = sa.select(sa.func.count()).where(*in_edge, r.c.unit.is_(None))
                out[arm] += int(conn.execute(named).scalar() or 0)
                out[arm] += int(conn.execute(lone).scalar() or 0)
        return {arm: n for arm, n in out.items() if n}

    def arm_exposure(self, experiment_id: str) -> dict[str, Row]:
        """Per arm: requests, units (a request without a unit is its own), errors, latency.

        From the per-arm totals, units and latency histogram the log's writer keeps
        (``arm_totals``, ``arm_units``, ``rollup_arms``), not from the log itself: a report
        costs the same at the thousandth request and the hundred millionth."""
        a, u, h = t.arm_totals, t.arm_units, t.rollup_arms
        totals = (sa.select(a.c.arm, sa.func.sum(a.c.requests), sa.func.sum(a.c.errors),
                            sa.func.sum(a.c.latency_sum), sa.func.sum(a.c.anonymous))
                  .where(a.c.experiment == experiment_id).group_by(a.c.arm))
        named = (sa.select(u.c.arm, sa.func.count()).where(u.c.experiment == experiment_id)
                 .group_by(u.c.arm))
        hist = (sa.select(h.c.arm, h.c.bin, sa.func.sum(h.c.count))
                .where(h.c.experiment == experiment_id).group_by(h.c.arm, h.c.bin))
        out: dict[str, Row] = {}
        bins: dict[str, dict[int, int]] = defaultdict(dict)
        with self.engine.connect() as conn:
            units = {arm: int(n) for arm, n in conn.execute(named)}
            for arm, n, errors, latency_sum, anonymous in conn.execute(totals):
                n = int(n or 0)
                if not n:
                    continue
                out[arm] = {"requests": n, "units": int(anonymous or 0) + units.get(arm, 0),
                            "errors": int(errors or 0),
                            "latency_ms": {"mean": float(latency_sum) / n}}
            for arm, b, count in conn.execute(hist):
                bins[arm][b] = int(count)
        for arm, row in out.items():
            p50, p90, p99 = quantiles(bins.get(arm, {}), (0.5, 0.9, 0.99))
            row["latency_ms"].update(p50=p50, p90=p90, p99=p99)
        return out

    def arm_unit_metrics(self, experiment_id: str, endpoint: str, *,
                         settled_before: float | None = None) -> list[Row]:
        """Per arm, unit and metric: the sum, max, whether every value was 0 or 1, and
        whether the unit's request is in the log (``logged``: False when feedback came for
        a request whose log row was lost; the unit is then not in ``arm_exposure``).

        ``settled_before``: feedback for a request served after it and not yet in the log
        is left out, since its row is most likely still on its way (the log is written in
        batches): counted now, it would be a unit of its own, without the unit's other
        feedback or covariate, and then counted again under its unit once the row lands."""
        r, f = t.requests, t.feedback
        aggregates = (sa.func.sum(f.c.value), sa.func.max(f.c.value),
                      sa.func.sum(sa.case((f.c.value.in_([0.0, 1.0]), 0), else_=1)))
        # Credited by what the request id carried, whether or not its log row survived (a
        # request whose row is lost is its own unit, unless the feedback named one) ...
        arm = sa.func.coalesce(f.c.arm, r.c.arm)
        unit_any = sa.func.coalesce(r.c.unit, r.c.request_id, f.c.unit, f.c.request_id)
        logged = sa.case((r.c.request_id.is_(None), 0), else_=1)
        by_id = (
            sa.select(arm, unit_any.label("unit"), f.c.metric, *aggregates,
                      sa.func.max(logged))
            .select_from(f.outerjoin(r, r.c.request_id == f.c.request_id))
            .where(f.c.experiment == experiment_id, arm.is_not(None),
                   f.c.deployment == endpoint, f.c.value.is_not(None),
                   *([] if settled_before is None else [sa.or_(
                       r.c.request_id.is_not(None),
                       sa.func.coalesce(f.c.served_at, 0.0) < settled_before)]))
            .group_by(arm, unit_any, f.c.metric)
        )
        # ... and, for ids that carried nothing (the first format), through the log.
        unit = sa.func.coalesce(r.c.unit, r.c.request_id)
        by_log = (
            sa.select(r.c.arm, unit.label("unit"), f.c.metric, *aggregates, sa.literal(1))
            .select_from(f.join(r, r.c.request_id == f.c.request_id))
            .where(f.c.experiment.is_(None), r.c.experiment == experiment_id,
                   r.c.arm.is_not(None), f.c.deployment == endpoint, f.c.value.is_not(None))
            .group_by(r.c.arm, unit, f.c.metric)
        )
        cells: dict[tuple[str, str, str], Row] = {}
        with self.engine.connect() as conn:
            for q in (by_id, by_log):
                for a, u, m, total, mx, nb, in_log in conn.execute(q):
                    cell = cells.get((a, u, m))
                    if cell is None:
                        cells[(a, u, m)] = {"arm": a, "unit": u, "metric": m,
                                            "sum": float(total), "max": float(mx),
                                            "non_binary": int(nb), "logged": bool(in_log)}
                    else:
                        cell["sum"] += float(total)
                        cell["max"] = max(cell["max"], float(mx))
                        cell["non_binary"] += int(nb)
                        cell["logged"] = cell["logged"] or bool(in_log)
        return list(cells.values())

    def unit_covariate(self, endpoint: str, metric: str) -> dict[str, float]:
        """Per unit: the value of a pre-period covariate sent as unit feedback."""
        f = t.feedback
        q = (sa.select(f.c.unit, sa.func.sum(f.c.value))
             .where(f.c.deployment == endpoint, f.c.metric == metric,
                    f.c.unit.is_not(None), f.c.request_id.is_(None))
             .group_by(f.c.unit))
        with self.engine.connect() as conn:
            return {u: float(v) for u, v in conn.execute(q)}

    def arm_units(self, experiment_id: str) -> list[tuple[str, str]]:
        """(arm, unit) of every unit exposed (for CUPED), a request without unit its own."""
        r = t.requests
        unit = sa.func.coalesce(r.c.unit, r.c.request_id)
        q = (sa.select(r.c.arm, unit).where(r.c.experiment == experiment_id,
                                            r.c.arm.is_not(None)).distinct())
        with self.engine.connect() as conn:
            return [(a, u) for a, u in conn.execute(q)]

    def merged_requests(self, experiment_id: str, endpoint: str, metric: str,
                        limit: int = 50_000) -> Row:
        """The answered requests of an experiment that kept a ``detail`` (merged answers),
        the newest ``limit`` of them oldest first (``request_id``, ``ts``, ``unit``: a
        request without one is its own, ``detail``), how many there are in all, and per
        request id the feedback rows of ``metric`` (``label``, ``value``, ``ts``)."""
        r, f = t.requests, t.feedback
        unit = sa.func.coalesce(r.c.unit, r.c.request_id)
        kept = [r.c.experiment == experiment_id, r.c.detail.is_not(None), r.c.status == 200]
        q = (sa.select(r.c.request_id, r.c.ts, unit.label("unit"), r.c.detail)
             .where(*kept).order_by(r.c.ts.desc()).limit(limit))
        q_total = sa.select(sa.func.count()).select_from(r).where(*kept)
        with self.engine.connect() as conn:
            rows = [{"request_id": rid, "ts": float(ts), "unit": u, "detail": d}
                    for rid, ts, u, d in conn.execute(q)][::-1]
            total = int(conn.execute(q_total).scalar() or 0)
            # the feedback of these requests only, by their ids (an index lookup each): a
            # join read the feedback of every merged answer the experiment ever had. The
            # endpoint and metric are matched here, not in SQL, where SQLite's planner took
            # the (deployment, unit) index for them and read the deployment's feedback
            # once per chunk.
            feedback: dict[str, list[Row]] = defaultdict(list)
            for chunk in chunks([x["request_id"] for x in rows], 500):
                q_feedback = (sa.select(f.c.request_id, f.c.deployment, f.c.metric, f.c.label,
                                        f.c.value, f.c.ts)
                              .where(f.c.request_id.in_(chunk)).order_by(f.c.id))
                for rid, dep, m, label, value, ts in conn.execute(q_feedback):
                    if dep == endpoint and m == metric:
                        feedback[rid].append({"label": label, "value": value,
                                              "ts": float(ts)})
        return {"requests": rows, "total": total, "feedback": dict(feedback)}

    # ------------------------------------------------------------ rewards credited by id

    def arm_rewards(self, experiment_id: str, endpoint: str, metric: str, *,
                    window_seconds: float, cutoff: float, period: int = 3600,
                    newest: int = 0) -> Row:
        """One metric's feedback credited to the experiment's arms by the request ids
        themselves (the rows' ``experiment`` and ``arm``; no join with the request log).

        A reward is *on time* when it came at most ``window_seconds`` after its request was
        served, else *late* (counted, not used). Gives ``arms``: per arm the on-time
        ``n``, ``sum``, ``sum_sq``, ``min``, ``max``, ``non_binary`` (values not 0 or 1),
        ``late``, and ``n_before`` / ``sum_before`` (rewards of requests served before
        ``cutoff``); ``periods``: ``[start, arm, n, sum, sum_sq]`` per ``period`` seconds of
        serving time; ``newest``: ``[arm, value]`` of the ``newest`` on-time rewards, the
        most recently served first.

        A bandit asks at every update, and reading every reward took 1.7 s at a million:
        feedback rows are summed once, by the minute their requests were served in, into a
        tally this process keeps (``_Tally``, up to an id: see ``REWARD_FOLD_LAG_S``); a
        call reads only the rows after it, and the rewards served in the minute ``cutoff``
        falls in. A period that is not whole minutes reads everything, as does the first
        call and the first after retention deleted feedback. Equal to the sums over the
        feedback itself (tests/unit/test_store.py)."""
        if int(period) < 60 or int(period) % 60:
            return self._rewards_scan(experiment_id, endpoint, metric, window_seconds, cutoff,
                                      period, newest)
        key = (experiment_id, endpoint, metric, float(window_seconds))
        with self._tally_lock:
            deleted = self.get_meta("feedback_deleted")
            tally = self._tallies.get(key)
            if tally is None or tally.deleted != deleted:
                tally = _Tally(deleted)
            self._tallies.pop(key, None)  # the most recently used last; the oldest go first
            self._tallies[key] = tally
            while len(self._tallies) > MAX_TALLIES:
                del self._tallies[next(iter(self._tallies))]
            self._fold(tally, experiment_id, endpoint, metric, float(window_seconds))
            recent = self._rewards_scan(experiment_id, endpoint, metric, window_seconds,
                                        cutoff, period, newest, after=tally.folded)
            return tally.merged(recent, self._edge_rewards(
                experiment_id, endpoint, metric, window_seconds, cutoff, tally.folded),
                cutoff, int(period))

    def _reward_filters(self, experiment_id: str, endpoint: str, metric: str, *,
                        by_id: bool = False) -> list[Any]:
        """The rows of the experiment's rewards of ``metric``. ``by_id``: written so that
        no index on those columns applies (``coalesce`` of each), for a query that reads a
        range of ids: the database then walks the primary key from the range's start, not
        every reward of the experiment (0.3 s at a million)."""
        f = t.feedback

        def col(c: Any) -> Any:
            return sa.func.coalesce(c, "") if by_id else c

        return [col(f.c.experiment) == experiment_id, col(f.c.metric) == metric,
                col(f.c.deployment) == endpoint, f.c.value.is_not(None), f.c.arm.is_not(None),
                f.c.served_at.is_not(None)]

    def _served_second(self) -> Any:
        """The whole second a request was served in: PostgreSQL's cast rounds (SQLite's
        truncates, which for a time after 1970 is the floor)."""
        served_at = t.feedback.c.served_at
        return sa.cast(sa.func.floor(served_at) if self.engine.dialect.name == "postgresql"
                       else served_at, sa.Integer)

    def _fold(self, tally: _Tally, experiment_id: str, endpoint: str, metric: str,
              window_seconds: float) -> None:
        """Add to ``tally`` the rows after its ``folded`` id, up to the highest id seen
        ``REWARD_FOLD_LAG_S`` ago (on SQLite, now)."""
        f = t.feedback
        now = time.monotonic()
        with self.engine.connect() as conn:
            tally.seen.append((now, int(conn.execute(sa.select(sa.func.max(f.c.id))).scalar()
                                        or 0)))
        lag = SQLITE_FOLD_LAG_S if self.engine.dialect.name == "sqlite" else REWARD_FOLD_LAG_S
        upto = tally.folded
        while tally.seen and tally.seen[0][0] <= now - lag:
            upto = max(upto, tally.seen.pop(0)[1])
        if upto <= tally.folded:
            return
        on_time = (f.c.ts - f.c.served_at) <= window_seconds
        served = self._served_second()
        minute = served - served % 60
        where = [*self._reward_filters(experiment_id, endpoint, metric, by_id=True),
                 f.c.id > tally.folded, f.c.id <= upto]
        q = (sa.select(minute, f.c.arm, *_reward_figures(on_time))
             .where(*where).group_by(minute, f.c.arm))
        with self.engine.connect() as conn:
            for row in conn.execute(q):
                tally.add(int(row[0]), row[1], row[2:])
        tally.folded = upto

    def _edge_rewards(self, experiment_id: str, endpoint: str, metric: str,
                      window_seconds: float, cutoff: float, folded: int
                      ) -> dict[str, tuple[int, float]]:
        """Per arm, the on-time rewards the tally holds (rows up to id ``folded``) of
        requests served in the minute ``cutoff`` falls in and before it: ``(n, sum)``."""
        edge = math.floor(cutoff / 60) * 60
        if cutoff <= edge or not folded:
            return {}
        f = t.feedback
        q = (sa.select(f.c.arm, sa.func.count(), sa.func.sum(f.c.value))
             .where(*self._reward_filters(experiment_id, endpoint, metric),
                    f.c.served_at >= edge, f.c.served_at < cutoff, f.c.id <= folded,
                    (f.c.ts - f.c.served_at) <= window_seconds)
             .group_by(f.c.arm))
        with self.engine.connect() as conn:
            return {arm: (int(n), float(s or 0.0)) for arm, n, s in conn.execute(q)}

    def _rewards_scan(self, experiment_id: str, endpoint: str, metric: str,
                      window_seconds: float, cutoff: float, period: int, newest: int, *,
                      after: int = 0) -> Row:
        """``arm_rewards`` summed over the feedback itself: all of it, or only the rows
        after id ``after`` (``newest`` always reads all)."""
        f = t.feedback
        base = self._reward_filters(experiment_id, endpoint, metric, by_id=bool(after))
        on_time = (f.c.ts - f.c.served_at) <= window_seconds
        before = f.c.served_at < cutoff
        out: Row = {"arms": {}, "periods": [], "newest": []}
        served = self._served_second()
        start = served - served % max(int(period), 1)
        recent = [f.c.id > after] if after else []
        with self.engine.connect() as conn:
            # one pass over the experiment's feedback, by period and arm; the arms' figures are
            # the periods' summed (two passes, one per grouping, took twice as long: 3.05 s
            # against 1.73 s at a million rewards)
            q = (sa.select(
                start.label("p"), f.c.arm, *_reward_figures(on_time),
                _sum_when(sa.and_(on_time, before), sa.literal(1)),
                _sum_when(sa.and_(on_time, before), f.c.value))
                .where(*base, *recent).group_by("p", f.c.arm).order_by("p", f.c.arm))
            arms: dict[str, Row] = out["arms"]
            for p, arm, n, s, ss, lo, hi, nb, late, n_before, s_before in conn.execute(q):
                n, s, ss = int(n or 0), float(s or 0.0), float(ss or 0.0)
                if n:
                    out["periods"].append([int(p), arm, n, s, ss])
                a = arms.setdefault(arm, dict(_ARM_ZERO))
                a["n"] += n
                a["sum"] += s
                a["sum_sq"] += ss
                if lo is not None:
                    a["min"] = float(lo) if a["min"] is None else min(a["min"], float(lo))
                if hi is not None:
                    a["max"] = float(hi) if a["max"] is None else max(a["max"], float(hi))
                a["non_binary"] += int(nb or 0)
                a["late"] += int(late or 0)
                a["n_before"] += int(n_before or 0)
                a["sum_before"] += float(s_before or 0.0)
            if newest > 0:
                # by the experiment's index, newest served first
                q3 = (sa.select(f.c.arm, f.c.value)
                      .where(*self._reward_filters(experiment_id, endpoint, metric), on_time)
                      .order_by(f.c.served_at.desc(), f.c.id.desc()).limit(newest))
                out["newest"] = [[arm, float(v)] for arm, v in conn.execute(q3)]
        return out

    def arm_pulls(self, experiment_id: str, *, cutoff: float, recent_since: float) -> Row:
        """Per arm, from the record of serving: ``requests``, ``errors`` (5xx), ``answered``
        (status below 400, so a reward may come), ``answered_before`` (of those, served
        before ``cutoff``) and ``recent`` (requests since ``recent_since``).

        Read from the per-minute ``arm_totals`` the log's writer keeps, and from the log only
        for the minute ``cutoff`` falls in and the ``recent`` seconds (index ranges): a
        bandit asks at every update, and summing every log row of the experiment took 0.5 s
        at a million requests. Equal to those sums over the log (tests/unit/test_store.py).
        """
        a, r = t.arm_totals, t.requests
        edge = int(cutoff // 60) * 60  # minutes before it are whole; the rest is in the log
        answered = a.c.requests - a.c.errors - a.c.rejected
        q = (sa.select(a.c.arm, sa.func.sum(a.c.requests), sa.func.sum(a.c.errors),
                       sa.func.sum(answered),
                       sa.func.sum(sa.case((a.c.minute < edge, answered), else_=0)))
             .where(a.c.experiment == experiment_id).group_by(a.c.arm))
        out: Row = {}
        with self.engine.connect() as conn:
            for arm, n, e, ok, old in conn.execute(q):
                out[arm] = {"requests": int(n), "errors": int(e or 0), "answered": int(ok or 0),
                            "answered_before": int(old or 0), "recent": 0}
            for arm, row in out.items():
                mine = [r.c.experiment == experiment_id, r.c.arm == arm]
                if cutoff > edge:
                    row["answered_before"] += int(conn.execute(
                        sa.select(sa.func.count()).where(
                            *mine, r.c.ts >= edge, r.c.ts < cutoff, r.c.status < 400)
                    ).scalar() or 0)
                row["recent"] = int(conn.execute(
                    sa.select(sa.func.count()).where(*mine, r.c.ts >= recent_since)
                ).scalar() or 0)
        return out
