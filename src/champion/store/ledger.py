"""The request log, the feedback ledger and their rollups: the store's event half."""

from __future__ import annotations

import functools
import itertools
import math
import operator
import secrets
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from champion.analysis.report_shadow import prediction_of
from champion.latency import bin_of, quantiles
from champion.store import schema as t

Row = dict[str, Any]

REQUEST_COLUMNS = ("request_id", "ts", "deployment", "version", "target", "status",
                   "latency_ms", "batch_size", "unit", "experiment", "arm", "variant", "input",
                   "output", "error", "detail")
_REQUEST_ROW = operator.itemgetter(*REQUEST_COLUMNS)  # an event dict -> its row, in C
_NONES = (None,) * len(REQUEST_COLUMNS)


def _by_columns(rows: Sequence[Row]) -> dict[tuple[bool, ...], list[tuple[Any, ...]]]:
    """The rows as tuples, grouped by which of their values are not NULL.

    Each group is inserted naming only those columns: the rest are NULL (or their default)
    without being bound. Python's sqlite3 binds a None through its adaptation protocol, two
    attribute look-ups a value; with the 6-9 NULLs of a typical event that was more than half
    of the insert's cost (7.3 against 3.2 µs a row, measured on this machine's 2-core VM).
    A batch has a handful of shapes (with or without payloads, an experiment, an error).
    """
    groups: dict[tuple[bool, ...], list[tuple[Any, ...]]] = {}
    for row in map(_REQUEST_ROW, rows):
        shape = tuple(map(operator.is_not, row, _NONES))
        group = groups.get(shape)
        if group is None:
            groups[shape] = [row]
        else:
            group.append(row)
    return groups


def _project(shape: tuple[bool, ...], group: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The group's rows cut to the columns its shape keeps."""
    if all(shape):
        return group
    keep = tuple(itertools.compress(range(len(shape)), shape))
    return [tuple(row[i] for i in keep) for row in group] if len(keep) == 1 else list(
        map(operator.itemgetter(*keep), group))


@functools.cache
def _insert_sql(shape: tuple[bool, ...], mark: str) -> str:
    columns = list(itertools.compress(REQUEST_COLUMNS, shape))
    return (f"INSERT INTO requests ({', '.join(columns)}) "
            f"VALUES ({', '.join([mark] * len(columns))})")


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


@functools.cache
def _upsert(table: str, keys: tuple[str, ...], sums: tuple[str, ...], mark: str) -> str:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE`` adding ``sums`` to the stored row's
    (SQLite 3.24+ and PostgreSQL read the same statement)."""
    columns = (*keys, *sums)
    return (f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join([mark] * len(columns))}) "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
            + ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in sums))


# a unit seen again keeps the newest minute (retention drops units not seen since)
_UNITS_UPSERT = ("INSERT INTO arm_units (experiment, arm, unit, minute) VALUES (?, ?, ?, ?) "
                 "ON CONFLICT (experiment, arm, unit) DO UPDATE SET minute = CASE WHEN "
                 "excluded.minute > arm_units.minute THEN excluded.minute "
                 "ELSE arm_units.minute END")


def chunks(rows: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


class LedgerMixin:
    engine: sa.Engine
    log_engine: sa.Engine
    writer: str  # this process's rollup key (Store sets it)

    def write(self, engine: sa.Engine | None = None, *, wait: bool = True) -> Any:
        """Provided by Store."""
        raise NotImplementedError

    # ------------------------------------------------------------ request log

    def insert_requests(self, rows: Sequence[Row], *, wait: bool = True) -> None:
        """Append request events and fold them into the per-minute rollups, atomically
        (``wait=False``: raise StoreBusy rather than wait for the write lock)."""
        if not rows:
            return
        writer = self.writer
        minutes: dict[tuple[str, int, int], list[float]] = defaultdict(lambda: [0, 0, 0.0])
        bins: dict[tuple[str, int, int, int], int] = defaultdict(int)
        arm_bins: dict[tuple[str, str, int, int], int] = defaultdict(int)
        arm_totals: dict[tuple[str, str, int], list[float]] = defaultdict(
            lambda: [0, 0, 0.0, 0, 0])
        arm_units: dict[tuple[str, str, str], int] = {}
        for r in rows:  # each row's minute and latency bin worked out once
            latency = r["latency_ms"]
            status = r["status"]
            minute = int(r["ts"] // 60) * 60
            b = bin_of(latency)
            key = (r["deployment"], r["version"] or 0, minute)
            agg = minutes[key]
            agg[0] += 1
            agg[1] += status >= 500
            agg[2] += latency
            bins[(*key, b)] += 1
            experiment, arm = r["experiment"], r["arm"]
            if experiment and arm:
                exp_arm_minute = (experiment, arm, minute)
                arm_bins[(*exp_arm_minute, b)] += 1
                totals = arm_totals[exp_arm_minute]
                totals[0] += 1
                totals[1] += status >= 500
                totals[4] += 400 <= status < 500
                totals[2] += latency
                unit = r["unit"]
                if unit is None:
                    totals[3] += 1
                else:  # rows come in order of time: the last one's minute is the newest
                    arm_units[(experiment, arm, unit)] = minute
        with self.write(self.log_engine, wait=wait) as conn:
            # The DB-API's executemany directly: SQLAlchemy's per-row parameter handling
            # cost more than the write itself on the request log's hot path.
            mark = "%s" if conn.dialect.name == "postgresql" else "?"
            for shape, group in _by_columns(rows).items():
                conn.exec_driver_sql(_insert_sql(shape, mark), _project(shape, group))
            # the rollups likewise: one prepared upsert each, the same text on both stores
            conn.exec_driver_sql(
                _upsert("rollup_minutes", ("writer", "deployment", "version", "minute"),
                        ("requests", "errors", "latency_sum"), mark),
                [(writer, d, v, mi, a[0], a[1], a[2]) for (d, v, mi), a in minutes.items()])
            conn.exec_driver_sql(
                _upsert("rollup_latency", ("writer", "deployment", "version", "minute", "bin"),
                        ("count",), mark),
                [(writer, d, v, mi, b, c) for (d, v, mi, b), c in bins.items()])
            if arm_bins:
                conn.exec_driver_sql(
                    _upsert("rollup_arms", ("writer", "experiment", "arm", "minute", "bin"),
                            ("count",), mark),
                    [(writer, e, arm, mi, b, c) for (e, arm, mi, b), c in arm_bins.items()])
                conn.exec_driver_sql(
                    _upsert("arm_totals", ("writer", "experiment", "arm", "minute"),
                            ("requests", "errors", "latency_sum", "anonymous", "rejected"),
                            mark),
                    [(writer, e, arm, mi, *a) for (e, arm, mi), a in arm_totals.items()])
            if arm_units:
                conn.exec_driver_sql(_UNITS_UPSERT.replace("?", mark),
                                     [(*k, mi) for k, mi in arm_units.items()])

    def _request_query(
        self,
        deployment: str,
        since: float | None = None,
        until: float | None = None,
        version: int | None = None,
        status: int | None = None,
        experiment: str | None = None,
        unit: str | None = None,
    ) -> sa.Select[Any]:
        r = t.requests
        q = sa.select(r).where(r.c.deployment == deployment)
        if since is not None:
            q = q.where(r.c.ts >= since)
        if until is not None:
            q = q.where(r.c.ts < until)
        if version is not None:
            q = q.where(r.c.version == version)
        if status is not None:
            q = q.where(r.c.status == status) if status >= 100 else q.where(
                r.c.status >= status * 100, r.c.status < status * 100 + 100)
        if experiment is not None:
            q = q.where(r.c.experiment == experiment)
        if unit is not None:
            q = q.where(r.c.unit == unit)
        return q

    def query_requests(
        self,
        deployment: str,
        limit: int = 100,
        since: float | None = None,
        after: tuple[float, str] | None = None,
        version: int | None = None,
        status: int | None = None,
        newest_first: bool = True,
        *,
        until: float | None = None,
        experiment: str | None = None,
        unit: str | None = None,
        with_feedback: bool = False,
    ) -> list[Row]:
        r = t.requests
        q = self._request_query(deployment, since, until, version, status, experiment, unit)
        if after is not None:
            ts, rid = after
            q = q.where(sa.or_(r.c.ts > ts, sa.and_(r.c.ts == ts, r.c.request_id > rid)))
        order = (r.c.ts.desc(), r.c.request_id.desc()) if newest_first else (
            r.c.ts.asc(), r.c.request_id.asc())
        q = q.order_by(*order).limit(limit)
        with self.engine.connect() as conn:
            rows = [dict(x) for x in conn.execute(q).mappings()]
            if with_feedback and rows:
                self._attach_feedback(conn, rows)
        return rows

    @staticmethod
    def _attach_feedback(conn: sa.Connection, rows: list[Row]) -> None:
        f = t.feedback
        by_id = {row["request_id"]: row for row in rows}
        for row in rows:
            row["feedback"] = {}
        for chunk in chunks(list(by_id), 500):
            q = sa.select(f.c.request_id, f.c.metric, f.c.value, f.c.label).where(
                f.c.request_id.in_(chunk))
            for rid, metric, value, label in conn.execute(q):
                by_id[rid]["feedback"][metric] = (
                    value if label is None else orjson.loads(label))

    def iter_requests(self, deployment: str, *, chunk: int = 5000, with_feedback: bool = True,
                      **filters: Any) -> Iterator[list[Row]]:
        """Every matching request, oldest first, in chunks (for exports)."""
        after: tuple[float, str] | None = None
        while True:
            rows = self.query_requests(deployment, chunk, after=after, newest_first=False,
                                       with_feedback=with_feedback, **filters)
            if not rows:
                return
            yield rows
            if len(rows) < chunk:
                return
            after = (rows[-1]["ts"], rows[-1]["request_id"])

    # ------------------------------------------------------------ feedback

    def insert_feedback(self, items: Sequence[Row]) -> list[bool]:
        """Store feedback; returns, per item, whether it was new (False: a duplicate)."""
        if not items:
            return []
        stored: set[tuple[str, str]] = set()
        cols = ("ts", "deployment", "request_id", "unit", "metric", "value", "label", "dedup",
                "experiment", "arm", "version", "served_at")
        with self.write() as conn:
            mark = "%s" if conn.dialect.name == "postgresql" else "?"
            row_marks = "(" + ", ".join([mark] * len(cols)) + ")"
            for chunk in chunks(items, 1000):
                # Raw SQL: SQLAlchemy's compilation of a 1000-row VALUES took longer than
                # the insert itself.
                sql = (f"INSERT INTO feedback ({', '.join(cols)}) VALUES "
                       + ", ".join([row_marks] * len(chunk))
                       + " ON CONFLICT (deployment, dedup, metric) DO NOTHING"
                       " RETURNING dedup, metric")
                params = tuple(item.get(c) for item in chunk for c in cols)
                for dedup, metric in conn.exec_driver_sql(sql, params):
                    stored.add((dedup, metric))
        fresh: list[bool] = []
        for item in items:
            key = (item["dedup"], item["metric"])
            if item["dedup"] is None:
                fresh.append(True)
            elif key in stored:
                stored.discard(key)  # a repeat within this batch is a duplicate
                fresh.append(True)
            else:
                fresh.append(False)
        return fresh

    def feedback_rows(self, deployment: str, *, request_id: str | None = None,
                      unit: str | None = None, limit: int = 1000) -> list[Row]:
        f = t.feedback
        q = sa.select(f).where(f.c.deployment == deployment)
        if request_id is not None:
            q = q.where(f.c.request_id == request_id)
        if unit is not None:
            q = q.where(f.c.unit == unit)
        q = q.order_by(f.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [dict(x) for x in conn.execute(q).mappings()]

    # ------------------------------------------------------------ metrics

    def metrics(self, deployment: str, since: float, until: float, bucket: int) -> Row:
        """Per version and time bucket: requests, errors, latency percentiles, feedback."""
        bucket = max(60, int(bucket) // 60 * 60)
        lo = int(since // 60) * 60
        hi = int(math.ceil(until / 60) * 60)
        m, lat, f, r = t.rollup_minutes, t.rollup_latency, t.feedback, t.requests
        # Integer bucketing with % (SQLAlchemy 2's / is true division; FLOOR is not in
        # every SQLite build).
        b_expr = m.c.minute - m.c.minute % bucket
        series: dict[int, dict[int, Row]] = defaultdict(dict)
        totals: dict[int, Row] = {}
        bins_by: dict[tuple[int, int], dict[int, int]] = defaultdict(dict)
        bins_total: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))

        def slot(version: int, start: int) -> Row:
            cell = series[version].get(start)
            if cell is None:
                cell = series[version][start] = {
                    "start": start, "requests": 0, "errors": 0, "latency_sum": 0.0,
                    "feedback": {}, "labels": 0, "correct": 0,
                }
            return cell

        with self.engine.connect() as conn:
            q = (
                sa.select(m.c.version, b_expr.label("b"), sa.func.sum(m.c.requests),
                          sa.func.sum(m.c.errors), sa.func.sum(m.c.latency_sum))
                .where(m.c.deployment == deployment, m.c.minute >= lo, m.c.minute < hi)
                .group_by(m.c.version, "b")
            )
            for version, start, n, errors, lat_sum in conn.execute(q):
                cell = slot(version, int(start))
                cell["requests"] += int(n)
                cell["errors"] += int(errors)
                cell["latency_sum"] += float(lat_sum)
            lb = lat.c.minute - lat.c.minute % bucket
            q2 = (
                sa.select(lat.c.version, lb.label("b"), lat.c.bin, sa.func.sum(lat.c.count))
                .where(lat.c.deployment == deployment, lat.c.minute >= lo, lat.c.minute < hi)
                .group_by(lat.c.version, "b", lat.c.bin)
            )
            for version, start, b, count in conn.execute(q2):
                bins_by[(version, int(start))][b] = int(count)
                bins_total[version][b] += int(count)
            ts_int = sa.cast(r.c.ts, sa.Integer)
            rb = ts_int - ts_int % bucket
            # Feedback counts in the bucket and version of the request it is about, as its
            # request id carried them (its log row may have been lost in a hard kill), else
            # as the log has them.
            served = sa.func.coalesce(f.c.served_at, r.c.ts)
            served_int = sa.cast(served, sa.Integer)
            fb = served_int - served_int % bucket
            version_of = sa.func.coalesce(f.c.version, r.c.version)
            q3 = (
                sa.select(version_of, fb.label("b"), f.c.metric, sa.func.count(f.c.value),
                          sa.func.sum(f.c.value), sa.func.sum(f.c.value * f.c.value))
                .select_from(f.outerjoin(r, r.c.request_id == f.c.request_id))
                .where(f.c.deployment == deployment, f.c.request_id.is_not(None),
                       f.c.ts >= since, served >= since, served < until,
                       f.c.value.is_not(None))
                .group_by(version_of, "b", f.c.metric)
            )
            for version, start, metric, n, value_sum, value_sq in conn.execute(q3):
                cell = slot(version or 0, int(start))
                cell["feedback"][metric] = {"count": int(n), "sum": float(value_sum),
                                            "sum_sq": float(value_sq)}
            q4 = (
                sa.select(r.c.version, rb.label("b"), r.c.output, f.c.label)
                .select_from(f.join(r, r.c.request_id == f.c.request_id))
                .where(f.c.deployment == deployment, f.c.metric == "label", f.c.ts >= since,
                       r.c.ts >= since, r.c.ts < until, r.c.status == 200)
            )
            for version, start, output, label in conn.execute(q4):
                cell = slot(version or 0, int(start))
                cell["labels"] += 1
                try:
                    predicted = prediction_of(orjson.loads(output)) if output else None
                except orjson.JSONDecodeError:
                    predicted = None
                cell["correct"] += predicted == orjson.loads(label)
            q5 = (
                sa.select(f.c.metric, sa.func.count(f.c.value), sa.func.sum(f.c.value))
                .where(f.c.deployment == deployment, f.c.request_id.is_(None),
                       f.c.ts >= since, f.c.ts < until, f.c.value.is_not(None))
                .group_by(f.c.metric)
            )
            unit_feedback = {
                metric: {"count": int(n), "mean": float(s) / int(n) if n else None}
                for metric, n, s in conn.execute(q5)
            }

        def finish(cell: Row, bins: dict[int, int]) -> Row:
            n = cell["requests"]
            p50, p90, p99 = quantiles(bins, (0.5, 0.9, 0.99))
            feedback = {
                k: {"count": v["count"], "mean": v["sum"] / v["count"] if v["count"] else None,
                    "sum": v["sum"], "sum_sq": v["sum_sq"]}
                for k, v in sorted(cell["feedback"].items())
            }
            out = {
                "requests": n,
                "errors": cell["errors"],
                "error_rate": cell["errors"] / n if n else None,
                "latency_ms": {"mean": cell["latency_sum"] / n if n else None,
                               "p50": p50, "p90": p90, "p99": p99},
                "feedback": feedback,
                "accuracy": ({"labels": cell["labels"],
                              "accuracy": cell["correct"] / cell["labels"]}
                             if cell["labels"] else None),
            }
            if "start" in cell:
                out = {"start": cell["start"], **out}
            return out

        result_series = []
        for version in sorted(series):
            cells = series[version]
            total: Row = {"requests": 0, "errors": 0, "latency_sum": 0.0, "feedback": {},
                          "labels": 0, "correct": 0}
            for cell in cells.values():
                total["requests"] += cell["requests"]
                total["errors"] += cell["errors"]
                total["latency_sum"] += cell["latency_sum"]
                total["labels"] += cell["labels"]
                total["correct"] += cell["correct"]
                for k, v in cell["feedback"].items():
                    agg = total["feedback"].setdefault(k, {"count": 0, "sum": 0.0, "sum_sq": 0.0})
                    for key in agg:
                        agg[key] += v[key]
            totals[version] = finish(total, bins_total.get(version, {}))
            result_series.append({
                "version": version or None,
                "totals": totals[version],
                "buckets": [finish(cells[s], bins_by.get((version, s), {}))
                            for s in sorted(cells)],
            })
        return {
            "deployment": deployment,
            "since": since,
            "until": until,
            "bucket": bucket,
            "versions": result_series,
            "unit_feedback": unit_feedback,
        }

    # ------------------------------------------------------------ retention

    def delete_events_before(self, cutoff: float, batch: int = 5000) -> int:
        """Delete one bounded batch of events older than ``cutoff``; returns rows deleted."""
        r, f = t.requests, t.feedback
        deleted = 0
        with self.write() as conn:
            ids = sa.select(r.c.request_id).where(r.c.ts < cutoff).limit(batch).scalar_subquery()
            deleted += conn.execute(sa.delete(r).where(r.c.request_id.in_(ids))).rowcount or 0
        with self.write() as conn:
            fids = sa.select(f.c.id).where(f.c.ts < cutoff).limit(batch).scalar_subquery()
            gone = conn.execute(sa.delete(f).where(f.c.id.in_(fids))).rowcount or 0
            if gone:  # every process's reward tallies (arm_rewards) are begun again
                conn.execute(sa.update(t.meta).where(t.meta.c.key == "feedback_deleted")
                             .values(value=secrets.token_hex(8)))
            deleted += gone
        minute = int(cutoff // 60) * 60
        with self.write() as conn:
            s = t.shadow_events
            sids = sa.select(s.c.request_id).where(s.c.ts < cutoff).limit(batch).scalar_subquery()
            deleted += conn.execute(sa.delete(s).where(s.c.request_id.in_(sids))).rowcount or 0
        with self.write() as conn:
            for table in (t.rollup_minutes, t.rollup_latency, t.rollup_arms, t.arm_totals,
                          t.arm_units):
                deleted += conn.execute(
                    sa.delete(table).where(table.c.minute < minute)).rowcount or 0
        return deleted
