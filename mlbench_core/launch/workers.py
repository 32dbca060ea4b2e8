"""What every backend starts for rank R of a run: the same command, names and environment."""

from __future__ import annotations

import math
from typing import Any

WORKER_MODULE = "mlbench_core.worker"
WORKER_PORT = 29500  # rank 0's rendezvous port, where each rank has an address of its own
LABELS = {"app": "mlbench", "component": "worker"}


def worker_command(run: dict[str, Any]) -> list[str]:
    """The worker's argv (``python`` is the image's interpreter; locally, this one's)."""
    if run.get("benchmark") is None:
        return ["/bin/sh", "-c", run["custom_image_command"]]
    command = ["python", "-m", WORKER_MODULE, "--run-id", str(run["id"])]
    command += ["--benchmark", run["benchmark"]]
    if run.get("light_target"):
        command.append("--light")
    if run.get("aggregation"):
        command += ["--aggregation", run["aggregation"]]
    if run.get("synthetic"):
        command.append("--synthetic")
    if run.get("backend") == "nccl":
        command += ["--backend", "nccl"]
    for key, value in sorted((run.get("settings") or {}).items()):
        command += ["--set", f"{key}={value}"]
    return command


def pod_name(run: dict[str, Any], rank: int) -> str:
    """The worker's pod name (a DNS label: run names are DNS labels of at most 63 chars)."""
    suffix = f"-w{rank}"
    return run["name"][: 63 - len(suffix)].rstrip("-") + suffix


def pod_labels(run: dict[str, Any], rank: int) -> dict[str, str]:
    return {**LABELS, "run": str(run["id"]), "rank": str(rank)}


def threads(run: dict[str, Any]) -> int:
    """Threads per worker: its CPU share rounded up."""
    return max(1, math.ceil(float(run.get("num_cpus") or 1)))


def worker_env(
    run: dict[str, Any],
    rank: int,
    *,
    master_addr: str,
    master_port: int,
    api_url: str,
) -> dict[str, str]:
    """torchrun-style rendezvous variables plus what the worker needs to reach the API.

    The worker token is not here: it travels separately (process env locally, a Secret in
    Kubernetes). ``MLBENCH_MAX_BANDWIDTH`` tells the worker the cap it runs under (the 0a
    result shows the bandwidth reached next to it).
    """
    n = str(threads(run))
    cap = (
        {}
        if run.get("max_bandwidth") is None
        else {"MLBENCH_MAX_BANDWIDTH": f"{run['max_bandwidth']:g}"}
    )
    return {
        "RANK": str(rank),
        "LOCAL_RANK": "0",
        "WORLD_SIZE": str(run["num_workers"]),
        "MASTER_ADDR": master_addr,
        "MASTER_PORT": str(master_port),
        "MLBENCH_API_URL": api_url,
        "MLBENCH_POD_NAME": pod_name(run, rank),
        "OMP_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "PYTHONUNBUFFERED": "1",
        **cap,
    }
