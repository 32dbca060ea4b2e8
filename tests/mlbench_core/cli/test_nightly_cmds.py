"""``mlbench compare`` and ``mlbench nightly report`` against the live API (``mlbench nightly
run`` starts a DAG run: tests/dags/test_mlbench_nightly_e2e.py runs it on a real stack)."""

from __future__ import annotations

import json

import pytest

from mlbench_core.api import ApiClient


@pytest.fixture
def client(live_server, admin_token, store) -> ApiClient:
    return ApiClient(f"{live_server}/mlbench", token=admin_token)


def finished(client: ApiClient, name: str, seconds: float, throughput: float) -> None:
    run = client.create_run(name, 2, benchmark="digits", job_id="cli-test")
    client.update_run(run["id"], state="STARTED")
    result = {
        "reached": True,
        "time_to_target_s": seconds,
        "throughput": throughput,
        "split": {"data_loading_s": 0.1, "compute_s": 0.7, "communication_s": 0.2},
    }
    client.update_run(run["id"], state="FINISHED", result=result)


def test_compare_flags_the_slower_candidate(mlbench, client):
    finished(client, "base-a", 5.0, 1000.0)
    finished(client, "base-b", 5.2, 990.0)
    finished(client, "same", 5.1, 995.0)
    finished(client, "slow", 9.0, 500.0)
    quiet = mlbench("compare", "base-a", "base-b", "same")
    assert quiet.code == 0, quiet.err
    assert "same against base-a, base-b" in quiet.out
    slow = mlbench("compare", "base-a", "base-b", "slow")
    assert slow.code == 1
    assert "time_to_target_s 9 vs baseline 5.1" in slow.out and "regression" in slow.out
    assert mlbench("compare", "base-a").code == 2
    missing = mlbench("compare", "base-a", "nope")
    assert missing.code == 1 and "no run named 'nope'" in missing.err


def test_nightly_report_shows_the_newest_or_a_given_night(mlbench, client):
    assert "no nightly report yet" in mlbench("nightly", "report").err
    entry = {
        "verdict": "ok",
        "verdicts": {
            m: {"status": "ok", "today": 1.0, "relative": 0.01}
            for m in ("time_to_target_s", "throughput", "communication_share", "peak_memory_bytes")
        },
    }
    client.put_nightly_report("2026-11-22", "ok", {"entries": {"digits-2w-light": entry}})
    client.put_nightly_report("2026-11-23", "regression", {"entries": {}})
    newest = mlbench("nightly", "report")
    assert newest.code == 1 and "nightly 2026-11-23: regression" in newest.out
    older = mlbench("nightly", "report", "2026-11-22")
    assert older.code == 0 and "digits-2w-light" in older.out and "+1.0% ok" in older.out
    as_json = mlbench("nightly", "report", "2026-11-22", "--json")
    assert json.loads(as_json.out)["verdict"] == "ok"
    assert "no nightly report for 2020-01-01" in mlbench("nightly", "report", "2020-01-01").err


def test_nightly_run_refuses_a_bad_suite_before_starting_anything(mlbench, tmp_path):
    bad = tmp_path / "suite.yaml"
    bad.write_text("entries: []\n")
    refused = mlbench("nightly", "run", "--suite", str(bad))
    assert refused.code == 2 and "suite entries" in refused.err
    missing = mlbench("nightly", "run", "--suite", str(tmp_path / "none.yaml"))
    assert missing.code == 2 and "cannot read" in missing.err
