"""Runs through the real scheduler of the embedded stack (``mlbench up``): one to its target
through the CLI, one stopped and one deleted while their workers train."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import psutil
import pytest

from mlbench_core.api import ApiClient, NotFound
from mlbench_core.settings import Settings
from mlbench_core.stack import Stack
from tests.support.environment import VENV_BIN
from tests.support.server import free_port
from tests.support.waiting import wait_for

# Slows each training step so that a run lasts long enough to be stopped mid-way.
STEP_DELAY = 0.15


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:  # noqa: ANN001
    home = tmp_path_factory.mktemp("stack-runs")
    settings = Settings(home=home, port=free_port(), step_delay=STEP_DELAY)
    stack = Stack(settings)
    stack.up(timeout=240)
    try:
        yield stack
    finally:
        stack.down()


@pytest.fixture(scope="module")
def client(stack: Stack) -> ApiClient:
    from mlbench_core.cli.common import connect

    return connect(stack.settings)


def cli_env(stack: Stack) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLBENCH_", "AIRFLOW"))}
    return {
        **env,
        "MLBENCH_HOME": str(stack.settings.home),
        "MLBENCH_PORT": str(stack.settings.port),
    }


def workers_of(run_id: int) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "mlbench_core.worker" in cmdline and str(run_id) in cmdline:
            found.append(process)
    return found


def dag_run_state(stack: Stack, client: ApiClient, job_id: str) -> str:
    import requests

    base = f"http://127.0.0.1:{stack.settings.port}"
    response = requests.get(
        f"{base}/api/v2/dags/mlbench_run/dagRuns/{job_id}",
        headers={"Authorization": f"Bearer {client.token}"},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["state"]


def test_a_run_reaches_its_target_through_the_scheduler(stack, client):
    done = subprocess.run(
        [
            str(VENV_BIN / "mlbench"),
            "run",
            "sched-digits",
            "--benchmark",
            "digits",
            "--workers",
            "2",
            "--follow",
        ],
        env=cli_env(stack),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run = next(r for r in client.get_runs() if r["name"] == "sched-digits")
    assert run["state"] == "FINISHED"
    assert run["result"]["reached"] is True
    assert run["result"]["step_delay_s"] == STEP_DELAY
    wait_for(
        lambda: dag_run_state(stack, client, run["job_id"]) == "success", 60, "DAG run success"
    )
    assert {p["phase"] for p in client.get_pods(run_id=run["id"])} == {"Succeeded"}
    assert client.get_logs(run["id"])["lines"]


def started_run(client: ApiClient, name: str) -> dict:
    run = client.create_run(name, 2, benchmark="digits")
    wait_for(lambda: len(workers_of(run["id"])) == 2, 120, "two worker processes")
    # Training has begun once rank 0 posts an epoch or loss point.
    wait_for(lambda: client.get_run_metrics(run["id"]), 120, "the first metrics")
    return run


def test_stopping_a_run_stops_its_workers_and_cancels_it(stack, client):
    run = started_run(client, "to-stop")
    stopped = client.stop_run(run["id"])
    assert stopped["state"] == "CANCELLED"
    wait_for(lambda: not workers_of(run["id"]), 60, "the workers to exit")
    assert dag_run_state(stack, client, run["job_id"]) == "failed"
    time.sleep(3)  # the finalize task, if it runs, must leave a cancelled run as it is
    assert client.get_run(run["id"])["state"] == "CANCELLED"


def test_deleting_a_running_run_stops_it_and_removes_it(stack, client):
    run = started_run(client, "to-delete")
    client.delete_run(run["id"])
    with pytest.raises(NotFound):
        client.get_run(run["id"])
    wait_for(lambda: not workers_of(run["id"]), 60, "the workers to exit")
    assert dag_run_state(stack, client, run["job_id"]) == "failed"
    assert client.get_pods(run_id=run["id"]) == []
