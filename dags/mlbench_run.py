"""mlbench_run: one run of one benchmark.

Triggered by ``POST /api/runs/`` with ``conf={"run_id": N}``, or from the Airflow UI's form
(then ``prepare`` creates the run from the form's fields). Tasks: ``prepare`` (waits, deferred,
until the CPUs the run asks for are free) >> ``workers`` (the launch backend's task group:
setup >> ranks >> teardown) >> ``finalize`` (always runs). ``MLBENCH_BACKEND`` names the
backend (``mlbench_core.launch.backend``): ``local`` processes on this machine, each rank in
its own sandbox, or ``kubernetes`` pods, one per rank. This file only wires them.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task

from mlbench_airflow.hooks import MlbenchApiHook
from mlbench_airflow.operators import PrepareRunOperator
from mlbench_airflow.workers import ranks_succeeded, workers_group
from mlbench_core import runflow
from mlbench_core.benchmarks import DEFAULT_BENCHMARK, REGISTRY
from mlbench_core.launch.backend import get_backend
from mlbench_core.settings import get_settings

AGGREGATIONS = sorted({name for spec in REGISTRY.values() for name in spec.aggregations})

settings = get_settings()
backend = get_backend(settings.backend)

with DAG(
    dag_id="mlbench_run",
    description="One run of one mlbench benchmark",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=8,
    tags=["mlbench"],
    params={
        "run_id": Param(
            None,
            type=["null", "integer"],
            title="Run id",
            description="Set by the API; leave empty in the form",
        ),
        "name": Param(
            None,
            type=["null", "string"],
            title="Run name",
            pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
            maxLength=63,
            description="Lower-case DNS label, unique",
        ),
        "benchmark": Param(
            "digits" if "digits" in REGISTRY else DEFAULT_BENCHMARK,
            type="string",
            enum=sorted(REGISTRY),
            title="Benchmark",
        ),
        "num_workers": Param(
            2, type="integer", minimum=1, maximum=settings.max_workers, title="Workers"
        ),
        "num_cpus": Param(1.0, type="number", exclusiveMinimum=0, title="CPUs per worker"),
        "max_bandwidth": Param(
            None, type=["null", "number"], exclusiveMinimum=0, title="Bandwidth cap (Mbit/s)"
        ),
        "backend": Param(
            "gloo", type="string", enum=["gloo", "nccl"], title="Communication backend"
        ),
        "light_target": Param(False, type="boolean", title="Light target"),
        "aggregation": Param(
            None,
            type=["null", "string"],
            enum=[None, *AGGREGATIONS],
            title="Aggregation",
            description="Empty: the benchmark's default",
        ),
        "synthetic": Param(
            False, type="boolean", title="Synthetic data (throughput only, no goal)"
        ),
        "oversubscribe": Param(
            False,
            type="boolean",
            title="Oversubscribe",
            description="Run even if the workers ask for more CPUs than this machine has",
        ),
    },
) as dag:

    @task(trigger_rule="all_done")
    def finalize() -> dict | None:
        context = get_current_context()
        run = context["ti"].xcom_pull(task_ids="prepare")
        run_id = run["id"] if run else context["params"].get("run_id")
        with MlbenchApiHook().get_conn() as client:
            return runflow.finalize(client, run_id, ranks_succeeded())

    run = PrepareRunOperator(task_id="prepare", backend=settings.backend).output
    run >> workers_group(backend, run) >> finalize()
