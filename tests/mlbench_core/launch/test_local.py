"""The local backend with real worker processes and the real API: supervision, failure,
cancellation, pod phases and logs."""

from __future__ import annotations

import os
import signal
import threading
import time

import psutil
import pytest

from mlbench_core.api import ApiClient
from mlbench_core.launch.facilities import detect
from mlbench_core.launch.local import LocalLauncher, WorkersFailed
from tests.mlbench_core.launch.test_facilities import require_facilities


def launcher_for(  # noqa: ANN201
    admin: ApiClient,
    api_url: str,
    name: str,
    benchmark: str = "digits",
    settings: dict | None = None,
    **fields,
):
    """A run created through the API and its launcher; ``settings``: the benchmark's
    overrides (``--set``), which the run's record carries to the worker command."""
    run = admin.create_run(name, 2, benchmark=benchmark, job_id="test", **fields)
    if settings:
        run = {**run, "settings": settings}
    token = admin.issue_worker_token(run["id"])
    return run, LocalLauncher(
        run,
        ApiClient(api_url, token=token),
        worker_token=token,
        api_url=api_url,
        grace=3.0,
        echo=None,
        on_limits=lambda limits: admin.update_run(
            run["id"], job_metadata={"limits": limits.record()}
        ),
    )


def wait_started(launcher: LocalLauncher, n: int = 2, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(launcher.processes) < n:
        assert time.monotonic() < deadline, "ranks did not start"
        time.sleep(0.05)


def assert_all_gone(launcher: LocalLauncher) -> None:
    for process in launcher.processes:
        assert process.returncode is not None
        assert (
            not psutil.pid_exists(process.pid) or psutil.Process(process.pid).status() == "zombie"
        )


def test_a_run_completes_and_records_phases_and_logs(admin, api_url):
    run, launcher = launcher_for(admin, api_url, "ok")
    assert launcher.launch() == [0, 0]
    assert [p["phase"] for p in admin.get_pods(run_id=run["id"])] == ["Succeeded", "Succeeded"]
    lines = admin.get_logs(run["id"], limit=10_000)["lines"]
    assert {line["rank"] for line in lines} == {0, 1}
    result = admin.get_run(run["id"])["result"]
    assert result["reached"] is True
    # each rank's peak from its memory cgroup (every process of the rank), where there is one
    require_facilities()  # skipped without them, failed under CI=true
    assert detect().memory is not None, "no writable cgroup hierarchy with the memory controller"
    assert [r["by"] for r in result["memory"]["per_rank"]] == ["cgroup", "cgroup"]


def test_a_killed_rank_stops_the_others_quickly(admin, api_url):
    run, launcher = launcher_for(admin, api_url, "killed")
    outcome: dict = {}

    def launch() -> None:
        try:
            launcher.launch()
        except WorkersFailed as exc:
            outcome["error"] = exc
        outcome["at"] = time.monotonic()

    thread = threading.Thread(target=launch)
    thread.start()
    wait_started(launcher)
    killed_at = time.monotonic()
    os.kill(launcher.processes[1].pid, signal.SIGKILL)
    thread.join(60)
    assert not thread.is_alive(), "the launcher hung"
    assert "rank 1 was killed by signal 9 (SIGKILL)" in str(outcome["error"])
    assert outcome["at"] - killed_at < launcher.grace + 5
    assert_all_gone(launcher)
    phases = {p["rank"]: p["phase"] for p in admin.get_pods(run_id=run["id"])}
    assert phases[1] == "Failed"


def test_a_worker_that_fails_is_reported_with_its_stderr(admin, api_url):
    # The tests' MLBENCH_DATA_URL leads nowhere: 1a cannot get CIFAR-10, and says so.
    _run, launcher = launcher_for(admin, api_url, "no-data", benchmark="1a")
    with pytest.raises(WorkersFailed, match="dataset of benchmark 1a: cannot download"):
        launcher.launch()
    assert_all_gone(launcher)


def test_sigterm_of_the_task_stops_every_rank(admin, api_url):
    _run, launcher = launcher_for(admin, api_url, "cancelled")

    def terminate_when_started() -> None:
        wait_started(launcher)
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_when_started)
    killer.start()
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(WorkersFailed, match="cancelled by signal 15"):
        launcher.launch()  # in the main thread, where Airflow's task runs it
    killer.join()
    assert signal.getsignal(signal.SIGTERM) is previous
    assert_all_gone(launcher)


def test_a_signal_inside_popen_poll_does_not_deadlock_the_launcher(admin, api_url):
    """The signal may land while the main thread is inside ``Popen.poll``, holding that
    process's non-reentrant waitpid lock (CI once hung here until pytest-timeout): the
    handler must only signal the ranks, never wait for them."""
    import subprocess

    _run, launcher = launcher_for(admin, api_url, "signal-in-poll")
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    launcher.processes.append(process)
    forwarded: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: forwarded.append(signum))
    trapped = launcher._trap_signals()
    rescued = threading.Event()

    def rescue() -> None:  # a threading.Lock may be released by any thread
        if not handled.wait(20):
            rescued.set()
            process._waitpid_lock.release()

    handled = threading.Event()
    watchdog = threading.Thread(target=rescue)
    try:
        assert process._waitpid_lock.acquire(False)  # as Popen.poll holds it
        watchdog.start()
        signal.raise_signal(signal.SIGTERM)  # the handler runs here, in this thread
        handled.set()
        if not rescued.is_set():
            process._waitpid_lock.release()
        watchdog.join()
        assert not rescued.is_set(), "the handler waited on a lock its own thread holds"
        assert forwarded == [signal.SIGTERM]  # the previous handler still ran
        assert launcher._cancelled == signal.SIGTERM
        assert process.wait(30) == -signal.SIGTERM  # the rank was told to stop
    finally:
        launcher._restore_signals(trapped)
        signal.signal(signal.SIGTERM, previous)
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_rank_sees_none_of_the_launchers_secrets():
    from mlbench_core.launch.local import host_env

    launcher = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "LC_ALL": "C.UTF-8",
        "NCCL_DEBUG": "INFO",
        "AIRFLOW__API_AUTH__JWT_SECRET": "s3cret",
        "AIRFLOW_CONN_MLBENCH_API": '{"password": "p"}',
        "MLBENCH_DATABASE_URL": "postgresql://u:p@db/mlbench",
        "MLBENCH_API_TOKEN": "the-admins-jwt",
    }
    assert host_env(launcher) == {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "LC_ALL": "C.UTF-8",
        "NCCL_DEBUG": "INFO",
    }
