"""The run page's status part: when its clock stops."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dashboard.pages.run.status import SETTLED_AFTER_S, settled

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def test_only_a_run_ended_a_while_ago_stops_the_pages_clock():
    old = {"state": "FINISHED", "finished_at": _ago(SETTLED_AFTER_S + 1)}
    assert settled(old, NOW)
    assert not settled({**old, "finished_at": _ago(5)}, NOW)  # late log lines may come
    assert not settled({"state": "STARTED", "finished_at": None}, NOW)
    assert not settled({"state": "FAILED", "finished_at": None}, NOW)
    assert settled({"state": "CANCELLED", "finished_at": _ago(3600)}, NOW)
