"""The steps of one run, as the ``mlbench_run`` DAG's tasks call them (no Airflow here)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from mlbench_core.api import BadRequest, Conflict, ValidationFailed
from mlbench_core.api.client import ApiClient
from mlbench_core.api.schemas import RunState
from mlbench_core.api.wire import wire_date
from mlbench_core.benchmarks import REGISTRY
from mlbench_core.launch.backend import get_backend
from mlbench_core.launch.workers import pod_labels, pod_name
from mlbench_core.run_fields import FORM_FIELDS, typed_settings

log = logging.getLogger(__name__)


class FormRefused(ValueError):
    """The trigger form's fields cannot make a run (the message names the field): the DAG
    run fails at once, without retries."""


def connect(api_url: str, login: str | None = None, password: str | None = None) -> ApiClient:
    """A client of the API at ``api_url`` (``http://host:port/mlbench``), logged in to Airflow
    as ``login`` when a password is given (:meth:`ApiClient.login`)."""
    if login and password:
        return ApiClient.login(api_url, login, password)
    return ApiClient(api_url)


def prepare(
    client: ApiClient, params: dict[str, Any], dag_run_id: str, run_id: int | None = None
) -> dict:
    """The run of this DAG run, not yet started.

    ``run_id`` (from the DAG run's conf: runs created through the API) names it; without it
    (a trigger from the Airflow UI's form) the run is created from the form's ``params``,
    attached to this DAG run (or found again: the run attached to it before). A form the API
    refuses (a name taken, a setting the benchmark lacks) is :class:`FormRefused`.
    """
    if run_id is not None:
        run = client.get_run(int(run_id))
    else:
        run = next((r for r in client.get_runs() if r.get("job_id") == dag_run_id), None)
        if run is None:
            fields = {k: params[k] for k in FORM_FIELDS if params.get(k) not in (None, {})}
            if "name" not in fields:
                raise FormRefused("name: a run name is required in the trigger form")
            if fields.get("settings"):  # a form: "32" for 32 is read as the setting's type
                fields["settings"] = typed_settings(fields.get("benchmark"), fields["settings"])
            try:
                run = client.create_run(**fields, job_id=dag_run_id)
            except (ValidationFailed, Conflict, BadRequest) as exc:
                raise FormRefused(exc.message) from None  # "<field>: <what is wrong>"
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
    epochs = run.get("epochs") or (spec.epochs if spec is not None else None)
    if epochs:
        metadata["epochs"] = epochs  # the most it may take: progress and ETAs use it
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


class RunInterrupted(RuntimeError):
    """The ranks task runs again for a run whose workers an earlier attempt started (the
    scheduler or its executor was lost, and Airflow reset the task): the run is failed, not
    trained again on top of that attempt's series."""


def launch_once(client: ApiClient, run: dict[str, Any], attempt: str) -> None:
    """Mark the run's workers launched (by ``attempt``, e.g. the task's try); raise
    :class:`RunInterrupted` if an earlier attempt launched them already."""
    metadata = client.get_run(run["id"]).get("job_metadata") or {}
    earlier = metadata.get("launched")
    if earlier:
        raise RunInterrupted(
            f"interrupted: its workers were started by an earlier attempt of the ranks task "
            f"({earlier.get('attempt')}, {earlier.get('at')}) that was lost with the scheduler "
            f"or its executor; a run is deployed once, so it is not trained again on top of "
            f"that attempt's series"
        )
    at = wire_date(datetime.now(UTC))
    client.update_run(run["id"], job_metadata={"launched": {"attempt": attempt, "at": at}})


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
        # A failure an attempt recorded on the way (a retried call) is not the run's.
        return client.update_run(run_id, state="FINISHED", job_metadata={"failure": None})
    reason = (run.get("job_metadata") or {}).get("failure") or "the workers did not complete"
    for pod in client.get_pods(run_id=run_id):
        if pod["phase"] in ("Pending", "Running"):
            client.put_pod(pod["name"], phase="Failed")
    client.update_run(run_id, state="FAILED", job_metadata={"failure": reason})
    raise RunFailed(f"run {run_id} FAILED: {reason}")
