"""Reconciliation: a run whose DAG run ended without ending it, or whose DAG run is gone,
is ended FAILED with the DAG run's outcome as its reason; going DAG runs are left alone."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from mlbench_api import reconcile


def dag_run_url(run: dict) -> str:
    return f"/api/v2/dags/mlbench_run/dagRuns/{run['job_id']}"


def fail_dag_run(run: dict) -> None:
    """End the run's DAG run failed in Airflow's database, as the scheduler does when its
    tasks fail (Airflow's REST API leaves a queued DAG run queued)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    with create_session() as session:
        dag_run = session.scalar(select(DagRun).where(DagRun.run_id == run["job_id"]))
        dag_run.set_state(DagRunState.FAILED)


def test_runs_of_ended_or_deleted_dag_runs_are_ended_with_the_reason(api, airflow_api, make_run):
    failed, gone, going = make_run("failed-dag"), make_run("gone-dag"), make_run("going-dag")
    api.put("/api/pods/failed-dag-w0", json={"run_id": failed["id"], "phase": "Running"})
    api.patch(f"/api/runs/{failed['id']}", json={"state": "STARTED"})
    fail_dag_run(failed)
    assert airflow_api.delete(dag_run_url(gone)).status_code == 204

    answer = api.post("/api/runs/reconcile")
    assert answer.status_code == 200, answer.text
    ended = {e["id"]: e["reason"] for e in answer.json()["ended"]}
    assert set(ended) == {failed["id"], gone["id"]}
    assert f"its DAG run {failed['job_id']} failed" in ended[failed["id"]]
    assert f"its DAG run {gone['job_id']} is gone" in ended[gone["id"]]

    run = api.get(f"/api/runs/{failed['id']}").json()
    assert run["state"] == "FAILED" and run["finished_at"]
    assert run["job_metadata"]["failure"] == ended[failed["id"]]
    assert run["job_metadata"]["reconciled"] is True
    assert api.get(f"/api/pods/?run_id={failed['id']}").json()[0]["phase"] == "Failed"
    assert api.get(f"/api/runs/{going['id']}").json()["state"] == "INITIALIZED"
    assert api.post("/api/runs/reconcile").json()["ended"] == []  # once


def test_a_reason_the_dag_recorded_is_kept(api, make_run):
    run = make_run("had-a-reason")
    api.patch(f"/api/runs/{run['id']}", json={"job_metadata": {"failure": "rank 1 was killed"}})
    fail_dag_run(run)
    api.post("/api/runs/reconcile")
    failure = api.get(f"/api/runs/{run['id']}").json()["job_metadata"]["failure"]
    assert failure.startswith("rank 1 was killed; its DAG run")


def test_a_dag_run_that_ended_before_this_api_server_started_names_the_api(
    api, make_run, monkeypatch
):
    """Its tasks could not reach the API (an api-server gone longer than they wait): the
    reason says so, with when the DAG run ended and when this API server started."""
    run = make_run("api-was-gone")
    api.patch(f"/api/runs/{run['id']}", json={"state": "STARTED"})
    fail_dag_run(run)
    monkeypatch.setattr(reconcile, "STARTED_AT", datetime.now(UTC) + timedelta(seconds=1))
    [ended] = api.post("/api/runs/reconcile").json()["ended"]
    assert ended["reason"].startswith(f"its DAG run {run['job_id']} failed")
    assert "while the mlbench API was unreachable (this API server started at " in ended["reason"]
    assert ended["reason"].endswith("its tasks could not record why")


def test_the_api_server_reconciles_by_itself(api, airflow_api, make_run, settings_env):
    run = make_run("left-behind")
    airflow_api.delete(dag_run_url(run))
    settings_env.setenv("MLBENCH_RECONCILE_SECONDS", "0.2")
    reconcile.start_background()
    try:
        deadline = time.monotonic() + 30
        while api.get(f"/api/runs/{run['id']}").json()["state"] != "FAILED":
            assert time.monotonic() < deadline, "the run was not reconciled"
            time.sleep(0.2)
    finally:
        reconcile.stop_background()
    assert not [t for t in threading.enumerate() if t.name == "mlbench-reconcile"]


def test_only_users_reconcile(make_run, worker_client):
    run = make_run("w")
    assert worker_client(run["id"]).post("/api/runs/reconcile").status_code == 403
