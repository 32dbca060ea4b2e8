"""mlbench_run: one run of one benchmark.

Triggered by ``POST /api/runs/`` with the run's id and fields as ``conf``
(``run_fields.dag_conf``), or from the Airflow UI's form, generated from the run's one
declaration (then ``prepare`` creates the run from the form's fields). Tasks: ``prepare``
(waits, deferred, until the CPUs the run asks for are free) >> ``workers`` (the launch
backend's task group: setup >> ranks >> teardown) >> ``finalize`` (always runs).
``MLBENCH_BACKEND`` names the backend (``mlbench_core.launch.backend``): ``local`` processes
on this machine, each rank in its own sandbox, or ``kubernetes`` pods, one per rank. This
file only wires them.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from mlbench_airflow.hooks import MlbenchApiHook
from mlbench_airflow.operators import PrepareRunOperator
from mlbench_airflow.params import run_params
from mlbench_airflow.retries import api_retries
from mlbench_airflow.workers import ranks_succeeded, workers_group
from mlbench_core import runflow
from mlbench_core.launch.backend import get_backend
from mlbench_core.settings import get_settings

settings = get_settings()
backend = get_backend(settings.backend)
# prepare and finalize only talk to the API: an API that is away (restarting) is waited for
# as long as the workers wait for it. The ranks are never retried (a run is deployed once).
API_RETRIES = api_retries(settings.api_wait)

with DAG(
    dag_id="mlbench_run",
    description="One run of one mlbench benchmark",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=8,
    tags=["mlbench"],
    params=run_params(),
) as dag:

    @task(trigger_rule="all_done", **API_RETRIES)
    def finalize() -> dict | None:
        context = get_current_context()
        run = context["ti"].xcom_pull(task_ids="prepare")
        run_id = run["id"] if run else (context["dag_run"].conf or {}).get("run_id")
        with MlbenchApiHook().get_conn() as client:
            try:
                return runflow.finalize(client, run_id, ranks_succeeded())
            except runflow.RunFailed as exc:
                raise AirflowFailException(str(exc)) from None  # recorded: no retry

    run = PrepareRunOperator(task_id="prepare", backend=settings.backend, **API_RETRIES).output
    run >> workers_group(backend, run) >> finalize()
