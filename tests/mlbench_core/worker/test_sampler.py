"""ResourceSampler against the live API: the four container_* series of a pod arrive."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time

import psutil
import pytest
from sqlalchemy import select

from mlbench_core.api import ApiClient, MetricsWriter
from mlbench_core.launch.cgroups import CpuQuota
from mlbench_core.launch.facilities import detect
from mlbench_core.worker.sampler import ResourceSampler, network_reader, throttling_reader

SERIES = (
    "container_cpu_usage_seconds_total",
    "container_memory_usage_bytes",
    "container_network_receive_bytes_total",
    "container_network_transmit_bytes_total",
)


@pytest.fixture
def worker_writer(live_server, admin_token, store):
    with ApiClient(f"{live_server}/mlbench", token=admin_token) as admin:
        run = admin.create_run("sampled", 1, benchmark="digits")
        admin.put_pod("sampled-0", run_id=run["id"], rank=0, phase="Running")
        token = admin.issue_worker_token(run["id"])
    with ApiClient(f"{live_server}/mlbench", token=token) as client:
        writer = MetricsWriter(client, flush_interval=0.1)
        yield writer, admin_token
        writer.close(10)


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


CHILD = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass"


def test_series_arrive_and_the_cpu_counter_never_decreases(worker_writer, live_server, store):
    writer, admin_token = worker_writer
    sampler = ResourceSampler(writer, "sampled-0", interval=0.1)
    with sampler:
        child = subprocess.Popen([sys.executable, "-c", CHILD])
        _burn(0.4)
        child.wait(30)
        time.sleep(0.2)
    own = os.times()  # this process and its reaped children (earlier tests' too)
    cpu_used = own.user + own.system + own.children_user + own.children_system
    # ...and its live children (earlier tests' too, e.g. a session's browser), which the
    # sampler counts as well.
    for alive in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            times = alive.cpu_times()
            cpu_used += times.user + times.system
    assert writer.flush(10)
    assert sampler.samples >= 4  # start, some ticks, stop

    with ApiClient(f"{live_server}/mlbench", token=admin_token) as admin:
        series = admin.get_pod_metrics("sampled-0")
    assert set(series) == set(SERIES)
    assert all(len(points) == sampler.samples for points in series.values())
    cpu = [p["value"] for p in series["container_cpu_usage_seconds_total"]]
    assert cpu == sorted(cpu)
    assert cpu[-1] - cpu[0] >= 0.7  # this process's burn and its child's
    assert cpu[-1] <= cpu_used + 1  # not the machine's time
    assert min(p["value"] for p in series["container_memory_usage_bytes"]) > 10e6
    for name in SERIES[2:]:
        values = [p["value"] for p in series[name]]
        assert values == sorted(values)

    from mlbench_api.store.models import Metric

    with store.engine.connect() as connection:
        rows = connection.execute(select(Metric.name, Metric.cumulative, Metric.meta)).all()
    flags = {name: cumulative for name, cumulative, _ in rows}
    assert flags == {SERIES[0]: True, SERIES[1]: False, SERIES[2]: True, SERIES[3]: True}
    notes = {name: meta for name, _, meta in rows}
    assert "the whole machine, shared by all ranks" in notes[SERIES[2]]
    assert "children" in notes[SERIES[0]]


def test_a_sampler_never_started_posts_one_sample_at_stop(worker_writer, store):
    writer, _ = worker_writer
    sampler = ResourceSampler(writer, "sampled-0", interval=60)
    sampler.stop()
    assert sampler.samples == 1
    assert writer.flush(10)
    assert writer.stats.delivered == 4


def test_interval_must_be_positive():
    writer = MetricsWriter(ApiClient("http://127.0.0.1:9/mlbench"))
    try:
        with pytest.raises(ValueError):
            ResourceSampler(writer, "sampled-0", interval=0)
    finally:
        writer.close(1)


def test_the_network_series_of_an_interface_are_that_interfaces():
    read, note = network_reader("lo")
    received, sent = read()
    counters = psutil.net_io_counters(pernic=True)["lo"]
    assert counters.bytes_recv >= received and counters.bytes_sent >= sent
    assert json.loads(note) == {
        "interface": "lo",
        "scope": "interface lo of this rank's network namespace: its own link",
        "source": "psutil.net_io_counters",
    }
    _, missing = network_reader("eth-nowhere")
    assert "interface eth-nowhere was not found" in json.loads(missing)["scope"]
    _, shared = network_reader(None)
    assert "every interface of the network namespace" in json.loads(shared)["scope"]


def test_throttling_is_read_from_the_ranks_cgroup(tmp_path):
    from tests.mlbench_core.launch.test_facilities import require_facilities

    assert throttling_reader(None) is None and throttling_reader(tmp_path) is None
    require_facilities()
    quota = CpuQuota(detect().cpu, "test-throttled", 0.05)
    quota.create()
    try:
        burner = subprocess.Popen(
            [sys.executable, "-c", "while True: pass"],
            preexec_fn=quota.join,  # noqa: PLW1509
        )
        read = throttling_reader(quota.path)
        time.sleep(1.0)
        # 5 % of a CPU: throttled in most periods (the kernel may add the time a moment later)
        deadline = time.monotonic() + 10
        while read()[1] == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        periods, seconds = read()
        assert periods > 0 and seconds > 0
    finally:
        quota.remove()
    burner.wait(10)
