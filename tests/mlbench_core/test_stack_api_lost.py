"""The api-server gone for longer than the embedded stack waits for it (``MLBENCH_API_WAIT``):
the run's tasks give up and Airflow fails its DAG run, which can record nothing; once an
api-server answers again the run ends FAILED with a reason naming the API, never left
STARTED."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Iterator

import pytest

from harness.server import free_port
from mlbench_core.api import ApiClient
from mlbench_core.settings import Settings
from mlbench_core.stack import Stack
from tests.support.sandboxes import footprint
from tests.support.stacks import running_stack
from tests.support.waiting import wait_for

API_WAIT = 15  # seconds the tasks and workers wait for the API (the default is 180)


@pytest.fixture
def stack(tmp_path) -> Iterator[Stack]:  # noqa: ANN001
    settings = Settings(
        home=tmp_path, port=free_port(), step_delay=0.15, api_wait=API_WAIT, reconcile_seconds=5
    )
    with running_stack(settings) as stack:
        yield stack


def dag_run_state(stack: Stack, dag_run_id: str) -> str | None:
    """From Airflow's own database: its REST API is served by the api-server that is gone."""
    with sqlite3.connect(stack.paths.airflow_home / "airflow.db") as db:
        row = db.execute("SELECT state FROM dag_run WHERE run_id = ?", (dag_run_id,)).fetchone()
    return row[0] if row else None


@pytest.mark.timeout(600)
def test_a_run_whose_api_stays_away_ends_failed_naming_the_api(stack):
    from mlbench_core.cli.common import connect

    client: ApiClient = connect(stack.settings)
    run = client.create_run("api-gone", 2, benchmark="digits", epochs=30,
                            settings={"lr": 0.0005})  # fmt: skip
    wait_for(lambda: client.get_run_metrics(run["id"]), 120, "the first metrics")
    killed = time.monotonic()
    os.killpg(int(stack.read_state()["processes"]["api-server"]["pid"]), signal.SIGKILL)
    wait_for(lambda: dag_run_state(stack, run["job_id"]) == "failed", 300, "the DAG run to fail")
    failed_after = time.monotonic() - killed
    assert Stack(stack.settings).up(timeout=180)["restarted"] == ["api-server"]
    wait_for(lambda: client.get_run(run["id"])["state"] != "STARTED", 60, "the run reconciled")
    ended_after = time.monotonic() - killed
    print(f"DAG run failed {failed_after:.0f} s after the api-server was killed; the run "
          f"ended {ended_after:.0f} s after it")  # fmt: skip
    done = client.get_run(run["id"])
    assert done["state"] == "FAILED"
    failure = done["job_metadata"]["failure"]
    assert f"its DAG run {run['job_id']} failed (failed tasks: " in failure
    assert "while the mlbench API was unreachable" in failure
    assert {p["phase"] for p in client.get_pods(run_id=run["id"])} == {"Failed"}
    wait_for(lambda: not [x for x in footprint() if x.startswith(("netns mlb-", "cgroup "))],
             60, "the sandboxes removed")  # fmt: skip
