"""Live series against the real API: a first load, then only new points, per owner."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dashboard.api import Access
from dashboard.live import (
    Owner,
    SummaryCache,
    fetch_summaries,
    load,
    newest,
    newest_per_pod,
    poll,
    tails,
)
from mlbench_core.api import ApiClient


def _points(api: ApiClient, run_id: int, start: datetime, seconds: range, name: str = "loss"):
    api.post_metrics(
        ApiClient.metric(name, float(s), run_id=run_id, date=start + timedelta(seconds=s))
        for s in seconds
    )


def test_load_then_poll_fetches_only_new_points(api, api_url, admin_token):
    run = api.create_run("live-a", 1, benchmark="digits")
    start = datetime.now(UTC) - timedelta(hours=1)
    _points(api, run["id"], start, range(3))
    access = Access(api_url, admin_token)
    owner = Owner.run(run["id"])

    series, cursor = load(access, owner)
    assert [p["value"] for p in series["loss"]] == [0.0, 1.0, 2.0]
    assert cursor == series["loss"][-1]["date"]

    _points(api, run["id"], start, range(3, 5))
    _points(api, run["id"], start, range(3, 4), name="acc")
    new, cursor2 = poll(access, owner, cursor)
    assert [p["value"] for p in new["loss"]] == [3.0, 4.0]
    assert [p["value"] for p in new["acc"]] == [3.0]
    assert cursor2 == new["loss"][-1]["date"]

    assert poll(access, owner, cursor2) == ({}, cursor2)


def test_load_asks_the_api_to_downsample_and_filter(api, api_url, admin_token):
    run = api.create_run("live-b", 1, benchmark="digits")
    start = datetime.now(UTC) - timedelta(hours=2)
    _points(api, run["id"], start, range(3000))
    _points(api, run["id"], start, range(10), name="other")
    access = Access(api_url, admin_token)
    series, cursor = load(access, Owner.run(run["id"]), names=["loss"], summarize=100)
    assert set(series) == {"loss"}
    assert 2 <= len(series["loss"]) <= 100
    assert cursor.startswith((start + timedelta(seconds=2999)).strftime("%Y-%m-%dT%H:%M:%S"))
    assert tails(series)["loss"] == series["loss"][-1]


def test_an_owner_without_points_has_no_cursor(api, api_url, admin_token):
    run = api.create_run("live-c", 1, benchmark="digits")
    assert load(Access(api_url, admin_token), Owner.run(run["id"])) == ({}, None)


def test_newest_per_pod(api):
    run = api.create_run("live-d", 2, benchmark="digits")
    for rank in (0, 1):
        api.put_pod(f"live-d-w{rank}", run_id=run["id"], rank=rank)
    date = datetime(2026, 1, 1, tzinfo=UTC)
    api.post_metric("container_memory_usage_bytes", 1.0, pod_name="live-d-w0", date=date)
    assert newest_per_pod(api) == {"live-d-w0": "2026-01-01T00:00:00.000000Z"}


@dataclass(frozen=True)
class CountingAccess(Access):
    """Counts the clients (one per request) it opens."""

    opened: list = field(default_factory=list)

    def client(self, timeout: float = 30.0) -> ApiClient:
        self.opened.append(1)
        return super().client(timeout)


def test_summaries_are_kept_and_brought_up_to_date(api, api_url, admin_token):
    run = api.create_run("live-e", 1, benchmark="digits")
    start = datetime.now(UTC) - timedelta(hours=1)
    _points(api, run["id"], start, range(50))
    owner = Owner.run(run["id"])
    access = CountingAccess(api_url, admin_token)
    cache = SummaryCache()

    def read(version: str = "v1") -> dict:
        cursor = newest(api, owner)
        return fetch_summaries(access, owner, ["loss"], summarize=10, cursor=cursor,
                               version=version, cache=cache)  # fmt: skip

    first = read()
    assert 2 <= len(first["loss"]) <= 10 and len(access.opened) == 1
    assert read() == first and len(access.opened) == 1  # nothing new: no request at all

    _points(api, run["id"], start, range(50, 53))
    later = read()
    assert later["loss"][: len(first["loss"])] == first["loss"]
    assert [p["value"] for p in later["loss"][len(first["loss"]) :]] == [50.0, 51.0, 52.0]
    assert len(access.opened) == 2

    assert read(version="v2")["loss"] != later["loss"]  # another run with this id: read whole
    assert len(access.opened) == 3
