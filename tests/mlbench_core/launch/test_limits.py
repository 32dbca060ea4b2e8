"""The limits a user sets hold on the local backend: 2-rank runs with real workers, each
rank in its sandbox, measured from the runs' own results and series."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime

import psutil
import pytest

from mlbench_core.launch.sandbox import sweep
from tests.mlbench_core.launch.test_facilities import require_facilities
from tests.mlbench_core.launch.test_local import launcher_for
from tests.support.sandboxes import footprint
from tests.support.waiting import wait_for


@pytest.fixture(autouse=True)
def facilities():
    require_facilities()


@pytest.fixture
def store_url(tmp_path) -> str:
    """SQLite only: the store is not what these tests are about (the API tests cover both)."""
    return f"sqlite:///{tmp_path / 'mlbench.db'}"


def allreduce_settings(largest: int) -> dict:
    """0a in float32 up to ``largest`` elements, one size per decade, 5 timed calls each."""
    return {"max_elements": largest, "per_decade": 1, "warmup": 1, "repeats": 5,
            "dtypes": "float32"}  # fmt: skip


@pytest.mark.parametrize(
    ("cap", "largest"),
    [(10, 500_000), (50, 2_500_000)],  # the largest all-reduce takes ~1.6 s at the cap
)
def test_the_bus_bandwidth_of_0a_meets_the_cap(admin, api_url, cap, largest):
    run, launcher = launcher_for(
        admin, api_url, f"capped-{cap}", "0a", allreduce_settings(largest), max_bandwidth=cap
    )
    assert launcher.launch() == [0, 0]
    done = admin.get_run(run["id"])
    result = done["result"]
    assert result["bandwidth_cap_mbit_s"] == cap
    reached = result["busbw_at_largest"]["float32"]
    assert reached["bytes"] == largest * 4
    assert 0.85 <= reached["of_cap"] <= 1.15, f"{reached['busbw_mbit_s']:.1f} Mbit/s at {cap}"
    limits = done["job_metadata"]["limits"]
    assert limits["bandwidth"]["status"] == "enforced"
    assert f"tbf rate {cap} Mbit/s" in limits["bandwidth"]["by"]


def test_uncapped_0a_runs_far_above_the_caps(admin, api_url):
    run, launcher = launcher_for(admin, api_url, "uncapped", "0a", allreduce_settings(2_500_000))
    assert launcher.launch() == [0, 0]
    result = admin.get_run(run["id"])["result"]
    assert result["bandwidth_cap_mbit_s"] is None
    assert result["busbw_at_largest"]["float32"]["busbw_mbit_s"] >= 10 * 50


def test_each_rank_counts_its_own_traffic(admin, api_url):
    run, launcher = launcher_for(
        admin, api_url, "counted", "0a", allreduce_settings(1_000_000), max_bandwidth=100
    )
    assert launcher.launch() == [0, 0]
    pods = sorted(admin.get_pods(run_id=run["id"]), key=lambda p: p["rank"])
    assert [p["ip"] for p in pods] == ["10.200.0.1", "10.200.0.2"]
    series = [admin.get_pod_metrics(p["name"], metadata=True) for p in pods]
    sent = [s["container_network_transmit_bytes_total"] for s in series]
    received = [s["container_network_receive_bytes_total"] for s in series]
    scope = json.loads(sent[0][-1]["metadata"])
    assert scope["interface"] == "eth0" and "this rank's network namespace" in scope["scope"]
    # the all-reduces moved ~4 MB x 5 calls each way; only the link between the two ranks
    # carried it: what one rank sent, the other received
    for a, b in ((0, 1), (1, 0)):
        moved = sent[a][-1]["value"] - sent[a][0]["value"]
        assert moved > 15e6
        assert received[b][-1]["value"] - received[b][0]["value"] == pytest.approx(moved, rel=0.02)
    # neither rank saw the host's traffic (the API's, over the host's loopback): the host's
    # counters are no rank's
    host = json.loads(subprocess.run(["ip", "-j", "-s", "link", "show", "lo"],
                                     capture_output=True, text=True).stdout)[0]  # fmt: skip
    assert all(s[-1]["value"] < host["stats64"]["tx"]["bytes"] for s in sent)


def test_half_a_cpu_per_rank_holds_over_the_run(admin, api_url):
    run, launcher = launcher_for(admin, api_url, "half-cpu", num_cpus=0.5)
    assert launcher.launch() == [0, 0]
    limits = admin.get_run(run["id"])["job_metadata"]["limits"]
    assert limits["cpu"]["status"] == "enforced" and "CFS quota 50000 us" in limits["cpu"]["by"]
    for pod in admin.get_pods(run_id=run["id"]):
        points = admin.get_pod_metrics(pod["name"])["container_cpu_usage_seconds_total"]
        first, last = points[0], points[-1]
        wall = datetime.fromisoformat(last["date"]) - datetime.fromisoformat(first["date"])
        wall = wall.total_seconds()
        assert wall > 1.0
        cores = (last["value"] - first["value"]) / wall
        assert cores <= 0.6, f"{pod['name']} used {cores:.2f} cores under 0.5 CPU"
        throttled = admin.get_pod_metrics(pod["name"])["container_cpu_cfs_throttled_seconds_total"]
        assert throttled[-1]["value"] > 0  # the quota bit


LAUNCH = """
import sys
from mlbench_core.api import ApiClient
from mlbench_core.launch.local import LocalLauncher
url, token, run_id, admin = sys.argv[1:5]
run = ApiClient(url, token=admin).get_run(int(run_id))
LocalLauncher(run, ApiClient(url, token=token), worker_token=token, api_url=url).launch()
"""


def test_a_killed_deploy_task_leaves_nothing_once_swept(admin, api_url, admin_token):
    before = footprint()
    run = admin.create_run("task-killed", 2, benchmark="digits", job_id="test", max_bandwidth=20)
    token = admin.issue_worker_token(run["id"])
    env = {**os.environ, "MLBENCH_STEP_DELAY": "0.05"}  # long enough to be killed mid-run
    task = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, api_url, token, str(run["id"]), admin_token],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(
            lambda: (
                all(p["phase"] == "Running" for p in admin.get_pods(run_id=run["id"]))
                and len(admin.get_pods(run_id=run["id"])) == 2
            ),
            timeout=60,
            what="both ranks running",
        )
        os.killpg(task.pid, signal.SIGKILL)  # the task and nothing else: ranks are in theirs
        task.wait(10)
        # the ranks die with their launcher (PR_SET_PDEATHSIG); their sandboxes stay...
        wait_for(lambda: not _worker_pids(run["id"]), timeout=20, what="ranks gone")
        assert any(item.startswith("netns mlb-") for item in footprint() - before)
    finally:
        if task.poll() is None:
            os.killpg(task.pid, signal.SIGKILL)
            task.wait(10)
    # ...until the next sweep (run's finalize, next launch, mlbench up/down)
    assert len(sweep()) == 1
    assert footprint() == before


def _worker_pids(run_id: int) -> list[int]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "mlbench_core.worker" in cmdline and str(run_id) in cmdline:
            found.append(process.pid)
    return found
