"""A run's sandboxes as a whole: planned from the run and this machine's facilities, made,
described for the run's record, removed by their owner or, once it is gone, by the sweep."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys

import pytest

from mlbench_core.launch.facilities import detect
from mlbench_core.launch.limits import Status
from mlbench_core.launch.netns import NETNS_DIR, SandboxError
from mlbench_core.launch.sandbox import Sandbox, cpu_plan, sweep
from mlbench_core.settings import Settings
from tests.mlbench_core.launch.test_facilities import require_facilities
from tests.support.sandboxes import footprint

API = "http://127.0.0.1:8080/mlbench"


def a_run(**fields) -> dict:
    return {"id": 7, "name": "r", "num_workers": 2, "num_cpus": 0.5, "max_bandwidth": 10.0,
            "backend": "gloo", **fields}  # fmt: skip


def test_cpu_plan_gives_blocks_and_wraps():
    assert cpu_plan(2, 1, [0, 1]) == [[0], [1]]
    assert cpu_plan(2, 2, [0, 1, 2, 3]) == [[0, 1], [2, 3]]
    assert cpu_plan(3, 1, [0, 1]) == [[0], [1], [0]]
    assert cpu_plan(1, 4, [0, 1]) == [[0, 1]]


def test_a_sandbox_is_made_described_and_removed():
    require_facilities()
    before = footprint()
    with Sandbox(a_run(), API) as sandbox:
        made = footprint() - before
        assert {f"netns mlb-{sandbox.id}-{n}" for n in ("br", "0", "1")} <= made
        assert f"record {sandbox.id}.json" in made
        assert {f"cgroup {sandbox.id}-0", f"cgroup {sandbox.id}-1"} <= made
        assert {f"memory cgroup {sandbox.id}-0", f"memory cgroup {sandbox.id}-1"} <= made
        assert sandbox.master_addr == "10.200.0.1" and sandbox.master_port == 29500
        env = sandbox.env(1)
        assert env["GLOO_SOCKET_IFNAME"] == env["MLBENCH_NETWORK_INTERFACE"] == "eth0"
        assert env["MLBENCH_CPU_CGROUP"].endswith(f"mlbench/{sandbox.id}-1")
        assert env["MLBENCH_MEMORY_CGROUP"] == f"{detect().memory.mount}/mlbench/{sandbox.id}-1"
        limits = sandbox.limits()
        assert limits.cpu.status is Status.ENFORCED and "CFS quota 50000 us" in limits.cpu.by
        assert limits.bandwidth.status is Status.ENFORCED
        assert "tbf rate 10 Mbit/s" in limits.bandwidth.by
        assert "network namespace per rank" in limits.network
        state = json.loads(sandbox.state_file.read_text())
        assert state["owner"]["pid"] == os.getpid() and state["run_id"] == 7
    assert footprint() == before


def test_a_run_needing_a_missing_facility_is_refused_before_anything_is_made(tmp_path):
    found = detect(Settings(cgroup_mount=tmp_path))
    without = dataclasses.replace(found, network_missing="'tc' not found on PATH")
    with pytest.raises(SandboxError, match="max_bandwidth: a bandwidth cap cannot be enforced"):
        Sandbox(a_run(num_cpus=1), API, facilities=without)
    with pytest.raises(SandboxError, match="num_cpus: 0.5 CPUs cannot be enforced"):
        Sandbox(a_run(max_bandwidth=None), API, facilities=without)


def test_without_facilities_a_run_without_limits_shares_the_loopback_with_whole_cpus(tmp_path):
    found = detect(Settings(cgroup_mount=tmp_path))
    without = dataclasses.replace(found, network_missing="network namespaces need root")
    before = footprint()
    with Sandbox(a_run(num_cpus=1, max_bandwidth=None), API, facilities=without) as sandbox:
        assert footprint() == before  # nothing to make
        assert sandbox.master_addr == "127.0.0.1" and sandbox.env(0) == {}
        assert sandbox.worker_api_url == API
        limits = sandbox.limits()
        assert limits.cpu.by.startswith("CPU affinity: 1 whole CPU(s) per rank")
        assert limits.bandwidth.status is Status.NONE
        assert limits.network.startswith("the host's loopback, shared by all ranks")


OWNER = """
import sys, time
from mlbench_core.launch.sandbox import Sandbox
sandbox = Sandbox({"id": 9, "name": "orphan", "num_workers": 2, "num_cpus": 1,
                   "max_bandwidth": 5.0}, "http://127.0.0.1:8080/mlbench").open()
print(sandbox.id, flush=True)
time.sleep(600)
"""


def test_the_sweep_removes_the_sandboxes_of_a_killed_owner_only():
    require_facilities()
    before = footprint()
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True)
    sandbox_id = owner.stdout.readline().strip()
    assert (NETNS_DIR / f"mlb-{sandbox_id}-0").exists()
    assert sweep() == []  # its owner lives
    owner.send_signal(signal.SIGKILL)
    owner.wait(10)
    owner.stdout.close()
    left = footprint() - before
    assert f"netns mlb-{sandbox_id}-br" in left and f"cgroup {sandbox_id}-1" in left
    assert sweep() == [sandbox_id]
    assert footprint() == before
