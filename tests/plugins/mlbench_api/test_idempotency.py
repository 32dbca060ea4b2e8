"""Exactly-once writes: a write sent again with its Idempotency-Key is answered as the first
time and stored once (metrics, batches, log lines), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from mlbench_api.idempotency import prune
from mlbench_api.store import LogLine, Metric
from mlbench_api.store.models import WriteKey, utcnow


def count(store, model) -> int:  # noqa: ANN001
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_a_batch_sent_twice_with_its_key_is_stored_once(api, make_run, store):
    run = make_run()
    batch = [{"run_id": run["id"], "name": "loss", "value": v} for v in range(50)]
    headers = {"Idempotency-Key": "batch-0001"}
    first = api.post("/api/metrics/batch", json=batch, headers=headers)
    again = api.post("/api/metrics/batch", json=batch, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() == {"created": 50}
    assert count(store, Metric) == 50
    other = api.post("/api/metrics/batch", json=batch, headers={"Idempotency-Key": "batch-0002"})
    assert other.status_code == 201 and count(store, Metric) == 100
    assert api.post("/api/metrics/batch", json=batch).status_code == 201  # no key: stored
    assert count(store, Metric) == 150


def test_one_metric_and_log_lines_sent_twice_are_stored_once(api, make_run, store):
    run = make_run()
    metric = {"run_id": run["id"], "name": "loss", "value": 1.5}
    first = api.post("/api/metrics", json=metric, headers={"Idempotency-Key": "metric-01"})
    again = api.post("/api/metrics", json=metric, headers={"Idempotency-Key": "metric-01"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and count(store, Metric) == 1
    url = f"/api/runs/{run['id']}/logs"
    lines = {"lines": [{"rank": 0, "line": "hello"}, {"rank": 1, "line": "world"}]}
    first = api.post(url, json=lines, headers={"Idempotency-Key": "lines-01"})
    again = api.post(url, json=lines, headers={"Idempotency-Key": "lines-01"})
    assert first.json() == again.json() and count(store, LogLine) == 2


@pytest.mark.parametrize("key", ["short", "has space", "x" * 129, "semi;colon-key"])
def test_a_bad_key_is_422_naming_the_header(api, make_run, key):
    run = make_run()
    answer = api.post(
        "/api/metrics", json={"run_id": run["id"], "name": "x", "value": 1},
        headers={"Idempotency-Key": key},
    )  # fmt: skip
    assert answer.status_code == 422 and "Idempotency-Key" in answer.text


def test_a_key_of_another_route_is_refused(api, make_run, store):
    run = make_run()
    api.post("/api/metrics", json={"run_id": run["id"], "name": "x", "value": 1},
             headers={"Idempotency-Key": "shared-key"})  # fmt: skip
    answer = api.post(f"/api/runs/{run['id']}/logs", json={"lines": [{"rank": 0, "line": "a"}]},
                      headers={"Idempotency-Key": "shared-key"})  # fmt: skip
    assert answer.status_code == 422 and "another route (metric)" in answer.text
    assert count(store, LogLine) == 0


def test_old_keys_are_pruned(api, make_run, store):
    run = make_run()
    for key in ("old-key-1", "new-key-1"):
        api.post("/api/metrics", json={"run_id": run["id"], "name": "x", "value": 1},
                 headers={"Idempotency-Key": key})  # fmt: skip
    with store.session() as session:
        session.execute(
            update(WriteKey).where(WriteKey.key == "old-key-1")
            .values(created_at=utcnow() - timedelta(days=2))
        )  # fmt: skip
    with store.session() as session:
        assert prune(session) == 1
        assert [k.key for k in session.scalars(select(WriteKey))] == ["new-key-1"]
