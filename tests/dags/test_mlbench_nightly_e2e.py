"""The nightly suite under the real scheduler of the embedded stack: started by
``mlbench nightly run``, a small suite (digits at 1 and 2 workers, twice each) runs run after
run and produces a report; an injected slowdown is then flagged as a regression and fails the
``compare`` task."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
import requests

from harness.environment import VENV_BIN
from harness.server import free_port
from mlbench_core.settings import Settings
from mlbench_core.stack import Stack

SUITE = """
history: 7
min_history: 3
entries:
  - benchmark: digits
    workers: [1, 2]
    light: true
    repetitions: 2
"""
KEYS = ["digits-1w-light", "digits-2w-light"]


def start_stack(home, port: int, step_delay: float = 0.0) -> Stack:  # noqa: ANN001
    stack = Stack(Settings(home=home, port=port, step_delay=step_delay, nightly_poll_interval=1.0))
    stack.up(timeout=240)
    return stack


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Iterator:  # noqa: ANN001
    yield tmp_path_factory.mktemp("nightly-stack")


def mlbench(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLBENCH_", "AIRFLOW"))}
    env.update(MLBENCH_HOME=str(stack.settings.home), MLBENCH_PORT=str(stack.settings.port))
    return subprocess.run(
        [str(VENV_BIN / "mlbench"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def task_states(stack: Stack, token: str, dag_run_id: str) -> dict[str, str]:
    base = f"http://127.0.0.1:{stack.settings.port}/api/v2/dags/mlbench_nightly"
    answer = requests.get(
        f"{base}/dagRuns/{dag_run_id}/taskInstances",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    answer.raise_for_status()
    states: dict[str, str] = {}
    for ti in answer.json()["task_instances"]:
        states.setdefault(ti["task_id"], ti["state"])
        if ti["state"] != "success":
            states[ti["task_id"]] = ti["state"]
    return states


def scheduled_runs(stack: Stack, token: str) -> list[str]:
    base = f"http://127.0.0.1:{stack.settings.port}/api/v2/dags/mlbench_nightly"
    answer = requests.get(
        f"{base}/dagRuns", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    answer.raise_for_status()
    return [r["dag_run_id"] for r in answer.json()["dag_runs"] if r["run_type"] == "scheduled"]


# Two stack starts and eight real runs: about 5 minutes on 2 cores, more than the default.
@pytest.mark.timeout(900)
def test_a_nightly_reports_and_a_slowdown_is_a_regression(home, tmp_path):
    from mlbench_core.cli.common import connect

    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    port = free_port()
    today = date.today().isoformat()

    stack = start_stack(home, port)
    try:
        first = mlbench(stack, "nightly", "run", "--suite", str(suite), "--wait")
        assert first.returncode == 0, first.stdout + first.stderr
        assert "insufficient-history" in first.stdout
        # --wait says which entry runs and where it is, then how each ended
        progress = [line for line in first.stdout.splitlines() if line.startswith("nightly-")]
        assert any("FINISHED: done" in line for line in progress), first.stdout
        assert len({line.split()[0] for line in progress}) >= len(KEYS), first.stdout
        client = connect(stack.settings)
        stored = client.get_nightly_report(today)
        report = stored["report"]
        assert stored["verdict"] == "insufficient-history"
        assert list(report["entries"]) == KEYS
        for key in KEYS:
            entry = report["entries"][key]
            assert [r["state"] for r in entry["runs"]] == ["FINISHED", "FINISHED"], entry
            assert entry["values"]["time_to_target_s"] > 0
            assert entry["values"]["throughput"] > 0
            assert 0 < entry["values"]["communication_share"] < 1 or key.startswith("digits-1w")
            assert entry["values"]["peak_memory_bytes"] > 10e6
        runs = {r["name"]: r for r in client.get_runs()}
        names = [r["name"] for e in report["entries"].values() for r in e["runs"]]
        created = sorted(runs[n]["created_at"] for n in names)
        finished = sorted(runs[n]["finished_at"] for n in names)
        one_at_a_time = all(f <= c for f, c in zip(finished, created[1:], strict=False))
        assert one_at_a_time, list(zip(created, finished, strict=True))
        written = home / "nightly" / f"{today}.md"
        assert written.is_file() and "digits-2w-light" in written.read_text()
        assert json.loads((home / "nightly" / f"{today}.json").read_text()) == report
        # Three earlier nights like this one: enough history to judge the next night.
        for days in (3, 2, 1):
            night = (date.today() - timedelta(days=days)).isoformat()
            client.put_nightly_report(night, stored["verdict"], {**report, "date": night})
        client.close()
    finally:
        stack.down()

    stack = start_stack(home, port, step_delay=0.02)  # every training step 20 ms slower
    try:
        second = mlbench(stack, "nightly", "run", "--suite", str(suite), "--wait")
        assert second.returncode == 1, second.stdout + second.stderr
        client = connect(stack.settings)
        stored = client.get_nightly_report(today)
        assert stored["verdict"] == "regression"
        for key in KEYS:
            entry = stored["report"]["entries"][key]
            assert entry["verdict"] == "regression"
            assert entry["verdicts"]["time_to_target_s"]["status"] == "regression"
            assert entry["verdicts"]["throughput"]["status"] == "regression"
            assert entry["baseline"] == "median of the last 3 nightlies"
        states = task_states(stack, client.token, stored["dag_run_id"])
        assert not scheduled_runs(stack, client.token)  # starting the stack started none
        assert states["compare"] == "failed" and states["report"] == "success"
        assert states["done"] == "upstream_failed"
        assert states["bench"] == "success"
        markdown = (home / "nightly" / f"{today}.md").read_text()
        assert "digits-1w-light: time_to_target_s" in markdown  # names the entry and change
        shown = mlbench(stack, "nightly", "report", today)
        assert shown.returncode == 1 and "regression" in shown.stdout
        client.close()
    finally:
        stack.down()
