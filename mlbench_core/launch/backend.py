"""The launch-backend interface: what a backend does for a run, and what it can enforce.

A backend starts the ranks of a run somewhere (processes on this machine, pods on a cluster,
...). The ``mlbench_run`` DAG turns one into a task group (``plugins/mlbench_airflow``):

    prepare >> workers[setup >> ranks >> teardown] >> finalize

- :meth:`LaunchBackend.setup` runs once before any rank (an Airflow setup task): it makes what
  the ranks need (a cluster's Secret and Service; a local dataset prefetch) and returns one
  JSON object per rank, which the ranks task gets;
- the ranks: a backend with ``per_rank_tasks`` gets one Airflow task per rank from the
  Airflow side (``KubernetesPodOperator`` for kubernetes); any other backend runs all its
  ranks in one task, :meth:`LaunchBackend.launch`, which starts them, ships their output to
  the run's logs, keeps their pods' phases current and returns when they have ended
  (raising when one failed);
- :meth:`LaunchBackend.teardown` always runs once setup ran (an Airflow teardown task): it
  removes whatever the run left behind, also after a killed task.

:meth:`LaunchBackend.capabilities` says what the backend enforces on this deployment
(``GET /api/backend``, the CLI and the dashboard's form read it), and
:meth:`LaunchBackend.refusals` which asked-for limits it cannot give (the API refuses such a
run with a 422 naming the field). Nothing here knows Airflow.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from mlbench_core.api.client import ApiClient
from mlbench_core.api.errors import ApiError
from mlbench_core.settings import Settings, get_settings

__all__ = [
    "BUILTIN",
    "Capabilities",
    "Enforcement",
    "LaunchBackend",
    "get_backend",
    "record_failure",
]


class Enforcement(BaseModel):
    """How one kind of limit holds: ``enforced`` (by what), ``requested`` (asked of something
    that is not verified), or ``unavailable`` (runs asking for it are refused)."""

    model_config = ConfigDict(frozen=True)

    status: Literal["enforced", "requested", "unavailable"]
    by: str


class Capabilities(BaseModel):
    """What a backend enforces here (``GET /api/backend``)."""

    model_config = ConfigDict(frozen=True)

    backend: str
    cpu: Enforcement
    fractional_cpus: bool
    bandwidth: Enforcement
    gpus: bool
    custom_images: bool
    logs: str  # how the ranks' output reaches /api/runs/{id}/logs
    admission: bool  # whether the API admits runs by the CPUs free on this machine
    cpu_capacity: float | None  # the CPUs runs get at once (None: the cluster decides)
    pods_from_cluster: bool  # whether GET /api/pods asks a cluster for the pods' status
    max_workers: int

    def lines(self) -> list[str]:
        """What holds, one line per kind of limit (the CLI and the dashboard show these)."""
        capacity = (
            f"runs wait for free CPUs ({self.cpu_capacity:g} in all)"
            if self.admission and self.cpu_capacity is not None
            else "the cluster's scheduler places the workers"
        )
        return [
            f"backend: {self.backend}, at most {self.max_workers} workers; {capacity}",
            f"CPUs per worker: {self.cpu.status} ({self.cpu.by})"
            + ("" if self.fractional_cpus else "; whole CPUs only"),
            f"bandwidth cap: {self.bandwidth.status} ({self.bandwidth.by})",
            f"GPUs: {'yes' if self.gpus else 'no'}; custom images: "
            f"{'yes' if self.custom_images else 'no'}",
            f"worker logs: {self.logs}",
        ]


Echo = Callable[[str], None] | None


@runtime_checkable
class LaunchBackend(Protocol):
    """One way to run the ranks of a run. Implementations: ``local`` and ``kubernetes``."""

    name: str
    per_rank_tasks: bool  # one Airflow task per rank (supplied by the Airflow side)
    admission: bool  # the API admits its runs by the CPUs free on this machine
    pods_from_cluster: bool  # GET /api/pods asks a cluster for the pods' status

    def capabilities(self, settings: Settings) -> Capabilities:
        """What this backend enforces on this deployment."""
        ...

    def refusals(
        self, num_workers: int, num_cpus: float, max_bandwidth: float | None, settings: Settings
    ) -> dict[str, str]:
        """Why a run asking for these limits cannot run as asked, by field (empty: it can)."""
        ...

    def start_metadata(self, run: dict[str, Any]) -> dict[str, Any]:
        """Job metadata recorded when the run starts (e.g. the limits the cluster is asked
        for), beside ``backend`` and ``epochs``."""
        ...

    def setup(self, client: ApiClient, run: dict[str, Any], echo: Echo = print) -> list[dict]:
        """Make what the ranks need; one JSON object per rank for the ranks task(s)."""
        ...

    def launch(
        self, client: ApiClient, run: dict[str, Any], ranks: list[dict], echo: Echo = print
    ) -> dict[str, Any]:
        """Run every rank to its end (backends without ``per_rank_tasks``); raises when the
        ranks failed: the Airflow side records the message as the run's failure reason
        (unless the backend recorded one itself)."""
        ...

    def teardown(self, client: ApiClient, run: dict[str, Any], echo: Echo = print) -> None:
        """Remove what the run's ranks left behind (always runs once setup ran)."""
        ...


# The built-in backends, by name: "module:attribute" of their instance.
BUILTIN = {
    "local": "mlbench_core.launch.local:BACKEND",
    "kubernetes": "mlbench_core.launch.kubernetes:BACKEND",
}


def get_backend(name: str | None = None) -> LaunchBackend:
    """The backend ``name`` (default: ``MLBENCH_BACKEND``): a built-in one, or any object
    implementing :class:`LaunchBackend` named as ``package.module:attribute``."""
    name = name or get_settings().backend
    target = BUILTIN.get(name, name)
    module, _, attribute = target.partition(":")
    if not attribute:
        raise ValueError(
            f"unknown backend {name!r}: use {', '.join(BUILTIN)} or package.module:attribute"
        )
    backend = getattr(importlib.import_module(module), attribute)
    if not isinstance(backend, LaunchBackend):
        raise TypeError(f"{target} does not implement mlbench_core.launch.backend.LaunchBackend")
    return backend


def record_failure(client: ApiClient, run_id: int, reason: str) -> None:
    """Put why the ranks failed in the run's job metadata (``finalize`` reports it)."""
    try:
        client.update_run(run_id, job_metadata={"failure": reason[:4000]})
    except ApiError as exc:
        logging.getLogger(__name__).warning(
            "mlbench: could not record the failure of run %s: %s", run_id, exc
        )
