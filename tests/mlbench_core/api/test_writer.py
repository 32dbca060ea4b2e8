"""MetricsWriter against the real API: Airflow's app served by uvicorn (``live_server``)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from harness.server import ThreadedServer, free_port
from mlbench_core.api import ApiClient, ApiError, MetricsWriter, ServerError, WriterStats

LOGGER = "mlbench_core.api.writer"


@pytest.fixture
def token(client, run):
    return client.issue_worker_token(run["id"])


@pytest.fixture
def worker(live_server, token):
    """A client holding the worker token of ``run``, as a training worker has."""
    with ApiClient(f"{live_server}/mlbench", token=token) as api:
        yield api


@pytest.fixture
def down():
    """A client of a port where nothing listens."""
    with ApiClient(f"http://127.0.0.1:{free_port()}/mlbench", token="t", timeout=5) as api:
        yield api


def count_requests(client: ApiClient) -> list[int]:
    """Record the size of each ``post_metrics`` call; the real request is still made."""
    sizes: list[int] = []
    real = client.post_metrics

    def counting(metrics, **kwargs):
        metrics = list(metrics)
        sizes.append(len(metrics))
        return real(metrics, **kwargs)

    client.post_metrics = counting
    return sizes


def wait_until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def values(client: ApiClient, run_id: int, name: str) -> list[float]:
    return [p["value"] for p in client.get_run_metrics(run_id).get(name, [])]


def messages(caplog, level: int, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER and r.levelno == level and text in r.getMessage()
    ]


def test_sends_full_batches_without_waiting(client, run, worker):
    sizes = count_requests(worker)
    with MetricsWriter(worker, batch_size=10, flush_interval=3600) as writer:
        for i in range(35):
            assert writer.write("step", i, run_id=run["id"]) is True
        wait_until(lambda: writer.stats.delivered == 30)
        assert sizes == [10, 10, 10]
        assert writer.stats.pending == 5
        assert values(client, run["id"], "step") == [float(i) for i in range(30)]
        assert writer.flush(timeout=20) is True
        assert sizes == [10, 10, 10, 5]
    assert values(client, run["id"], "step") == [float(i) for i in range(35)]


def test_sends_a_partial_batch_after_the_flush_interval(client, run, worker):
    sent_at: list[float] = []
    real = worker.post_metrics

    def timed(metrics, **kwargs):
        sent_at.append(time.monotonic())
        return real(metrics, **kwargs)

    worker.post_metrics = timed
    sizes = count_requests(worker)
    with MetricsWriter(worker, batch_size=1000, flush_interval=0.3) as writer:
        written_at = time.monotonic()
        for i in range(3):
            writer.write("loss", i, run_id=run["id"])
        wait_until(lambda: writer.stats.delivered == 3)
        assert sizes == [3]
        assert sent_at[0] - written_at >= 0.3
        writer.write("loss", 3, run_id=run["id"])
        writer.write("loss", 4, run_id=run["id"])
        wait_until(lambda: writer.stats.delivered == 5)
        assert sizes == [3, 2]
    assert values(client, run["id"], "loss") == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_flush_and_close_deliver_everything_in_order(client, run, worker):
    worker.put_pod("worker-0", run_id=run["id"], rank=0)
    sizes = count_requests(worker)
    writer = MetricsWriter(worker, batch_size=100, flush_interval=3600)
    assert writer.flush() is True  # nothing pending
    for i in range(250):
        writer.write("loss", 1.0 / (i + 1), run_id=run["id"], metadata={"step": i})
        writer.write("cpu", i, pod_name="worker-0")
    assert writer.flush(timeout=20) is True
    assert sum(sizes) == 500
    assert max(sizes) == 100
    assert values(client, run["id"], "loss") == [1.0 / (i + 1) for i in range(250)]
    cpu = client.get_pod_metrics("worker-0")["cpu"]
    assert [p["value"] for p in cpu] == [float(i) for i in range(250)]

    start = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(3):
        writer.write("acc", i, run_id=run["id"], date=start + timedelta(minutes=i), cumulative=True)
    stats = writer.close(timeout=20)
    assert stats == WriterStats(written=503, delivered=503, failed=0, dropped=0, retries=0)
    acc = client.get_run_metrics(run["id"], metric_filter="acc")["acc"]
    assert [(p["date"], p["value"]) for p in acc] == [
        ("2024-01-01T00:00:00.000000Z", 0.0),
        ("2024-01-01T00:01:00.000000Z", 1.0),
        ("2024-01-01T00:02:00.000000Z", 2.0),
    ]
    assert writer.close(timeout=1) == stats  # closing again changes nothing


def test_several_threads_may_write(client, run, worker):
    writer = MetricsWriter(worker, batch_size=300, flush_interval=0.05)
    start = threading.Barrier(4)

    def produce(k: int) -> None:
        start.wait()
        for i in range(500):
            writer.write(f"t{k}", i, run_id=run["id"])

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = writer.close(timeout=30)
    assert (stats.written, stats.delivered, stats.failed, stats.pending) == (2000, 2000, 0, 0)
    series = client.get_run_metrics(run["id"])
    assert sorted(series) == ["t0", "t1", "t2", "t3"]
    for points in series.values():
        assert [p["value"] for p in points] == [float(i) for i in range(500)]
    dates = sorted(p["date"] for points in series.values() for p in points)
    assert len(set(dates)) == 2000  # stamped dates never repeat


def test_retries_until_the_server_comes_up(airflow_app, client, run, token, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    port = free_port()
    with ApiClient(f"http://127.0.0.1:{port}/mlbench", token=token, timeout=5) as later:
        writer = MetricsWriter(
            later, batch_size=7, flush_interval=0.01, backoff=0.05, max_backoff=0.2
        )
        for i in range(20):
            writer.write("loss", i, run_id=run["id"])
        wait_until(lambda: writer.stats.retries >= 3)
        stats = writer.stats
        assert (stats.delivered, stats.failed, stats.pending) == (0, 0, 20)
        assert messages(caplog, logging.WARNING, "cannot reach the API")
        with ThreadedServer(airflow_app, port=port):
            assert writer.flush(timeout=30) is True
            stats = writer.close(timeout=10)
    assert (stats.written, stats.delivered, stats.failed, stats.pending) == (20, 20, 0, 0)
    assert stats.retries >= 3
    assert values(client, run["id"], "loss") == [float(i) for i in range(20)]
    assert messages(caplog, logging.INFO, "metrics after")


@pytest.mark.parametrize(
    "error",
    [
        ServerError(503, "the mlbench store is unavailable"),
        ApiError(429, "slow down"),
    ],
    ids=["503", "429"],
)
def test_retries_server_errors_and_rate_limits(client, run, worker, error):
    real = worker.post_metrics
    calls: list[int] = []

    def flaky(metrics, **kwargs):
        calls.append(len(metrics))
        if len(calls) <= 2:
            raise error
        return real(metrics, **kwargs)

    worker.post_metrics = flaky
    with MetricsWriter(worker, flush_interval=0.01, backoff=0.01, max_backoff=0.02) as writer:
        for i in range(5):
            writer.write("loss", i, run_id=run["id"])
        assert writer.flush(timeout=20) is True
        assert writer.stats.retries == 2
    assert calls == [5, 5, 5]
    assert values(client, run["id"], "loss") == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_client_errors_fail_the_batch_without_retries(client, run, worker, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    other = client.create_run("run-b", 1, benchmark="1a")
    sizes = count_requests(worker)
    writer = MetricsWriter(worker, flush_interval=0.01, backoff=0.01)
    for i in range(3):
        writer.write("loss", i, run_id=999_999)
    assert writer.flush(timeout=20) is False
    stats = writer.stats
    assert (stats.failed, stats.delivered, stats.retries, stats.pending) == (3, 0, 0, 0)
    assert sizes == [3]
    # A worker token learns nothing of other runs, existing or not: 403, not 404.
    assert messages(
        caplog,
        logging.ERROR,
        f"3 metrics failed: 403 Forbidden: this worker token is for run {run['id']} only",
    )

    writer.write("loss", 1.0, run_id=other["id"])  # a worker token is for its own run only
    assert writer.flush(timeout=20) is False
    assert messages(caplog, logging.ERROR, f"this worker token is for run {run['id']} only")

    writer.write("loss", 7.0, run_id=run["id"])  # the failures poisoned nothing
    assert writer.flush(timeout=20) is True
    stats = writer.close(timeout=10)
    assert (stats.written, stats.delivered, stats.failed, stats.retries) == (5, 1, 4, 0)
    assert sizes == [3, 1, 1]
    assert values(client, run["id"], "loss") == [7.0]


def test_one_unknown_owner_fails_only_its_own_metrics(client, run, worker, caplog):
    caplog.set_level(logging.ERROR, logger=LOGGER)
    sizes = count_requests(worker)
    writer = MetricsWriter(worker, flush_interval=3600)
    for i in range(4):
        writer.write("loss", i, run_id=run["id"])
        writer.write("cpu", i, pod_name="ghost")  # never registered: 404
    assert writer.flush(timeout=20) is False
    stats = writer.close(timeout=10)
    assert (stats.delivered, stats.failed, stats.retries) == (4, 4, 0)
    assert sizes == [8, 4, 4]
    assert values(client, run["id"], "loss") == [0.0, 1.0, 2.0, 3.0]
    assert messages(caplog, logging.ERROR, "pod 'ghost' not found")


def test_gives_up_after_max_retries(down, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    writer = MetricsWriter(down, flush_interval=0.01, max_retries=2, backoff=0.01)
    for i in range(3):
        writer.write("loss", i, run_id=1)
    assert writer.flush(timeout=20) is False
    stats = writer.close(timeout=5)
    assert (stats.written, stats.delivered, stats.failed, stats.retries) == (3, 0, 3, 2)
    assert messages(caplog, logging.ERROR, "giving up on 3 metrics after 2 retries")


def test_bounded_memory_drops_and_logs(down, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    writer = MetricsWriter(down, max_pending=5, flush_interval=0, backoff=60, max_backoff=60)
    accepted = [writer.write("loss", i, run_id=1) for i in range(20)]
    assert accepted == [True] * 5 + [False] * 15
    stats = writer.stats
    assert (stats.written, stats.pending, stats.dropped, stats.delivered) == (5, 5, 15, 0)
    drops = messages(caplog, logging.WARNING, "dropped metric 'loss'")
    assert len(drops) == 1  # rate-limited: one warning for the burst
    assert "5 are pending" in drops[0]

    stats = writer.close(timeout=0.5)  # the send is still backing off: 5 undelivered
    assert (stats.written, stats.delivered, stats.failed, stats.pending) == (5, 0, 5, 0)
    assert (stats.dropped, stats.retries) == (15, 1)
    assert messages(caplog, logging.ERROR, "closed with 5 metrics undelivered")
    assert writer.write("loss", 1.0, run_id=1) is False  # after close: dropped, not queued
    assert writer.stats.dropped == 16
    assert writer.stats.written == 5


@pytest.mark.parametrize(
    ("value", "owners"),
    [
        (float("nan"), {"run_id": 1}),
        (float("inf"), {"run_id": 1}),
        (float("-inf"), {"run_id": 1}),
        ("abc", {"run_id": 1}),
        ("1.5", {"run_id": 1}),
        (None, {"run_id": 1}),
        (True, {"run_id": 1}),
        ([1.0], {"run_id": 1}),
        (1.0, {"run_id": 1, "pod_name": "worker-0"}),
        (1.0, {}),
        (1.0, {"run_id": 0}),
    ],
)
def test_write_refuses_bad_metrics_at_once(down, value, owners):
    writer = MetricsWriter(down, flush_interval=3600)
    with pytest.raises(ValueError):
        writer.write("loss", value, **owners)
    assert writer.stats == WriterStats()
    writer.close(timeout=0)


@pytest.mark.parametrize("name", ["", "   ", "x" * 256])
def test_write_refuses_bad_names(down, name):
    writer = MetricsWriter(down, flush_interval=3600)
    with pytest.raises(ValueError, match="name"):
        writer.write(name, 1.0, run_id=1)
    assert writer.stats.written == 0
    writer.close(timeout=0)


def test_bad_metrics_never_poison_a_batch(client, run, worker):
    with MetricsWriter(worker, flush_interval=3600) as writer:
        writer.write("loss", 1.0, run_id=run["id"])
        for bad in (float("nan"), "abc"):
            with pytest.raises(ValueError, match="finite number"):
                writer.write("loss", bad, run_id=run["id"])
        with pytest.raises(ValueError, match="exactly one of pod_name and run_id"):
            writer.write("loss", 2.0, run_id=run["id"], pod_name="worker-0")
        writer.write("loss", 2.0, run_id=run["id"])
        assert writer.flush(timeout=20) is True
        assert writer.stats.delivered == 2
        assert writer.stats.failed == 0
    assert values(client, run["id"], "loss") == [1.0, 2.0]


def test_write_returns_while_a_send_is_in_progress(client, run, worker):
    entered, release = threading.Event(), threading.Event()
    real = worker.post_metrics

    def hung(metrics, **kwargs):  # a request the network does not answer until released
        entered.set()
        assert release.wait(30)
        return real(metrics, **kwargs)

    worker.post_metrics = hung
    writer = MetricsWriter(worker, flush_interval=0)
    writer.write("loss", 0, run_id=run["id"])
    assert entered.wait(10)
    done = threading.Event()

    def produce() -> None:
        for i in range(1, 101):
            writer.write("loss", i, run_id=run["id"])
        done.set()

    threading.Thread(target=produce, daemon=True).start()
    try:
        assert done.wait(10), "write() waited for the request in progress"
        assert not release.is_set()
        assert writer.stats.pending == 101
        assert writer.stats.delivered == 0
    finally:
        release.set()
    assert writer.close(timeout=20).delivered == 101
    assert values(client, run["id"], "loss") == [float(i) for i in range(101)]


def test_write_returns_while_a_send_is_backing_off(down):
    writer = MetricsWriter(down, flush_interval=0, backoff=60, max_backoff=60)
    writer.write("loss", 0, run_id=1)
    wait_until(lambda: writer.stats.retries == 1)  # the first request failed: backing off
    done = threading.Event()

    def produce() -> None:
        for i in range(1, 1001):
            writer.write("loss", i, run_id=1)
        done.set()

    threading.Thread(target=produce, daemon=True).start()
    assert done.wait(10), "write() waited for the backoff"
    stats = writer.stats
    assert (stats.written, stats.pending, stats.retries) == (1001, 1001, 1)
    stats = writer.close(timeout=0.2)
    assert (stats.failed, stats.pending) == (1001, 0)


@pytest.mark.parametrize(
    "options",
    [
        {"batch_size": 0},
        {"batch_size": 10_001},
        {"max_pending": 0},
        {"flush_interval": -1},
        {"backoff": 2, "max_backoff": 1},
        {"max_retries": -1},
    ],
)
def test_bad_options_are_refused(down, options):
    with pytest.raises(ValueError):
        MetricsWriter(down, **options)


def test_stamped_dates_strictly_increase(client, run, worker, monkeypatch):
    import mlbench_core.api.writer as writer_module

    frozen = datetime(2024, 6, 1, 8, 0, 0, tzinfo=UTC)

    class FrozenClock(datetime):
        @classmethod
        def now(cls, tz=None):
            return frozen

    monkeypatch.setattr(writer_module, "datetime", FrozenClock)
    with MetricsWriter(worker, flush_interval=3600) as writer:
        for i in range(5):
            writer.write("loss", 10 - i, run_id=run["id"])
    points = client.get_run_metrics(run["id"])["loss"]
    assert [(p["date"], p["value"]) for p in points] == [
        (f"2024-06-01T08:00:00.00000{i}Z", float(10 - i)) for i in range(5)
    ]


@contextlib.contextmanager
def store_locked(store, seconds: float):  # noqa: ANN001
    """Hold the store's write lock for ``seconds`` (in a thread), as a long transaction of
    another writer would: writes wait for it (SQLite's busy timeout, PostgreSQL's lock)."""
    held = threading.Event()

    def hold() -> None:
        with store.engine.connect() as connection:
            if store.dialect == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.exec_driver_sql("LOCK TABLE metrics IN EXCLUSIVE MODE")
            held.set()
            time.sleep(seconds)
            connection.rollback()

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10)
    try:
        yield
    finally:
        thread.join()


def test_a_batch_retried_after_the_server_stored_it_is_stored_once(
    live_server, store, client, run, token
):
    """The first POST times out client-side (2 s) while the server waits for the lock and
    then commits; the retries carry the same key: exactly one copy is stored."""
    with ApiClient(f"{live_server}/mlbench", token=token, timeout=2) as slow:
        sent = count_requests(slow)
        writer = MetricsWriter(slow, backoff=0.2, max_backoff=1.0)
        with store_locked(store, 6):
            for i in range(100):
                writer.write("step", i, run_id=run["id"])
            assert writer.flush(60)
        stats = writer.close(10)
    assert len(sent) >= 2  # it was sent again
    assert stats.delivered == 100 and stats.failed == 0
    assert sorted(values(client, run["id"], "step")) == list(range(100))  # once each
