"""A launch backend as an Airflow task group: ``workers`` = setup >> ranks >> teardown.

- ``setup`` (an Airflow setup task): :meth:`LaunchBackend.setup`, one JSON object per rank;
- ``ranks``: for a backend with ``per_rank_tasks``, one task per rank from :data:`RANK_TASKS`
  (``KubernetesPodOperator`` mapped over the ranks for kubernetes); for any other backend one
  task that runs :meth:`LaunchBackend.launch`;
- ``teardown`` (an Airflow teardown task of ``setup``): :meth:`LaunchBackend.teardown`; it
  runs whenever setup ran, whatever became of the ranks (also after a stop: Airflow does not
  kill or skip teardowns), and fails the DAG run if it fails (something may be left behind)
  or if the run was stopped.

:func:`ranks_succeeded` tells ``finalize`` whether every rank task succeeded.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import Any

from airflow.sdk import TaskGroup, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from mlbench_airflow.hooks import MlbenchApiHook
from mlbench_core.api import ApiError, NotFound
from mlbench_core.api.client import ApiClient
from mlbench_core.launch.backend import LaunchBackend, record_failure
from mlbench_core.runflow import RunInterrupted, launch_once
from mlbench_core.settings import get_settings

__all__ = ["GROUP", "RANK_TASKS", "RANKS", "ranks_succeeded", "workers_group"]

GROUP = "workers"
RANKS = f"{GROUP}.ranks"


def _kubernetes_ranks(backend: LaunchBackend, run: Any, specs: Any) -> Any:
    """One ``KubernetesPodOperator`` per rank (mapped over setup's pod arguments), following
    its pod's log stream and shipping every line to the run's logs."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    from mlbench_airflow.pod_logs import ShipPodLogs
    from mlbench_core.launch import kubernetes as k8s

    return KubernetesPodOperator.partial(
        task_id="ranks",
        namespace=get_settings().namespace,
        callbacks=[ShipPodLogs],
        **k8s.POD_DEFAULTS,
    ).expand_kwargs(specs)


# backend name -> its ranks' tasks (backends with ``per_rank_tasks``)
RANK_TASKS: dict[str, Callable[[LaunchBackend, Any, Any], Any]] = {
    "kubernetes": _kubernetes_ranks,
}


def _backend_core(backend: LaunchBackend) -> LaunchBackend:
    """The kubernetes backend talks to the cluster through the cncf.kubernetes hook (its
    Airflow connection ``kubernetes_default``, else in-cluster or the kubeconfig)."""
    if backend.name == "kubernetes":
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

        from mlbench_core.launch.kubernetes import KubernetesBackend

        return KubernetesBackend(core=lambda: KubernetesHook().core_v1_client)
    return backend


class RunStopped(RuntimeError):
    """The run was stopped by a user (CANCELLED): raised by the teardown once it cleaned up."""


@contextlib.contextmanager
def _failure_recorded(client: ApiClient, run: dict) -> Iterator[None]:
    """An exception of the backend becomes the run's failure reason (unless one is there;
    an interruption always is)."""
    try:
        yield
    except RunInterrupted as exc:
        record_failure(client, run["id"], str(exc))
        raise AirflowFailException(str(exc)) from None
    except Exception as exc:
        try:
            current = (client.get_run(run["id"]).get("job_metadata") or {}).get("failure")
        except ApiError:  # the API is away: try to record it anyway, then raise the original
            current = None
        if not current:
            record_failure(client, run["id"], str(exc) or type(exc).__name__)
        raise


def workers_group(backend: LaunchBackend, run: Any) -> TaskGroup:
    """The task group that runs ``run`` (``prepare``'s output) on ``backend``."""
    backend = _backend_core(backend)

    @task(task_id="setup")
    def setup(run: dict) -> list[dict]:
        with MlbenchApiHook().get_conn() as client, _failure_recorded(client, run):
            return backend.setup(client, run)

    @task(task_id="teardown")
    def teardown(run: dict) -> None:
        with MlbenchApiHook().get_conn() as client:
            backend.teardown(client, run)
            try:
                state = client.get_run(run["id"])["state"]
            except NotFound:
                state = "CANCELLED"  # deleted: stopped first
        if state == "CANCELLED":
            # A stopped run's DAG run was marked failed; Airflow keeps it running until its
            # teardowns ran, then judges it by its leaves (finalize, skipped): this failure
            # keeps it failed.
            raise RunStopped(f"run {run['id']} was stopped: its workers were removed")

    @task(task_id="ranks")
    def ranks(run: dict, specs: list[dict]) -> dict:
        ti = get_current_context()["ti"]
        with MlbenchApiHook().get_conn() as client, _failure_recorded(client, run):
            launch_once(client, run, f"try {ti.try_number} on {socket.gethostname()}")
            return backend.launch(client, run, specs)

    with TaskGroup(GROUP, tooltip=f"the ranks on the {backend.name} backend") as group:
        specs = setup(run)
        if backend.per_rank_tasks:
            if backend.name not in RANK_TASKS:
                raise ValueError(f"backend {backend.name!r} has no rank tasks for Airflow")
            workers = RANK_TASKS[backend.name](backend, run, specs)
        else:
            workers = ranks(run, specs)
        workers >> teardown(run).as_teardown(setups=specs, on_failure_fail_dagrun=True)
    return group


def ranks_succeeded() -> bool:
    """Whether every task of ``workers.ranks`` (each mapped one) of this DAG run succeeded."""
    context = get_current_context()
    ti, run_id = context["ti"], context["dag_run"].run_id
    ask = {"dag_id": ti.dag_id, "task_ids": [RANKS], "run_ids": [run_id]}
    total = ti.get_ti_count(**ask)
    return total > 0 and ti.get_ti_count(**ask, states=["success"]) == total
