"""The store on SQLite and PostgreSQL: migrations, constraints, indexes."""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, insert, inspect, text
from sqlalchemy.exc import IntegrityError

from mlbench_api.store import Metric, Run, Store
from mlbench_api.store.models import to_micros
from tests.conftest import PG_ADMIN_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request, tmp_path) -> Iterator[str]:  # noqa: ANN001
    """An empty database (no tables) on SQLite or PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    request.getfixturevalue("postgres_url")  # skips or fails (CI) when PostgreSQL is down
    name = f"mlbench_fresh_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


HEAD = "0009"  # the newest migration


def _open_store(url: str) -> str | None:
    store = Store(url)
    version = store.schema_version()
    store.dispose()
    return version


def test_migrations_create_the_schema_once(fresh_url):
    store = Store(fresh_url)
    assert store.schema_version() == HEAD
    tables = set(inspect(store.engine).get_table_names())
    assert {"runs", "pods", "metrics", "mlbench_alembic_version"} <= tables
    store.dispose()
    assert _open_store(fresh_url) == HEAD  # a second start-up changes nothing


def test_concurrent_start_ups_migrate_once(fresh_url):
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        versions = pool.map(_open_store, [fresh_url] * 3)
    assert versions == [HEAD] * 3


def test_metrics_belong_to_a_run_xor_a_pod(store):
    now = to_micros(datetime.now(UTC))
    with store.session() as session:
        run = Run(name="r", state="INITIALIZED", spec={}, job_metadata={})
        session.add(run)
        session.flush()
        run_id = run.id
    bad_rows = [
        {
            "run_id": run_id,
            "pod_name": "p",
            "name": "x",
            "date": now,
            "value": 1,
            "cumulative": False,
        },
        {
            "run_id": None,
            "pod_name": None,
            "name": "x",
            "date": now,
            "value": 1,
            "cumulative": False,
        },
    ]
    for row in bad_rows:
        with pytest.raises(IntegrityError), store.session() as session:
            session.execute(insert(Metric.__table__), [row])


def test_deleting_a_run_cascades_to_its_metrics(store):
    now = to_micros(datetime.now(UTC))
    with store.session() as session:
        run = Run(name="r", state="INITIALIZED", spec={}, job_metadata={})
        session.add(run)
        session.flush()
        session.execute(
            insert(Metric.__table__),
            [
                {
                    "run_id": run.id,
                    "pod_name": None,
                    "name": "x",
                    "date": now,
                    "value": 1,
                    "cumulative": False,
                }
            ],
        )
    with store.session() as session:
        session.execute(text("DELETE FROM runs"))
    with store.session() as session:
        assert session.execute(text("SELECT count(*) FROM metrics")).scalar() == 0


def _add_run(store: Store, name: str) -> int:
    with store.session() as session:
        run = Run(name=name, state="INITIALIZED", spec={}, job_metadata={})
        session.add(run)
        session.flush()
        return run.id


def test_run_ids_are_never_reused_after_a_delete(fresh_url):
    store = Store(fresh_url)
    first, newest = _add_run(store, "a"), _add_run(store, "b")
    with store.session() as session:
        session.execute(text("DELETE FROM runs WHERE id = :id"), {"id": newest})
    assert _add_run(store, "c") == newest + 1 > first
    store.dispose()


def test_the_run_id_migration_keeps_every_row(tmp_path):
    """A store made before 0005 (ids reusable on SQLite) keeps its runs, pods, metrics and
    log lines through the rebuild of ``runs``, and then never reuses an id."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = Store(url, migrate=False)
    old.migrate("0004")
    with old.engine.begin() as connection:
        for run_id in (1, 2, 3):
            connection.execute(
                text(
                    "INSERT INTO runs (id, name, state, spec, job_metadata, created_at) "
                    "VALUES (:id, :name, 'FINISHED', '{}', '{}', 0)"
                ),
                {"id": run_id, "name": f"r{run_id}"},
            )
            connection.execute(
                text(
                    "INSERT INTO pods (name, run_id, labels, phase, created_at, updated_at) "
                    "VALUES (:name, :id, '{}', 'Succeeded', 0, 0)"
                ),
                {"name": f"r{run_id}-w0", "id": run_id},
            )
            connection.execute(
                text(
                    "INSERT INTO metrics (run_id, name, date, value, cumulative) "
                    "VALUES (:id, 'loss', 0, 1.0, 0)"
                ),
                {"id": run_id},
            )
            connection.execute(
                text(
                    "INSERT INTO logs (run_id, rank, stream, line, date) "
                    "VALUES (:id, 0, 'stdout', 'hello', 0)"
                ),
                {"id": run_id},
            )
        connection.execute(text("DELETE FROM runs WHERE id = 3"))  # cascades
    old.dispose()
    store = Store(url)
    assert store.schema_version() == HEAD
    with store.session() as session:
        counts = [
            session.execute(text(f"SELECT count(*) FROM {table}")).scalar()
            for table in ("runs", "pods", "metrics", "logs")
        ]
        assert counts == [2, 2, 2, 2]  # run 3 went with its rows, before
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert _add_run(store, "next") == 3  # freed before 0005: no record of it
    with store.session() as session:
        session.execute(text("DELETE FROM runs WHERE name = 'next'"))
    assert _add_run(store, "after") == 4
    with store.session() as session:  # the cascade still holds after the rebuild
        session.execute(text("DELETE FROM runs WHERE id = 1"))
        assert session.execute(text("SELECT count(*) FROM metrics")).scalar() == 1
    store.dispose()


def test_runs_stored_before_tags_have_none_and_keep_their_rows(fresh_url):
    old = Store(fresh_url, migrate=False)
    old.migrate("0006")
    with old.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO runs (id, name, state, spec, job_metadata, created_at) "
                "VALUES (7, 'old', 'FINISHED', '{}', '{}', 0)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO metrics (run_id, name, date, value, cumulative) "
                "VALUES (7, 'loss', 0, 1.0, false)"
            )
        )
    old.dispose()
    store = Store(fresh_url)
    with store.session() as session:
        run = session.get(Run, 7)
        assert (run.name, run.tags, run.note) == ("old", [], None)
        run.tags, run.note = ["baseline"], "kept"
    with store.session() as session:
        assert (session.get(Run, 7).tags, session.get(Run, 7).note) == (["baseline"], "kept")
        assert session.execute(text("SELECT count(*) FROM metrics")).scalar() == 1
    store.dispose()


def test_the_series_indexes_gain_cumulative_and_keep_every_row(fresh_url):
    old = Store(fresh_url, migrate=False)
    old.migrate("0007")
    with old.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO runs (id, name, state, spec, job_metadata, created_at) "
                "VALUES (3, 'old', 'FINISHED', '{}', '{}', 0)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO metrics (run_id, name, date, value, cumulative) "
                "VALUES (3, 'loss', 0, 1.0, true), (3, 'loss', 1, 2.0, false)"
            )
        )
    old.dispose()
    store = Store(fresh_url)
    indexes = {i["name"]: i["column_names"] for i in inspect(store.engine).get_indexes("metrics")}
    assert indexes["ix_metrics_run_series"] == ["run_id", "name", "date", "value", "cumulative"]
    assert indexes["ix_metrics_pod_series"] == ["pod_name", "name", "date", "value", "cumulative"]
    with store.engine.connect() as connection:
        rows = connection.execute(text("SELECT value, cumulative FROM metrics ORDER BY date"))
        assert [(v, bool(c)) for v, c in rows] == [(1.0, True), (2.0, False)]
    store.dispose()


def test_nightly_reports_stored_by_date_keep_their_rows_and_a_day_holds_many(fresh_url):
    from mlbench_api.store import NightlyReport

    old = Store(fresh_url, migrate=False)
    old.migrate("0008")
    with old.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO nightly_reports (date, dag_run_id, verdict, report, created_at) "
                "VALUES ('2026-11-20', 'a', 'ok', '{\"n\": 1}', 5), "
                "('2026-11-21', NULL, 'regression', '{\"n\": 2}', 7)"
            )
        )
    old.dispose()
    store = Store(fresh_url)
    with store.session() as session:
        rows = session.query(NightlyReport).order_by(NightlyReport.id).all()
        assert [(r.date, r.dag_run_id, r.verdict, r.report) for r in rows] == [
            ("2026-11-20", "a", "ok", {"n": 1}),
            ("2026-11-21", None, "regression", {"n": 2}),
        ]
        session.add(NightlyReport(date="2026-11-21", dag_run_id="b", verdict="ok", report={}))
    with store.session() as session:
        assert session.query(NightlyReport).filter_by(date="2026-11-21").count() == 2
    store.dispose()


def test_series_reads_use_the_covering_indexes(store):
    with store.session() as session:
        run = Run(name="r", state="INITIALIZED", spec={}, job_metadata={})
        session.add(run)
        session.flush()
        rows = [
            {
                "run_id": run.id if i % 2 else None,
                "pod_name": None if i % 2 else f"p{i % 10}",
                "name": f"s{i % 7}",
                "date": i,
                "value": i,
                "cumulative": False,
            }
            for i in range(20_000)
        ]
        session.execute(insert(Metric.__table__), rows)
        run_id = run.id
    queries = {
        "ix_metrics_run_series": "SELECT date, value, cumulative FROM metrics "
        f"WHERE run_id = {run_id} AND name = 's1' AND date > 100 ORDER BY date",
        "ix_metrics_pod_series": "SELECT date, value, cumulative FROM metrics "
        "WHERE pod_name = 'p2' AND name = 's3' ORDER BY date",
    }
    if store.dialect == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE metrics"))
    with store.engine.connect() as connection:
        for index, sql in queries.items():
            prefix = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN "
            plan = " ".join(str(row) for row in connection.execute(text(prefix + sql)))
            assert index in plan, plan
            assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
            # Read from the index alone: the points' columns (cumulative too) are in it.
            assert "COVERING INDEX" in plan or "Index Only Scan" in plan, plan
