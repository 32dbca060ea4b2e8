"""A rank's CPU quota, for real: half a CPU is half a core over time, and nothing is left."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from mlbench_core.launch.cgroups import PERIOD_US, CpuQuota, MemoryGroup, quota_us
from mlbench_core.launch.facilities import CpuControl, detect
from mlbench_core.settings import Settings
from mlbench_core.worker import peak_memory
from tests.mlbench_core.launch.test_facilities import require_facilities

BURN = "import time\nwhile True: pass"


def test_quota_is_the_cpus_share_of_the_period_with_the_kernels_floor():
    assert quota_us(0.5) == PERIOD_US // 2
    assert quota_us(2) == 2 * PERIOD_US
    assert quota_us(0.001) == 1_000  # the kernel refuses less than 1 ms


@pytest.fixture
def control() -> CpuControl:
    require_facilities()
    found = detect(Settings()).cpu
    assert found is not None
    return found


def test_half_a_cpu_gets_half_a_core_and_removal_kills_what_is_left(control):
    quota = CpuQuota(control, "test-half", 0.5)
    quota.create()
    try:
        # two busy processes share the rank's half CPU, on a machine with two cores
        busy = [
            subprocess.Popen([sys.executable, "-c", BURN], preexec_fn=quota.join)  # noqa: PLW1509
            for _ in range(2)
        ]
        time.sleep(1.0)  # past the interpreters' start
        processes = [psutil.Process(p.pid) for p in busy]
        before = sum(sum(p.cpu_times()[:2]) for p in processes)
        start = time.monotonic()
        time.sleep(3.0)
        used = sum(sum(p.cpu_times()[:2]) for p in processes) - before
        cores = used / (time.monotonic() - start)
        assert 0.35 <= cores <= 0.6, f"{cores:.2f} cores under a 0.5 CPU quota"
        assert sorted(quota.pids()) == sorted(p.pid for p in busy)
    finally:
        quota.remove()
    assert [p.wait(10) for p in busy] == [-9, -9]
    assert not quota.path.exists()


def test_a_ranks_memory_cgroup_counts_the_peak_of_all_its_processes():
    require_facilities()
    memory = detect(Settings()).memory
    assert memory is not None, "no writable cgroup hierarchy with the memory controller"
    group = MemoryGroup(memory, "test-peak")
    group.create()
    # two processes of the rank, 150 MiB each at once: the group's peak holds both
    hold = "import time\nb = bytearray(150 * 2**20)\nb[::4096] = b'x' * len(b[::4096])\n"
    hold += "print('ready', flush=True)\ntime.sleep(60)"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", hold],
            preexec_fn=group.join,  # noqa: PLW1509
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    try:
        assert [p.stdout.readline().strip() for p in procs] == ["ready", "ready"]
        figures = peak_memory.own(group.path)
        assert figures["by"] == "cgroup"
        assert figures["cgroup_bytes"] >= 300 * 2**20
        assert figures["peak_bytes"] == figures["cgroup_bytes"]
    finally:
        group.remove()
    assert [p.wait(10) for p in procs] == [-9, -9]
    assert not group.path.exists()
