"""The steps of one run, as the ``mlbench_run`` DAG's tasks call them (no Airflow here)."""

from __future__ import annotations

import logging
from typing import Any

import requests

from mlbench_core.api.client import ApiClient
from mlbench_core.api.errors import raise_for_response
from mlbench_core.api.schemas import RunState
from mlbench_core.benchmarks import REGISTRY
from mlbench_core.launch.backend import get_backend
from mlbench_core.launch.workers import pod_labels, pod_name

log = logging.getLogger(__name__)

RUN_FIELDS = (
    "name",
    "benchmark",
    "num_workers",
    "num_cpus",
    "max_bandwidth",
    "backend",
    "gpu_enabled",
    "light_target",
    "aggregation",
    "synthetic",
    "oversubscribe",
    "image_name",
    "custom_image_command",
)


def connect(api_url: str, login: str | None = None, password: str | None = None) -> ApiClient:
    """A client of the API at ``api_url`` (``http://host:port/mlbench``), logged in to Airflow
    as ``login`` when a password is given (``POST /auth/token``)."""
    token = None
    if login and password:
        base = api_url.rstrip("/").removesuffix("/mlbench")
        response = requests.post(
            f"{base}/auth/token", json={"username": login, "password": password}, timeout=30
        )
        raise_for_response(response)
        token = response.json()["access_token"]
    return ApiClient(api_url, token=token)


def prepare(client: ApiClient, params: dict[str, Any], dag_run_id: str) -> dict:
    """The run of this DAG run, not yet started.

    ``params["run_id"]`` names it (runs created through the API); without it (a trigger from
    the Airflow UI's form) the run is created from the other params, attached to this DAG run
    (or found again: the run attached to it before).
    """
    run_id = params.get("run_id")
    if run_id is not None:
        run = client.get_run(int(run_id))
    else:
        run = next((r for r in client.get_runs() if r.get("job_id") == dag_run_id), None)
        if run is None:
            fields = {k: params[k] for k in RUN_FIELDS if params.get(k) is not None}
            if "name" not in fields:
                raise ValueError("give either run_id (conf) or a run name in the trigger form")
            run = client.create_run(**fields, job_id=dag_run_id)
    if RunState(run["state"]).terminal:
        raise RuntimeError(f"run {run['id']} is already {run['state']}")
    return run


def admit(client: ApiClient, run_id: int) -> tuple[dict, str | None]:
    """Ask the API to start the run: (the run, None) when it is STARTED, else (the run, why
    it waits for CPUs)."""
    answer = client.admit_run(run_id)
    return answer["run"], None if answer["admitted"] else answer["reason"]


def start(client: ApiClient, run: dict[str, Any], backend: str) -> dict:
    """A STARTED run's plan: its job metadata (launch backend, epochs, what the backend
    records at the start) and one pod registered per rank. ``backend``: as MLBENCH_BACKEND
    names it."""
    launcher = get_backend(backend)
    metadata: dict[str, Any] = {"backend": launcher.name, **launcher.start_metadata(run)}
    spec = REGISTRY.get(run.get("benchmark") or "")
    if spec is not None and spec.epochs:
        metadata["epochs"] = spec.epochs  # the most it may take: progress bars use it
    run = client.update_run(run["id"], job_metadata=metadata)
    for rank in range(run["num_workers"]):
        client.put_pod(
            pod_name(run, rank),
            run_id=run["id"],
            rank=rank,
            phase="Pending",
            labels=pod_labels(run, rank),
        )
    return run


class RunFailed(RuntimeError):
    """The run ended FAILED: raised by :func:`finalize` so that the DAG run fails too."""


def finalize(client: ApiClient, run_id: int | None, deployed: bool) -> dict | None:
    """End the run: FINISHED when its workers completed, else FAILED with the reason (and
    :class:`RunFailed`, so Airflow marks the DAG run failed and its alerting fires). A run
    already ended (stopped by a user: CANCELLED) is left as it is."""
    if run_id is None:
        raise RunFailed("no run to finalize: prepare failed before it had a run")
    run = client.get_run(run_id)
    if RunState(run["state"]).terminal:
        return run
    if deployed:
        return client.update_run(run_id, state="FINISHED")
    reason = (run.get("job_metadata") or {}).get("failure") or "the workers did not complete"
    for pod in client.get_pods(run_id=run_id):
        if pod["phase"] in ("Pending", "Running"):
            client.put_pod(pod["name"], phase="Failed")
    client.update_run(run_id, state="FAILED", job_metadata={"failure": reason})
    raise RunFailed(f"run {run_id} FAILED: {reason}")
