"""What every backend starts for rank R of a run: the same command, names and environment."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from mlbench_core.api.original import fill_command
from mlbench_core.settings import Settings

WORKER_MODULE = "mlbench_core.worker"
WORKER_PORT = 29500  # rank 0's rendezvous port, where each rank has an address of its own
LABELS = {"app": "mlbench", "component": "worker"}


# Run fields the worker reads from its command line (the others reach it as its environment,
# its limits, or not at all): field -> option of ``python -m mlbench_core.worker``.
WORKER_OPTIONS = {
    "benchmark": "--benchmark",
    "light_target": "--light",
    "aggregation": "--aggregation",
    "synthetic": "--synthetic",
    "backend": "--backend",
    "epochs": "--epochs",
    "steps_per_epoch": "--steps",
    "seed": "--seed",
    "settings": "--set",
}


# How the other fields of a run reach its workers.
ELSEWHERE = {
    "name": "the pod names (MLBENCH_POD_NAME)",
    "num_workers": "WORLD_SIZE",
    "num_cpus": "the CPU quota and OMP_NUM_THREADS",
    "max_bandwidth": "the traffic shaping and MLBENCH_MAX_BANDWIDTH",
    "image_name": "the pod's image",
    "custom_image_command": "the pod's command",
    "original_command": "the pod's command (its placeholders filled per rank)",
    "gpu_enabled": "the device (a GPU per pod)",
    "oversubscribe": "the admission of the run (not the workers)",
    "tags": "nothing: a label people find the run by",
    "note": "nothing: a label people find the run by",
}


def worker_command(run: dict[str, Any], rank: int = 0, hosts: Sequence[str] = ()) -> list[str]:
    """Rank ``rank``'s argv (``python`` is the image's interpreter; locally, this one's).

    A custom image runs its command with ``/bin/sh -c``; one of an original mlbench client
    (``original_command``) as its master ran it: placeholders filled (``hosts``: each rank's
    host name), ``--gpu`` and ``--light`` appended when set, split on spaces, no shell."""
    if run.get("benchmark") is None:
        if run.get("original_command"):
            command = run["custom_image_command"]
            command += " --gpu" * bool(run.get("gpu_enabled"))
            command += " --light" * bool(run.get("light_target"))
            return fill_command(
                command, run_id=run["id"], rank=rank, hosts=list(hosts), backend=run["backend"]
            )
        return ["/bin/sh", "-c", run["custom_image_command"]]
    command = ["python", "-m", WORKER_MODULE, "--run-id", str(run["id"])]
    for field, option in WORKER_OPTIONS.items():
        value = run.get(field)
        if value is None or value is False or value == {}:
            continue
        if value is True:
            command.append(option)
        elif field == "settings":
            for key, item in sorted(value.items()):
                command += [option, f"{key}={item}"]
        elif field == "backend" and value == "gloo":
            continue  # the worker's default
        else:
            command += [option, str(value)]
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


def training_env(settings: Settings, data_dir: str | None) -> dict[str, str]:
    """What training needs of the launcher's settings, and nothing else of them: where the
    datasets are (``data_dir``; None: the worker's default), a mirror, pinned digests, how
    long to wait for an API that is away, and the step delay the tests slow training with."""
    env = {} if data_dir is None else {"MLBENCH_DATA_DIR": data_dir}
    if settings.data_url:
        env["MLBENCH_DATA_URL"] = settings.data_url
    if settings.data_checksums:
        env["MLBENCH_DATA_CHECKSUMS"] = json.dumps(settings.data_checksums)
    if settings.step_delay:
        env["MLBENCH_STEP_DELAY"] = f"{settings.step_delay:g}"
        if settings.step_delay_benchmarks:
            env["MLBENCH_STEP_DELAY_BENCHMARKS"] = settings.step_delay_benchmarks
    env["MLBENCH_API_WAIT"] = f"{settings.api_wait:g}"
    return env
