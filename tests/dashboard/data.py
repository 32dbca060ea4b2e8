"""Runs with data, made through the real API as the DAG and the workers would make them."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from mlbench_core.api import ApiClient

PHASES = ("batch_load", "fwd_pass", "comp_loss", "backprop", "agg", "opt_step", "comp_metrics",
          "validation", "sync")  # fmt: skip
GOAL = {"metric": "val_accuracy", "target": 95.0}  # the digits benchmark's goal


def _t(start: datetime, seconds: float) -> datetime:
    return start + timedelta(seconds=seconds)


BATCH = 64  # global samples per step


def run_metrics(
    run_id: int, start: datetime, epochs: int, epoch_s: float, loss_scale: float = 1.0
) -> list[dict]:
    """Training loss every second, and per epoch: validation metrics, the epoch mark and the
    seconds of each phase (as the trainer posts them, with epoch/step/samples metadata)."""
    out = []
    step = 0
    for epoch in range(1, epochs + 1):
        for second in range(int(epoch_s)):
            step += 10
            at = (epoch - 1) * epoch_s + second + 0.5
            meta = {"epoch": epoch, "step": step, "samples": step * BATCH}
            loss = 2.0 * loss_scale / (1.0 + 0.3 * at)
            out.append(ApiClient.metric("train_loss", loss, run_id=run_id, date=_t(start, at),
                                        metadata=meta))  # fmt: skip
        end = _t(start, epoch * epoch_s)
        meta = {"epoch": epoch, "step": step, "samples": step * BATCH}
        per_epoch = {
            "val_accuracy": min(99.0, 70.0 + 8.0 * epoch),
            "val_loss": 1.0 / epoch,
            "epoch": epoch,
            "time_compute": 0.6 * epoch_s,
            "time_communication": 0.3 * epoch_s,
            "time_data_loading": 0.1 * epoch_s,
            **{f"time_{phase}": epoch_s / len(PHASES) for phase in PHASES},
        }
        for offset, (name, value) in enumerate(per_epoch.items()):
            date = end + timedelta(microseconds=offset)
            out.append(ApiClient.metric(name, value, run_id=run_id, date=date, metadata=meta))
    return out


def pod_metrics(
    pod: str, start: datetime, seconds: float, every: float = 2.0, rank: int = 0
) -> list[dict]:
    """What the resource sampler posts: CPU seconds, memory, network bytes (cumulative)."""
    out = []
    n = int(seconds / every) + 1
    cores = 1.5 - 0.25 * rank
    cpu = rx = tx = 0.0
    for i in range(n):
        date = _t(start, i * every)
        if i:
            wave = 1 + 0.3 * math.sin(i / 2 + rank)
            cpu += cores * wave * every
            rx += (2.5e6 - 4e5 * rank) * wave * every
            tx += (2.0e6 + 3e5 * rank) * (2 - wave) * every
        for name, value, cumulative in (
            ("container_cpu_usage_seconds_total", cpu, True),
            ("container_memory_usage_bytes", (300 + 40 * rank + 5 * i) * 2**20, False),
            ("container_network_receive_bytes_total", rx, True),
            ("container_network_transmit_bytes_total", tx, True),
        ):
            out.append(ApiClient.metric(name, value, pod_name=pod, date=date,
                                        cumulative=cumulative))  # fmt: skip
    return out


def seed_run(
    api: ApiClient,
    name: str,
    *,
    workers: int = 2,
    benchmark: str = "digits",
    finish: bool = True,
    epochs: int = 4,
    epoch_s: float = 10.0,
    reach_at: float | None = None,
    split: dict[str, float] | None = None,
    synthetic: bool = False,
    light: bool = False,
    throughput: float = 1234.5,
    tags: list[str] | None = None,
    seed: int | None = None,
    loss_scale: float = 1.0,
) -> dict[str, Any]:
    """A run of ``workers`` pods with metrics, logs, record and (``finish``) its result
    (``synthetic``: throughput only, as the worker reports it for random data)."""
    extra: dict[str, Any] = {"light_target": True} if light else {}
    if tags:
        extra["tags"] = tags
    if seed is not None:
        extra["seed"] = seed
    run = api.create_run(name, workers, benchmark=benchmark, synthetic=synthetic, **extra)
    run_id = run["id"]
    api.update_run(run_id, state="STARTED")
    total = epochs * epoch_s
    start = datetime.now(UTC) - timedelta(seconds=total + 5)
    pods = [f"{name}-w{rank}" for rank in range(workers)]
    for rank, pod in enumerate(pods):
        api.put_pod(pod, run_id=run_id, rank=rank, phase="Running", ip=f"10.0.0.{rank + 1}",
                    node="node-a")  # fmt: skip
    metrics = run_metrics(run_id, start, epochs, epoch_s, loss_scale)
    for rank, pod in enumerate(pods):
        metrics += pod_metrics(pod, start, total, rank=rank)
    api.post_metrics(metrics)
    api.post_logs(
        run_id,
        [
            {"rank": rank, "stream": "stdout", "line": f"rank {rank}: epoch {e}/{epochs} done"}
            for e in range(1, epochs + 1)
            for rank in range(workers)
        ]
        + [{"rank": 1 % workers, "stream": "stderr", "line": "a warning on stderr"}],
    )
    api.put_record(run_id, {"benchmark": benchmark, "world_size": workers, "seed": 0,
                            "versions": {"torch": "2.13.0"}})  # fmt: skip
    if finish:
        seconds = reach_at if reach_at is not None else total
        aim = (
            {"goal": None, "synthetic": True, "throughput": throughput}
            if synthetic
            else {"goal": GOAL, "reached": True, "time_to_target_s": seconds}
        )
        api.put_result(
            run_id,
            {
                "benchmark": benchmark,
                **aim,
                "total_time_s": seconds,
                "epochs": epochs,
                "world_size": workers,
                "final": {"val_accuracy": 97.0},
                "split": split or {"compute_s": 0.6 * seconds, "communication_s": 0.3 * seconds,
                                   "data_loading_s": 0.1 * seconds},
            },
        )  # fmt: skip
        for pod in pods:
            api.put_pod(pod, phase="Succeeded")
        api.update_run(run_id, state="FINISHED")
    return api.get_run(run_id)
