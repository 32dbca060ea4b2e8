"""mlbench_run: one run of one benchmark, triggered with ``conf={"run_id": N}``.

Minimal for now (the REST API issue): the DAG exists so that ``POST /api/runs/`` can trigger
it. Preparing, deploying the workers and finalizing the run come with the next issue; until
then its only task fails with a message that says so, and the run stays visible in the API.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, task

with DAG(
    dag_id="mlbench_run",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=16,
    tags=["mlbench"],
    params={"run_id": Param(None, type=["null", "integer"], description="mlbench run id")},
) as dag:

    @task
    def deploy(params: dict | None = None) -> None:
        raise RuntimeError(
            f"mlbench run {params and params.get('run_id')}: workers cannot be deployed yet "
            "(the worker runtime arrives with the next issue)"
        )

    deploy()
