"""The embedded stack: real Airflow processes under a private MLBENCH_HOME on a free port."""

from __future__ import annotations

import json
import re
import socket
import stat
import time

import psutil
import pytest
import requests

from harness.server import free_port
from mlbench_core.api import ApiClient
from mlbench_core.cli import main
from mlbench_core.settings import Settings
from mlbench_core.stack import PROCESSES, PortInUse, Stack, StackError
from mlbench_core.stack_env import (
    StackPaths,
    ensure_credentials,
    load_credentials,
    stack_environment,
)
from tests.support.waiting import wait_for


def stack_processes(airflow_home) -> list[psutil.Process]:
    """Every process naming this AIRFLOW_HOME in its environment or command line."""
    home = str(airflow_home)
    found = []
    for process in psutil.process_iter(["environ", "cmdline"]):
        environ = process.info["environ"] or {}
        cmdline = process.info["cmdline"] or []
        if environ.get("AIRFLOW_HOME") == home or any(home in arg for arg in cmdline):
            found.append(process)
    return found


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_credentials_are_generated_once_and_private(tmp_path):
    paths = StackPaths(tmp_path)
    first = ensure_credentials(paths)
    assert stat.S_IMODE(paths.credentials.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.passwords.stat().st_mode) == 0o600
    assert ensure_credentials(paths) == first == load_credentials(tmp_path)
    assert json.loads(paths.passwords.read_text()) == {
        "admin": first.admin_password,
        "mlbench": first.mlbench_password,
    }
    assert len({first.admin_password, first.mlbench_password, first.jwt_secret}) == 3


def test_the_environment_is_the_stacks_own(tmp_path):
    settings = Settings(home=tmp_path, port=9123)
    credentials = ensure_credentials(StackPaths(tmp_path))
    caller = {
        "PATH": "/usr/bin",
        "AIRFLOW_HOME": "/elsewhere",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://elsewhere",
        "MLBENCH_API_TOKEN": "a-worker-token",
    }
    env = stack_environment(settings, credentials, base=caller)
    assert env["PATH"] == "/usr/bin"
    assert env["AIRFLOW_HOME"] == str(tmp_path / "airflow")
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in env
    assert "MLBENCH_API_TOKEN" not in env and "MLBENCH_DATABASE_URL" not in env
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:9123/execution/"
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == credentials.jwt_secret
    assert env["MLBENCH_API_URL"] == "http://127.0.0.1:9123/mlbench"
    connection = json.loads(env["AIRFLOW_CONN_MLBENCH_API"])
    assert (connection["login"], connection["password"]) == (
        "mlbench",
        credentials.mlbench_password,
    )
    assert (connection["port"], connection["extra"]) == (9123, {"path": "/mlbench"})
    # tasks ride out an api-server away for as long as the workers wait for it
    assert env["MLBENCH_API_WAIT"] == "180.0"
    assert env["AIRFLOW__WORKERS__MAX_FAILED_HEARTBEATS"] == "36"
    assert env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"] == "360"
    patient = stack_environment(Settings(home=tmp_path, api_wait=600), credentials)
    assert patient["AIRFLOW__WORKERS__MAX_FAILED_HEARTBEATS"] == "120"
    assert patient["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"] == "1200"
    hasty = stack_environment(Settings(home=tmp_path, api_wait=5), credentials)
    assert hasty["AIRFLOW__WORKERS__MAX_FAILED_HEARTBEATS"] == "3"  # Airflow's default
    assert hasty["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"] == "60"  # the chart's least
    with_db = Settings(home=tmp_path, port=9123, database_url="postgresql+psycopg2://x/y")
    assert stack_environment(with_db, credentials)["MLBENCH_DATABASE_URL"].endswith("x/y")


def test_a_port_in_use_is_a_clear_error(tmp_path, settings_env, capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        stack = Stack(Settings(home=tmp_path, port=port))
        with pytest.raises(PortInUse, match=f"port {port} is in use by another program"):
            stack.up(timeout=30)
        settings_env.setenv("MLBENCH_HOME", str(tmp_path))
        settings_env.setenv("MLBENCH_PORT", str(port))
        capsys.readouterr()
        assert main(["up"]) == 1
        err = capsys.readouterr().err
    assert err.startswith(f"mlbench: error: port {port} is in use by another program")
    assert len(err.splitlines()) == 1
    assert not stack.is_up()
    assert not (tmp_path / "stack.json").exists()


def test_down_without_a_stack(tmp_path):
    stack = Stack(Settings(home=tmp_path, port=free_port()))
    assert stack.down() == []
    assert not stack.is_up()
    assert stack.status()["up"] is False


def test_up_reuse_trigger_down(tmp_path, settings_env, capsys):
    home = tmp_path / "home"
    settings = Settings(home=home, port=free_port())
    stack = Stack(settings)
    paths = StackPaths(home)
    pids: list[int] = []
    try:
        started = time.monotonic()
        state = stack.up(timeout=180)
        up_seconds = time.monotonic() - started
        with capsys.disabled():
            print(f"\nStack.up() took {up_seconds:.1f} s")
        pids = [entry["pid"] for entry in state["processes"].values()]
        assert state["reused"] is False
        assert set(state["processes"]) == set(PROCESSES)
        assert stack.is_up()
        root = state["root"]
        assert root == f"http://127.0.0.1:{settings.port}"

        # files in MLBENCH_HOME
        assert json.loads(paths.state.read_text())["port"] == settings.port
        assert stat.S_IMODE(paths.credentials.stat().st_mode) == 0o600
        for name in PROCESSES:
            assert paths.log(name).stat().st_size > 0
        credentials = load_credentials(home)

        # Airflow is healthy; the plugin answers the admin; the DAG user may log in too
        health = requests.get(f"{root}/api/v2/monitor/health", timeout=10).json()
        assert health["metadatabase"]["status"] == "healthy"
        assert health["scheduler"]["status"] == "healthy"
        assert stack.status()["health"]["scheduler"]["status"] == "healthy"
        http = requests.Session()
        with ApiClient.login(f"{root}/mlbench", "admin", credentials.admin_password) as admin:
            assert admin.root_url == root
            http.headers["Authorization"] = f"Bearer {admin.token}"
        benchmarks = http.get(f"{root}/mlbench/api/benchmarks", timeout=30)
        assert benchmarks.status_code == 200
        assert "1a" in {spec["id"] for spec in benchmarks.json()}
        assert requests.get(f"{root}/mlbench/api/runs/", timeout=30).status_code == 401
        with ApiClient.login(f"{root}/mlbench", "mlbench", credentials.mlbench_password) as dag:
            assert dag.token

        # a second up() reuses the running stack
        again = Stack(settings).up(timeout=60)
        assert again["reused"] is True
        assert [entry["pid"] for entry in again["processes"].values()] == pids
        assert load_credentials(home) == credentials

        # a run through the stack's API: the scheduler picks its DAG run up
        created = http.post(
            f"{root}/mlbench/api/runs/",
            json={"name": "on-the-stack", "num_workers": 1, "benchmark": "1a"},
            timeout=60,
        )
        assert created.status_code == 201, created.text
        job_id = created.json()["job_id"]

        def scheduled():
            answer = http.get(f"{root}/api/v2/dags/mlbench_run/dagRuns/{job_id}", timeout=30)
            assert answer.status_code == 200, answer.text
            return answer.json()["state"] != "queued" and answer.json()["state"]

        picked = time.monotonic()
        dag_state = wait_for(scheduled, 60, "the DAG run left 'queued'")
        with capsys.disabled():
            print(f"DAG run {dag_state} after {time.monotonic() - picked:.1f} s")

        # the CLI against the running stack: `mlbench up` reuses it and says how to log in;
        # `mlbench status` finds the API in stack.json and logs in as the admin
        settings_env.setenv("MLBENCH_HOME", str(home))
        settings_env.setenv("MLBENCH_PORT", str(settings.port))
        settings_env.delenv("MLBENCH_API_URL")
        settings_env.delenv("MLBENCH_API_TOKEN")
        capsys.readouterr()
        assert main(["up"]) == 0
        out = capsys.readouterr().out
        assert "already running" in out
        for expected in (f"{root}/", f"{root}/mlbench/api/", f"{root}/mlbench/"):
            assert expected in out
        assert "user admin" in out and credentials.admin_password in out
        assert "bandwidth caps: enforced (a network namespace per rank, tc on its link)" in out
        assert "CPU limits: enforced as CFS quotas" in out
        assert main(["status"]) == 0
        assert "on-the-stack" in capsys.readouterr().out
        stopping = time.monotonic()
        assert main(["down"]) == 0
        with capsys.disabled():
            print(f"`mlbench down` took {time.monotonic() - stopping:.1f} s")
        assert "stopped the mlbench stack" in capsys.readouterr().out
        assert not stack.is_up()
    finally:
        stack.down()
    assert not paths.state.exists()
    assert not [pid for pid in pids if alive(pid)]
    assert stack_processes(paths.airflow_home) == []

    # A stack that is not ready in time is stopped, and the error shows the log's tail.
    failing = time.monotonic()
    with pytest.raises(StackError) as failure:
        stack.up(timeout=2)
    with capsys.disabled():
        print(f"a stack not ready in 2 s failed and stopped in {time.monotonic() - failing:.1f} s")
    assert failure.value.process in PROCESSES
    assert str(failure.value.log) in str(failure.value)
    assert "after 2 s" in failure.value.summary
    assert not paths.state.exists()
    assert stack_processes(paths.airflow_home) == []
    # the same through the CLI: one line naming the log, exit code 1
    capsys.readouterr()
    assert main(["up", "--timeout", "2"]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "after 2 s" in err and f"log: {paths.logs}" in err
    assert stack_processes(paths.airflow_home) == []


def test_up_after_a_killed_stack_ends_every_process_it_left(tmp_path, settings_env, capsys):
    """kill -9 of the stack's processes leaves their children (the scheduler's LocalExecutor
    workers blank their environment and ignore SIGTERM); `mlbench up` ends them, says how
    many, and starts afresh."""
    home = tmp_path / "home"
    settings = Settings(home=home, port=free_port())
    stack = Stack(settings)
    try:
        state = stack.up(timeout=180)
        leaders = [psutil.Process(e["pid"]) for e in state["processes"].values()]

        def descendants() -> list[psutil.Process]:
            return [c for leader in leaders for c in leader.children(recursive=True)]

        wait_for(lambda: len(descendants()) >= 2, 60, "the stack's child processes")
        old = {p.pid for p in leaders} | {p.pid for p in descendants()}
        for leader in leaders:
            leader.kill()
        psutil.wait_procs(leaders, timeout=10)
        time.sleep(1)
        orphans = [pid for pid in old if alive(pid)]
        assert orphans, "killing the leaders left nothing: the test shows nothing"
        settings_env.setenv("MLBENCH_HOME", str(home))
        settings_env.setenv("MLBENCH_PORT", str(settings.port))
        capsys.readouterr()
        assert main(["up"]) == 0
        out = capsys.readouterr().out
        ended = re.search(r"ended (\d+) leftover processes of an earlier stack", out)
        assert ended and 1 <= int(ended.group(1)) <= len(old), out
        assert not [pid for pid in old if alive(pid)]
        assert Stack(settings).is_up()
    finally:
        Stack(settings).down()
    assert stack_processes(StackPaths(home).airflow_home) == []
