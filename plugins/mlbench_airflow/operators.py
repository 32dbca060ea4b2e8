"""Operators that wait without holding a worker slot, deferred once on ``RunWaitTrigger``
(which asks the API from the triggerer): ``PrepareRunOperator`` (a run's first task: it starts
when the CPUs it asks for are free) and ``MlbenchRunOperator`` (the nightly's: start one run
through the API and wait for its end)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from mlbench_airflow.hooks import MlbenchApiHook
from mlbench_airflow.triggers import RunWaitTrigger
from mlbench_core import runflow
from mlbench_core.nightly.flow import start
from mlbench_core.nightly.suite import PlannedRun

__all__ = ["MlbenchRunOperator", "PrepareRunOperator"]

# A deferral shorter than this can lose its task to a late executor report (see triggers).
MIN_DEFERRAL_S = 15.0


class PrepareRunOperator(BaseOperator):
    """The run of this DAG run (found, or created from the trigger form), started when the
    API admits it: while the CPUs it asks for are held by other runs it stays INITIALIZED
    (the reason in its job metadata) and this task defers until the triggerer sees it
    admitted (asking every ``poll_interval`` seconds). Returns the STARTED run with its pods
    registered."""

    ui_color = "#eef7ee"

    def __init__(self, *, backend: str, poll_interval: float = 2.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backend = backend
        self.poll_interval = poll_interval

    def execute(self, context: Any, event: Any = None) -> dict[str, Any]:
        """Also what the task resumes with, once admitted."""
        dag_run = context["dag_run"]
        with MlbenchApiHook().get_conn() as client:
            try:
                run = runflow.prepare(
                    client,
                    dict(context["params"]),
                    dag_run.run_id,
                    run_id=(dag_run.conf or {}).get("run_id"),
                )
            except runflow.FormRefused as exc:
                raise AirflowFailException(f"the trigger form was refused: {exc}") from None
            run, waiting = runflow.admit(client, run["id"])
            if waiting is None:
                return runflow.start(client, run, self.backend)
        self.log.info("run %s waits: %s", run["name"], waiting)
        self.defer(
            trigger=RunWaitTrigger(run["id"], "admitted", self.poll_interval, MIN_DEFERRAL_S),
            method_name="execute",
        )


class MlbenchRunOperator(BaseOperator):
    """Creates the ``planned`` run (which triggers its ``mlbench_run`` DAG run), then waits,
    deferred, for its end (the triggerer looks every ``poll_interval`` seconds); returns the
    run's name, id and final state. A run that ends FAILED or CANCELLED does not fail this
    task: the nightly's ``compare`` reports it (and fails)."""

    template_fields = ("planned",)
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        planned: dict[str, Any],
        poll_interval: float = 5.0,
        run_timeout: timedelta = timedelta(hours=12),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.planned = planned
        self.poll_interval = poll_interval
        self.run_timeout = run_timeout

    def execute(self, context: Any) -> dict[str, Any]:
        planned = PlannedRun.model_validate(self.planned)
        with MlbenchApiHook().get_conn() as client:
            run = start(client, planned)
        self.log.info("started run %s (id %s)", run["name"], run["id"])
        self.defer(
            trigger=RunWaitTrigger(run["id"], "ended", self.poll_interval, MIN_DEFERRAL_S),
            method_name="ended",
            timeout=self.run_timeout,
        )

    def ended(self, context: Any, event: Any = None) -> dict[str, Any]:
        """Resumed when the run has ended (the event is the run)."""
        self.log.info("run %s ended %s", event["name"], event["state"])
        return {"name": event["name"], "id": event["id"], "state": event["state"]}
