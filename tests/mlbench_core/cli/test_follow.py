"""``mlbench run --follow``: a thread plays the DAG (state, metrics, result) meanwhile."""

from __future__ import annotations

import io
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from mlbench_core.api import ApiClient
from mlbench_core.cli import follow as follow_module
from mlbench_core.cli.follow import follow

RESULT = {
    "reached": True,
    "time_to_target_s": 12.5,
    "split": {"compute_s": 8.0, "communication_s": 3.0, "data_s": 1.5},
}


@pytest.fixture(autouse=True)
def fast_polling(monkeypatch):
    monkeypatch.setattr(follow_module, "POLL_S", 0.1)


@pytest.fixture
def client(live_server, admin_token, cli_env):
    with ApiClient(f"{live_server}/mlbench", token=admin_token) as api:
        yield api


class FakeDag(threading.Thread):
    """Waits for run ``name`` to exist, then moves it like the DAG and workers would."""

    def __init__(self, client: ApiClient, name: str, end: str, result: dict | None) -> None:
        super().__init__(daemon=True)
        self.client, self.name, self.end, self.result = client, name, end, result
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            run_id = self._wait_for_run()
            api = self.client
            api.update_run(run_id, state="STARTED", job_metadata={"epochs": 3})
            for epoch in (1, 2, 3):
                time.sleep(0.3)
                api.post_metrics(
                    [
                        api.metric("epoch", epoch, run_id=run_id),
                        api.metric("train_loss", 2.0 / epoch, run_id=run_id),
                        api.metric("val_accuracy", 30.0 * epoch, run_id=run_id),
                    ]
                )
            time.sleep(0.3)
            failure = {"failure": "rank 1 exited with code 3"} if self.end == "FAILED" else None
            api.update_run(run_id, state=self.end, result=self.result, job_metadata=failure)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def _wait_for_run(self) -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for run in self.client.get_runs():
                if run["name"] == self.name:
                    return run["id"]
            time.sleep(0.05)
        raise TimeoutError(f"run {self.name} was not created")


def follow_run(mlbench, client, name, end, result):
    dag = FakeDag(client, name, end, result)
    dag.start()
    outcome = mlbench("run", name, "--benchmark", "1a", "--workers", "2", "--follow")
    dag.join(timeout=30)
    assert dag.error is None, dag.error
    return outcome


def test_follow_until_finished(mlbench, client):
    result = follow_run(mlbench, client, "followed", "FINISHED", RESULT)
    assert result.code == 0, result.err
    assert result.err == ""
    out = result.out
    assert "created run followed" in out
    assert "followed: STARTED" in out
    assert "training epoch 2 of 3" in out and "finishing after epoch 3 of 3" in out
    assert "train_loss=0.6667" in out and "val_accuracy=90" in out
    assert "ended FINISHED" in out
    for expected in (
        "goal reached",
        "yes",
        "time to target",
        "12.5 s",
        "compute (rank 0)",
        "8.0 s",
    ):
        assert expected in out
    # the states and epochs in the order they happened (the fake DAG starts the run as soon
    # as it exists: its INITIALIZED may come and go before the first look)
    assert out.index("STARTED") < out.index("training epoch 2") < out.index("ended FINISHED")


def test_follow_a_run_that_fails_exits_1(mlbench, client):
    result = follow_run(mlbench, client, "doomed", "FAILED", None)
    assert result.code == 1
    assert "ended FAILED" in result.out
    assert "no result recorded" in result.out
    assert "failure: rank 1 exited with code 3" in result.out
    lines = result.err.splitlines()
    assert lines == ["mlbench: error: run doomed ended FAILED: rank 1 exited with code 3"]


def test_the_live_view_on_a_terminal(client):
    """On a terminal, a live progress bar of epochs and a table of the latest metrics."""
    run = client.create_run("terminal", 2, benchmark="1a")
    client.update_run(run["id"], state="STARTED", job_metadata={"epochs": 4})
    client.post_metrics(
        [
            client.metric("epoch", 2, run_id=run["id"]),
            client.metric("train_loss", 0.25, run_id=run["id"]),
            client.metric("val_top1", 61.5, run_id=run["id"]),
            client.metric("lr", 0.1, run_id=run["id"]),
        ]
    )
    client.update_run(run["id"], state="FINISHED", result={"reached": False})
    screen = io.StringIO()
    out = Console(file=screen, force_terminal=True, width=120, color_system=None)
    ended = follow(client, run, out)
    assert ended["state"] == "FINISHED"
    text = screen.getvalue()
    assert "2/4" in text and "done after epoch 2 of 4" in text
    assert "train_loss" in text and "0.25" in text and "val_top1" in text and "61.5" in text


def test_follow_reattaches_to_a_running_run_with_its_phase_and_eta(mlbench, client):
    run = client.create_run("reattached", 2, benchmark="1a")
    assert "scheduling" in mlbench_line(client, run)
    client.update_run(run["id"], job_metadata={"waiting": {"reason": "waiting for 2 CPUs"}})
    assert "queued (waiting for 2 CPUs)" in mlbench_line(client, run)
    client.update_run(run["id"], state="STARTED", job_metadata={"epochs": 4, "waiting": None})
    assert "preparing" in mlbench_line(client, run)
    client.update_run(run["id"], job_metadata={"launched": {"attempt": 1}})
    assert "starting workers" in mlbench_line(client, run)
    start = datetime.now(UTC) - timedelta(seconds=30)
    client.post_metrics(
        [
            client.metric("epoch", 1, run_id=run["id"], date=start + timedelta(seconds=10)),
            client.metric("epoch", 2, run_id=run["id"], date=start + timedelta(seconds=20)),
            client.metric("validation_started", 3, run_id=run["id"], date=start),
            client.metric("train_loss", 0.5, run_id=run["id"], date=start + timedelta(seconds=25)),
        ]
    )
    line = mlbench_line(client, run)
    # 10 s per epoch, 2 epochs left, 10 s into epoch 3: at most ~10 s left
    assert "training epoch 3 of 4, at most" in line
    eta = float(line.split("at most ")[1].split(" s left")[0])
    assert 5 <= eta <= 10

    dag = threading.Thread(
        target=lambda: (
            time.sleep(1.0),
            client.post_metrics([client.metric("validation_started", 3, run_id=run["id"])]),
            time.sleep(0.5),
            client.update_run(run["id"], state="FAILED", job_metadata={"failure": "rank 0 died"}),
        ),
        daemon=True,
    )
    dag.start()
    result = mlbench("follow", "reattached")
    dag.join(timeout=10)
    assert result.code == 1
    assert "reattached: STARTED  training epoch 3 of 4" in result.out
    assert "validating epoch 3 of 4" in result.out
    assert "ended FAILED" in result.out and "failure: rank 0 died" in result.out
    assert result.err.splitlines() == ["mlbench: error: run reattached ended FAILED: rank 0 died"]
    assert mlbench("follow", "nothing-such").err.startswith("mlbench: error: no run named")


def mlbench_line(client, run) -> str:
    snapshot = follow_module.Snapshot(client.get_run(run["id"]))
    snapshot.add(client.get_run_metrics(run["id"]))
    return snapshot.line()
