"""Runs through the real scheduler of the embedded stack (``mlbench up``): one to its target
through the CLI, one stopped and one deleted while their workers train, one waiting for the
CPUs another holds; none leaves a sandbox behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator

import psutil
import pytest

from harness.environment import VENV_BIN
from harness.server import free_port
from mlbench_core.api import ApiClient, NotFound
from mlbench_core.settings import Settings
from mlbench_core.stack import Stack
from mlbench_core.stack_env import ensure_credentials
from tests.support.sandboxes import footprint
from tests.support.stacks import running_stack
from tests.support.waiting import wait_for

# Slows each training step so that a run lasts long enough to be stopped mid-way.
STEP_DELAY = 0.15


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:  # noqa: ANN001
    home = tmp_path_factory.mktemp("stack-runs")
    with running_stack(Settings(home=home, port=free_port(), step_delay=STEP_DELAY)) as stack:
        yield stack


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


def test_a_short_synthetic_run_of_a_reference_benchmark_through_the_cli(stack, client):
    """1a (164 epochs of CIFAR-10 for its goal) as a benchmarker tries it first: one epoch
    of 20 steps of synthetic data on 2 workers, throughput only."""
    done = subprocess.run(
        [
            str(VENV_BIN / "mlbench"), "run", "short-1a", "--benchmark", "1a", "--synthetic",
            "--epochs", "1", "--steps", "20", "--workers", "2", "--follow",
        ],
        env=cli_env(stack), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "throughput only" in done.stdout
    run = next(r for r in client.get_runs() if r["name"] == "short-1a")
    assert run["state"] == "FINISHED"
    result = run["result"]
    assert result["goal"] is None and "reached" not in result and result["synthetic"] is True
    assert result["epochs"] == 1 and result["steps_per_epoch_limit"] == 20
    assert result["samples"] == 20 * 128 * 2  # steps x batch per worker x workers
    assert run["record"]["hyperparameters"]["steps_per_epoch"] == 20
    assert run["record"]["data"]["source"] == "synthetic"


def started_run(client: ApiClient, name: str) -> dict:
    run = client.create_run(name, 2, benchmark="digits")
    wait_for(lambda: len(workers_of(run["id"])) == 2, 120, "two worker processes")
    # Training has begun once rank 0 posts an epoch or loss point.
    wait_for(lambda: client.get_run_metrics(run["id"]), 120, "the first metrics")
    return run


def assert_no_stack_secret(process: psutil.Process, stack: Stack) -> None:
    """A rank sees the API URL, its run's token and what training needs: nothing the stack
    keeps secret (Airflow's keys, the users' passwords, the database)."""
    env = process.environ()
    credentials = ensure_credentials(stack.paths)
    secrets = {
        credentials.admin_password,
        credentials.mlbench_password,
        credentials.jwt_secret,
        credentials.secret_key,
    }
    assert not [k for k in env if k.startswith("AIRFLOW")], sorted(env)
    assert "MLBENCH_DATABASE_URL" not in env
    leaked = [k for k, v in env.items() if any(secret in v for secret in secrets)]
    assert leaked == []
    assert env["MLBENCH_API_TOKEN"] and env["MLBENCH_API_URL"].startswith("http://")


def test_stopping_a_run_stops_its_workers_and_cancels_it(stack, client):
    run = started_run(client, "to-stop")
    for process in workers_of(run["id"]):
        assert_no_stack_secret(process, stack)
    stopped = client.stop_run(run["id"])
    assert stopped["state"] == "CANCELLED"
    wait_for(lambda: not workers_of(run["id"]), 60, "the workers to exit")
    wait_for(lambda: dag_run_state(stack, client, run["job_id"]) == "failed", 60, "DAG run failed")
    time.sleep(3)  # the finalize task, if it runs, must leave a cancelled run as it is
    assert client.get_run(run["id"])["state"] == "CANCELLED"
    wait_for(lambda: not sandboxes(), 30, "its sandboxes removed")


def sandboxes() -> set[str]:
    return {item for item in footprint() if item.startswith(("netns mlb-", "cgroup ", "record"))}


def test_a_run_waits_for_the_cpus_another_run_holds(stack, client):
    first = started_run(client, "holds-cpus")  # 2 workers x 1 CPU: this machine's 2
    assert len(client.get_pods(run_id=first["id"])) == 2
    second = client.create_run("waits", 2, benchmark="digits")
    waiting = wait_for(
        lambda: (client.get_run(second["id"])["job_metadata"].get("waiting") or {}).get("reason"),
        60,
        "the second run to say why it waits",
    )
    assert waiting == (
        "waiting for 2 CPUs: 0 of the machine's 2 are free; held by 'holds-cpus' (2)"
    )
    time.sleep(3)  # it keeps waiting: no worker of it starts beside the first run's
    assert client.get_run(second["id"])["state"] == "INITIALIZED"
    assert workers_of(second["id"]) == []
    client.stop_run(first["id"])
    wait_for(lambda: len(workers_of(second["id"])) == 2, 120, "the second run's workers")
    assert not workers_of(first["id"])
    started = client.get_run(second["id"])
    assert started["state"] == "STARTED" and "waiting" not in started["job_metadata"]
    assert started["job_metadata"]["limits"]["cpu"]["status"] == "enforced"
    client.stop_run(second["id"])
    wait_for(lambda: not workers_of(second["id"]) and not sandboxes(), 60, "all gone")


def test_deleting_a_running_run_stops_it_and_removes_it(stack, client):
    run = started_run(client, "to-delete")
    client.delete_run(run["id"])
    with pytest.raises(NotFound):
        client.get_run(run["id"])
    wait_for(lambda: not workers_of(run["id"]), 60, "the workers to exit")
    # failed once its teardown ran (Airflow keeps it running until then)
    wait_for(lambda: dag_run_state(stack, client, run["job_id"]) == "failed", 60, "DAG run failed")
    assert client.get_pods(run_id=run["id"]) == []
    wait_for(lambda: not sandboxes(), 30, "its sandboxes removed")


def assert_no_point_twice(series: dict[str, list[dict]]) -> None:
    for name, points in series.items():
        marks = [json.loads(p["metadata"]) if p.get("metadata") else p["date"] for p in points]
        keys = [json.dumps(m, sort_keys=True) for m in marks]
        assert len(keys) == len(set(keys)), f"{name} has points twice"


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_a_run_lost_with_the_scheduler_fails_as_interrupted_instead_of_training_again(
    stack, client
):
    """The scheduler and its executor are killed (SIGKILL to their process group) while a
    run trains; its ranks die with their task. `mlbench up` ends what the group left,
    sweeps the dead task's sandboxes and starts the scheduler again, which resets the
    orphaned ranks task: its second attempt fails the run as interrupted instead of
    training a second series on top of the first."""
    run = client.create_run("lost", 2, benchmark="digits", epochs=30, settings={"lr": 0.0005})
    wait_for(lambda: len(workers_of(run["id"])) == 2, 120, "two worker processes")
    wait_for(lambda: client.get_run_metrics(run["id"]), 120, "the first metrics")
    group = int(stack.read_state()["processes"]["scheduler"]["pid"])
    members = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(process.pid) == group:
                members.append(process)
    assert len(members) > 1  # the scheduler and its LocalExecutor workers
    ranks = workers_of(run["id"])
    killed = time.monotonic()
    os.killpg(group, signal.SIGKILL)
    wait_for(lambda: not alive(ranks), 30, "the ranks to die with their task")
    # The new scheduler resets the tasks of a scheduler whose heartbeat is older than
    # scheduler_health_check_threshold (30 s) when it starts.
    time.sleep(40)
    state = Stack(stack.settings).up(timeout=180)
    assert state["restarted"] == ["scheduler"]
    assert alive(members) == []  # nothing of the old scheduler's group is left
    wait_for(lambda: client.get_run(run["id"])["state"] in ("FINISHED", "FAILED"), 300,
             "the run to end")  # fmt: skip
    print(f"the run ended {time.monotonic() - killed:.0f} s after the scheduler was killed, "
          f"{len(members)} processes in its group")  # fmt: skip
    done = client.get_run(run["id"])
    assert done["state"] == "FAILED", done["job_metadata"]
    assert done["job_metadata"]["failure"].startswith("interrupted: its workers were started")
    assert_no_point_twice(client.get_run_metrics(run["id"], metadata=True))
    assert not workers_of(run["id"])
    wait_for(lambda: not sandboxes(), 60, "its sandboxes removed")
    wait_for(lambda: dag_run_state(stack, client, run["job_id"]) == "failed", 120, "DAG failed")


def test_a_run_rides_out_an_api_server_restart(stack, client):
    """The api-server is killed mid-run and started again 45 s later (`mlbench up` restarts
    what died): the run FINISHES with every metric and log line, none twice. Last in this
    module: the stack's api-server is a new process afterwards."""
    epochs = 30  # digits at a learning rate that never reaches the goal: ~100 s of training
    run = client.create_run("rides-out", 2, benchmark="digits", epochs=epochs,
                            settings={"lr": 0.0005})  # fmt: skip
    wait_for(lambda: client.get_run_metrics(run["id"]), 120, "the first metrics")
    api_server = stack.read_state()["processes"]["api-server"]
    os.killpg(int(api_server["pid"]), signal.SIGKILL)
    time.sleep(45)
    state = Stack(stack.settings).up(timeout=180)
    assert state["restarted"] == ["api-server"]
    wait_for(lambda: client.get_run(run["id"])["state"] in ("FINISHED", "FAILED"), 400,
             "the run to end")  # fmt: skip
    done = client.get_run(run["id"])
    assert done["state"] == "FINISHED", done["job_metadata"]
    assert not done["job_metadata"].get("failure")
    assert done["result"]["epochs"] == epochs
    series = client.get_run_metrics(run["id"], metadata=True)
    assert_no_point_twice(series)
    epoch_marks = {json.loads(p["metadata"])["epoch"] for p in series["val_loss"]}
    assert epoch_marks == set(range(1, epochs + 1))  # every epoch's validation, once
    lines = [line["line"] for line in client.get_logs(run["id"], limit=10_000)["lines"]]
    for rank in (0, 1):
        for epoch in range(1, epochs + 1):
            said = [ln for ln in lines if ln.startswith(f"rank {rank}: epoch {epoch}/{epochs} ")]
            assert len(said) == 1, (rank, epoch, said)
    wait_for(lambda: dag_run_state(stack, client, run["job_id"]) == "success", 120, "success")
