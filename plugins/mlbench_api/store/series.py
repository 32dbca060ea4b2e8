"""Writing and reading metric series, with server-side downsampling in SQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Connection, func, select, text, type_coerce
from sqlalchemy.orm import Session

from mlbench_api.store.models import Metric, from_micros, to_micros, utcnow
from mlbench_core.api.schemas import MetricIn

Points = list[dict[str, Any]]
MICROS = type_coerce(Metric.date, BigInteger)

# One averaged point per time bucket. Each bucket is an index range scan of the covering
# index (owner, name, date, value, cumulative) feeding a streaming aggregate: no sort, no
# temporary table. A bucket is cumulative when its first point is (as the original mlbench
# server summarized): one index seek per bucket. PostgreSQL computes both averages in one
# LATERAL subquery per bucket; SQLite has no LATERAL, so it gets two scalar subqueries
# (measured on 1,000,000 points: bench/ingest.py).
_BUCKETS = """
WITH RECURSIVE bucket(i) AS (
  SELECT CAST(0 AS BIGINT) UNION ALL SELECT i + 1 FROM bucket WHERE i + 1 < :n
)
"""
_IN_BUCKET = """metrics WHERE {owner} = :owner AND name = :name
  AND date >= :t0 + :span * i / :n AND date < :t0 + :span * (i + 1) / :n"""
_FIRST_CUMULATIVE = f"(SELECT cumulative FROM {_IN_BUCKET} ORDER BY date LIMIT 1)"
_BUCKETS_SQL = {
    "postgresql": _BUCKETS
    + f"""SELECT a.t, a.v, {_FIRST_CUMULATIVE} FROM bucket, LATERAL (
  SELECT avg(date) AS t, avg(value) AS v FROM {_IN_BUCKET}) AS a
ORDER BY i""",
    "sqlite": _BUCKETS
    + f"""SELECT (SELECT avg(date) FROM {_IN_BUCKET}), (SELECT avg(value) FROM {_IN_BUCKET}),
  {_FIRST_CUMULATIVE}
FROM bucket ORDER BY i""",
}

# Distinct series names of one owner by skipping through the index (a loose index scan):
# one index seek per name instead of a scan of every point.
_NAMES_SQL = """
WITH RECURSIVE series(name) AS (
  SELECT min(name) FROM metrics WHERE {owner} = :owner
  UNION ALL
  SELECT (SELECT min(name) FROM metrics WHERE {owner} = :owner AND name > series.name)
  FROM series WHERE series.name IS NOT NULL
)
SELECT name FROM series WHERE name IS NOT NULL
"""


def metric_row(item: MetricIn, now: datetime) -> dict[str, Any]:
    """The ``metrics`` table row of ``item`` (dated ``now`` when it has no date)."""
    return {
        "run_id": item.run_id,
        "pod_name": item.pod_name,
        "name": item.name,
        "date": to_micros(item.date or now),
        "value": item.value,
        "cumulative": item.cumulative,
        "metadata": item.metadata,
    }


def add_metric(session: Session, item: MetricIn) -> Metric:
    """Store one metric; the caller commits."""
    row = metric_row(item, utcnow())
    row["meta"] = row.pop("metadata")
    row["date"] = from_micros(row["date"])
    metric = Metric(**row)
    session.add(metric)
    session.flush()
    return metric


COPY_COLUMNS = ("run_id", "pod_name", "name", "date", "value", "cumulative", "metadata")
COPY_MIN_ROWS = 50


def add_metrics(session: Session, items: Sequence[MetricIn]) -> int:
    """Store many metrics in the caller's transaction.

    PostgreSQL gets ``COPY`` (about 2.5x the rows/s of multi-row INSERTs here); other
    databases multi-row INSERTs.
    """
    now = utcnow()
    rows = [metric_row(item, now) for item in items]
    connection = session.connection()
    if connection.dialect.name == "postgresql" and len(rows) >= COPY_MIN_ROWS:
        _copy(connection, rows)
    else:
        session.execute(Metric.__table__.insert(), rows)
    return len(rows)


def _copy(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """COPY ``rows`` in CSV, where an unquoted empty field is NULL (the schemas turn empty
    strings into None, so no stored text is ever empty)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(
            [
                "t" if v is True else "f" if v is False else "" if v is None else v
                for v in (row[c] for c in COPY_COLUMNS)
            ]
        )
    buffer.seek(0)
    sql = f"COPY metrics ({', '.join(COPY_COLUMNS)}) FROM STDIN WITH (FORMAT csv)"
    with connection.connection.dbapi_connection.cursor() as cursor:
        cursor.copy_expert(sql, buffer)


class SeriesReader:
    """Reads the series of one owner: a run (``run_id``) or a pod (``pod_name``)."""

    def __init__(self, session: Session, *, run_id: int | None = None, pod_name: str | None = None):
        if (run_id is None) == (pod_name is None):
            raise ValueError("exactly one of run_id and pod_name")
        self.session = session
        self.owner: int | str = run_id if run_id is not None else pod_name  # type: ignore[assignment]
        self.owner_column = "run_id" if run_id is not None else "pod_name"

    def _is_owner(self) -> ColumnElement[bool]:
        column = Metric.run_id if self.owner_column == "run_id" else Metric.pod_name
        return column == self.owner

    def names(self) -> list[str]:
        sql = text(_NAMES_SQL.format(owner=self.owner_column))
        return list(self.session.execute(sql, {"owner": self.owner}).scalars())

    def read(
        self,
        *,
        since: datetime | None = None,
        name: str | None = None,
        summarize: int | None = None,
        last_n: int | None = None,
        metadata: bool = False,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> dict[str, Points]:
        """Series name -> ``[{date, value, cumulative}]`` in date order (with ``metadata``,
        points that have metadata also carry it; points averaged by ``summarize`` have none).

        ``since`` keeps points strictly newer than it, ``not_before`` and ``not_after`` those
        dated within them (both included: a run's lifetime); ``last_n`` the newest N points
        of each series; ``summarize`` then averages consecutive points (date and value) into
        at most N equal time buckets per series, each cumulative when its first point is;
        a series of at most N points comes back unchanged.
        """
        bounds = (since, not_before, not_after)
        names = [name] if name is not None else self.names()
        out: dict[str, Points] = {}
        for series in names:
            points = self._read_one(series, bounds, summarize, last_n, metadata)
            if points:
                out[series] = points
        return out

    def _read_one(
        self,
        name: str,
        bounds: tuple[datetime | None, datetime | None, datetime | None],
        summarize: int | None,
        last_n: int | None,
        metadata: bool = False,
    ) -> Points:
        since, not_before, not_after = bounds
        where = [self._is_owner(), Metric.name == name]
        if since is not None:
            where.append(MICROS > to_micros(since))
        if not_before is not None:
            where.append(MICROS >= to_micros(not_before))
        if not_after is not None:
            where.append(MICROS <= to_micros(not_after))
        if last_n is not None:
            newest = (
                select(MICROS).where(*where).order_by(MICROS.desc()).offset(last_n - 1).limit(1)
            )
            boundary = self.session.execute(newest).scalar()
            if boundary is not None:
                where.append(MICROS >= boundary)
        columns = [MICROS, Metric.value, Metric.cumulative]
        if metadata:
            columns.append(Metric.meta)
        raw = select(*columns).where(*where).order_by(MICROS)
        if summarize is None:
            return _points(self.session.execute(raw))
        head = self.session.execute(raw.limit(summarize + 1)).all()
        if len(head) <= summarize:
            return _points(head)
        # The buckets span the first to the last point kept by ``where``: every bound above
        # is a date range, so the points between them are exactly those ``where`` keeps.
        t0 = head[0][0]
        t1 = self.session.execute(select(func.max(MICROS)).where(*where)).scalar()
        params = {"owner": self.owner, "name": name, "t0": t0, "span": t1 - t0 + 1, "n": summarize}
        dialect = self.session.get_bind().dialect.name
        template = _BUCKETS_SQL.get(dialect, _BUCKETS_SQL["sqlite"])
        sql = text(template.format(owner=self.owner_column))
        return _points(row for row in self.session.execute(sql, params) if row[0] is not None)


def _points(rows: Any) -> Points:
    """Rows of (micros, value, cumulative[, metadata]) as points."""
    points = []
    for row in rows:
        point = {
            "date": from_micros(round(row[0])),
            "value": float(row[1]),
            "cumulative": bool(row[2]),
        }
        if len(row) > 3 and row[3] is not None:
            point["metadata"] = row[3]
        points.append(point)
    return points
