"""The nightly's report: history from stored reports or pinned runs (through the real API),
verdicts per entry, the lines that name each problem, the Markdown."""

from __future__ import annotations

from datetime import date

import pytest

from mlbench_core.api import ApiClient
from mlbench_core.nightly import flow
from mlbench_core.nightly.suite import load_suite

SUITE = load_suite(
    """
history: 2
min_history: 2
entries:
  - benchmark: digits
    workers: [2]
"""
)
KEY = "digits-2w-light"


def values(seconds: float, throughput: float = 1000.0) -> dict:
    return {
        "reached": True,
        "time_to_target_s": seconds,
        "throughput": throughput,
        "communication_share": 0.2,
        "peak_memory_bytes": 4e8,
    }


def run(name: str, state: str = "FINISHED", seconds: float = 5.0) -> dict:
    return {"name": name, "id": 1, "state": state, "values": values(seconds)}


@pytest.fixture
def client(live_server, admin_token, store):  # noqa: ANN201
    with ApiClient(f"{live_server}/mlbench", token=admin_token) as api:
        yield api


def test_history_is_the_last_k_nights_before_today_without_failures(client):
    nights = {
        "2026-11-18": (5.0, 0),
        "2026-11-19": (5.2, 0),
        "2026-11-20": (9.9, 1),  # that night's entry failed: not a baseline
        "2026-11-21": (5.1, 0),
        "2026-11-23": (7.0, 0),  # today (a re-run): not history
    }
    for night, (seconds, failed) in nights.items():
        report = {"entries": {KEY: {"failed": failed, "values": values(seconds)}}}
        client.put_nightly_report(night, "ok", report)
    past = flow.history(client, SUITE, date(2026, 11, 23))
    source, got = past[KEY]
    assert source == "median of the last 2 nightlies"
    assert [v["time_to_target_s"] for v in got] == [5.1, 5.2]  # newest first, K = 2


def test_pinned_runs_are_the_baseline(client):
    suite = SUITE.model_copy(update={"baseline": {KEY: ["base-a", "base-b"]}})
    for name, seconds in (("base-a", 4.0), ("base-b", 6.0)):
        created = client.create_run(name, 2, benchmark="digits", job_id="pinned")
        client.update_run(created["id"], state="STARTED")
        client.update_run(
            created["id"],
            state="FINISHED",
            result={"reached": True, "time_to_target_s": seconds, "throughput": 900.0},
        )
    source, got = flow.history(client, suite, date(2026, 11, 23))[KEY]
    assert source == "pinned runs base-a, base-b"
    assert sorted(v["time_to_target_s"] for v in got) == [4.0, 6.0]


def test_a_report_with_a_regression_and_a_failed_run_names_both():
    past = {KEY: ("median of the last 3 nightlies", [values(5.0), values(5.1), values(4.9)])}
    tonight = {KEY: [run("n-r1", seconds=9.0), run("n-r2", state="FAILED")]}
    verdict, report = flow.make_report(date(2026, 11, 23), "d1", SUITE, tonight, past)
    entry = report["entries"][KEY]
    assert verdict == "failed" and entry["verdict"] == "failed" and entry["failed"] == 1
    assert entry["values"]["time_to_target_s"] == 9.0  # finished runs only
    assert entry["verdicts"]["time_to_target_s"]["status"] == "regression"
    problems = flow.regressions(report)
    assert "digits-2w-light: run n-r2 ended FAILED" in problems
    assert any(p.startswith("digits-2w-light: time_to_target_s 9 vs baseline 5") for p in problems)
    markdown = flow.render_markdown(report)
    assert markdown.startswith("# Nightly benchmarks 2026-11-23: failed")
    assert "| digits-2w-light | **failed** |" in markdown and "## Problems" in markdown


def test_a_quiet_night_and_a_first_night():
    past = {KEY: ("median of the last 3 nightlies", [values(5.0), values(5.1), values(4.9)])}
    tonight = {KEY: [run("n-r1", seconds=5.05)]}
    verdict, report = flow.make_report(date(2026, 11, 23), "d1", SUITE, tonight, past)
    assert verdict == "ok" and flow.regressions(report) == []
    first, report = flow.make_report(date(2026, 11, 23), "d1", SUITE, tonight, {})
    assert first == "insufficient-history"
    assert report["entries"][KEY]["baseline"] == "no history"
