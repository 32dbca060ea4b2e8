"""``python -m mlbench_core.worker``: real processes, real gloo, the real API."""

from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest
import torch
from sqlalchemy import select

from harness.server import free_port
from mlbench_core.api import ApiClient
from mlbench_core.engine.tracker import PHASES
from tests.support.rank_group import Group, worker_args

CONTAINER_SERIES = {
    "container_cpu_usage_seconds_total",
    "container_memory_usage_bytes",
    "container_network_receive_bytes_total",
    "container_network_transmit_bytes_total",
}
RUN_SERIES = {
    "train_loss",
    "val_accuracy",
    "val_loss",
    "epoch",
    "throughput",
    "lr",
    "validation_started",
    "time_data_loading",
    "time_compute",
    "time_communication",
    *(f"time_{phase}" for phase in PHASES),
}
STOPPED = re.compile(r"rank (\d): stopped after epoch (\d+) \(goal reached\)")


def test_two_workers_reach_the_digits_goal_and_report_everything(
    live_server, admin_token, store, tmp_path
):
    url = f"{live_server}/mlbench"
    with ApiClient(url, token=admin_token) as admin:
        run = admin.create_run("digits-2", 2, benchmark="digits")
        pods = [f"digits-2-worker-{rank}" for rank in (0, 1)]
        for rank, pod in enumerate(pods):
            admin.put_pod(pod, run_id=run["id"], rank=rank, phase="Running")
        token = admin.issue_worker_token(run["id"])
        env = {"MLBENCH_API_URL": url, "MLBENCH_API_TOKEN": token}
        rank_env = {rank: {"MLBENCH_POD_NAME": pod} for rank, pod in enumerate(pods)}
        started = time.monotonic()
        args = worker_args(run["id"], "digits", "--timeout", "60")
        with Group(args, 2, tmp_path, env=env, rank_env=rank_env) as group:
            assert group.wait(120) == [0, 0], group.output()
        wall = time.monotonic() - started

        result = admin.get_run(run["id"])["result"]
        admin_record = admin.get_run(run["id"])["record"]
        run_series = admin.get_run_metrics(run["id"])
        seen = admin.get_run_metrics(run["id"], metadata=True)
        pod_series = {pod: admin.get_pod_metrics(pod) for pod in pods}

    output = group.output()
    assert "Traceback" not in output
    stops = {int(r): int(e) for r, e in STOPPED.findall(output)}
    assert stops.keys() == {0, 1} and stops[0] == stops[1], output
    assert result["reached"] is True, result
    assert result["epochs"] == stops[0] < 30
    assert result["benchmark"] == "digits" and result["light"] is False
    assert result["goal"] == {"metric": "val_accuracy", "target": 95.0}
    assert result["final"]["val_accuracy"] >= 95.0
    assert 0 < result["time_to_target_s"] <= result["total_time_s"] < wall
    assert set(result["split"]) == {"data_loading_s", "compute_s", "communication_s"}
    assert all(v > 0 for v in result["split"].values())
    assert sum(result["split"].values()) <= result["total_time_s"] * 1.05
    assert (result["world_size"], result["seed"], result["threads"]) == (2, 0, 1)
    # training throughput counts training steps only: validation's seconds are apart
    assert 0 < result["training_s"] < result["total_time_s"]
    assert result["validation_s"] > 0
    assert result["throughput"] == pytest.approx(result["samples"] / result["training_s"])
    assert result["throughput"] > result["throughput_overall"]
    # each rank's kernel high-water mark, the largest one as the run's peak
    per_rank = result["memory"]["per_rank"]
    assert len(per_rank) == 2 and all(r["vmhwm_bytes"] > 50 * 2**20 for r in per_rank)
    assert result["memory"]["peak_bytes"] == max(r["peak_bytes"] for r in per_rank)
    sampled = max(
        p["value"] for pod in pods for p in pod_series[pod]["container_memory_usage_bytes"]
    )
    assert result["memory"]["peak_bytes"] >= sampled * 0.95  # never below what was sampled
    reached_after = result["time_to_target_s"]
    print(f"2-worker digits: 95 % after {reached_after:.2f} s of training, {wall:.1f} s in all")

    assert RUN_SERIES <= run_series.keys()
    epochs = len(run_series["val_accuracy"])
    assert epochs == stops[0]
    assert [p["value"] for p in run_series["epoch"]] == list(range(1, epochs + 1))
    assert all(len(run_series[f"time_{x}"]) == epochs for x in ("data_loading", "compute"))
    assert all(p["value"] > 0 for p in run_series["throughput"])
    # the samples seen by all ranks so far, with each training-loss and epoch point
    loss_seen = [json.loads(p["metadata"])["samples"] for p in seen["train_loss"]]
    epoch_seen = [json.loads(p["metadata"])["samples"] for p in seen["epoch"]]
    assert loss_seen == sorted(loss_seen) and loss_seen[0] > 0
    assert epoch_seen[-1] == result["samples"] and len(set(epoch_seen)) == epochs
    assert loss_seen[-1] <= result["samples"]
    record = admin_record
    assert (record["benchmark"], record["world_size"], record["seed"]) == ("digits", 2, 0)
    assert record["backend"] == "gloo" and record["versions"]["torch"] == torch.__version__
    assert record["hyperparameters"]["batch_size"] == 32
    assert record["data"]["source"] == "bundled"
    assert run_series["val_accuracy"][-1]["value"] == pytest.approx(result["final"]["val_accuracy"])
    for pod in pods:
        assert CONTAINER_SERIES <= pod_series[pod].keys(), pod
        cpu = [p["value"] for p in pod_series[pod]["container_cpu_usage_seconds_total"]]
        assert len(cpu) >= 2 and cpu == sorted(cpu) and cpu[-1] > 0.5

    from mlbench_api.store.models import Metric

    query = select(Metric.meta).where(Metric.run_id == run["id"], Metric.name == "val_accuracy")
    with store.engine.connect() as connection:
        metas = [json.loads(m) for m in connection.scalars(query)]
    assert sorted(m["epoch"] for m in metas) == list(range(1, epochs + 1))
    assert all(m["step"] > 0 for m in metas)


@pytest.mark.parametrize(
    ("benchmark", "message"),
    [
        (["nope"], "unknown benchmark 'nope'"),
        (["digits", "--aggregation", "ring"], "benchmark digits has no aggregation 'ring'"),
        (["digits", "--set", "depth=3"], "benchmark digits has no setting 'depth'"),
        (["digits", "--set", "hidden=many"], "setting hidden: 'many' is not a valid int"),
    ],
)
def test_bad_worker_arguments_exit_2_with_one_line(tmp_path, benchmark, message):
    with Group(worker_args(1, *benchmark), 1, tmp_path) as group:
        assert group.wait(60) == [2]
    (proc,) = group.procs
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"mlbench worker: {message}"), line


def test_a_crashed_rank_makes_the_other_fail_within_the_timeout(tmp_path):
    env = {"MLBENCH_API_URL": f"http://127.0.0.1:{free_port()}/mlbench", "MLBENCH_API_WAIT": "1"}
    args = worker_args(1, "digits", "--timeout", "10")
    with Group(args, 2, tmp_path, env=env) as group:
        survivor, victim = group.procs
        deadline = time.monotonic() + 60
        while "rank 1/2" not in victim.stdout:  # joined the group
            assert time.monotonic() < deadline and victim.process.poll() is None, group.output()
            time.sleep(0.05)
        os.kill(victim.process.pid, signal.SIGKILL)
        killed = time.monotonic()
        try:
            code = survivor.process.wait(10 + 20)
        except Exception:
            pytest.fail(f"rank 0 still running 30 s after rank 1 died\n{group.output()}")
        waited = time.monotonic() - killed
    assert code == 1, group.output()
    assert waited < 30
    line = survivor.stderr.strip().splitlines()[-1]
    assert line.startswith("mlbench worker: a collective operation failed"), line


def test_an_unreachable_api_still_trains_and_exits_0(tmp_path):
    env = {
        "MLBENCH_API_URL": f"http://127.0.0.1:{free_port()}/mlbench",
        "MLBENCH_API_TOKEN": "mlbw_1_nothing",
        "MLBENCH_POD_NAME": "lonely-0",
        "MLBENCH_API_WAIT": "2",  # a worker waits this long for an API that is away
    }
    started = time.monotonic()
    with Group(worker_args(1, "digits", "--light"), 1, tmp_path, env=env) as group:
        assert group.wait(60) == [0], group.output()
    assert time.monotonic() - started < 30
    (proc,) = group.procs
    assert re.search(r"rank 0: stopped after epoch \d+ \(goal reached\)", proc.stdout)
    assert "rank 0/1" in proc.stdout  # alone: world size 1 without torchrun variables
    assert "cannot store the result" in proc.stderr
    result = json.loads(proc.stdout.split("result: ", 1)[1].splitlines()[0])
    assert result["reached"] is True and result["goal"]["target"] == 90.0
    assert "lost" in proc.stderr and "Traceback" not in group.output()
