"""mlbench_run: one run of one benchmark.

Triggered by ``POST /api/runs/`` with ``conf={"run_id": N}``, or from the Airflow UI's form
(then ``prepare`` creates the run from the form's fields). Tasks: ``prepare`` (waits, deferred,
until the CPUs the run asks for are free) → the workers → ``finalize`` (always runs). The
backend (``MLBENCH_BACKEND``) picks how workers run: ``local`` processes on this machine, each
rank in its own sandbox (one task), or ``kubernetes`` pods, one per rank.
The logic lives in ``mlbench_core.runflow`` and ``mlbench_core.launch``; this file wires it.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task

from mlbench_airflow.connection import api_client
from mlbench_airflow.operators import PrepareRunOperator
from mlbench_core import runflow
from mlbench_core.benchmarks import DEFAULT_BENCHMARK, REGISTRY
from mlbench_core.settings import Backend, get_settings

AGGREGATIONS = sorted({name for spec in REGISTRY.values() for name in spec.aggregations})

settings = get_settings()
_client = api_client  # the API as the DAGs' service user (Airflow connection mlbench_api)


def _kubernetes_workers(run: object) -> object:
    """setup (Secret with the worker token, headless Service) → one pod per rank → deploy
    (reached only when every pod succeeded); teardown always runs."""
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    from mlbench_core.launch import kubernetes as k8s

    @task
    def setup(run: dict) -> list[dict]:
        core = KubernetesHook().core_v1_client
        token = _client().issue_worker_token(run["id"])
        core.create_namespaced_secret(settings.namespace, k8s.secret_manifest(run, token, settings))
        core.create_namespaced_service(settings.namespace, k8s.service_manifest(run, settings))
        return k8s.pod_kwargs(run, settings)

    @task(trigger_rule="all_done")
    def teardown(run: dict) -> None:
        core = KubernetesHook().core_v1_client
        k8s.delete_run_objects(core, run, settings)

    pods = KubernetesPodOperator.partial(
        task_id="workers", namespace=settings.namespace, **k8s.POD_DEFAULTS
    ).expand_kwargs(setup(run))

    @task
    def deploy() -> dict:
        return {"backend": "kubernetes"}

    done = deploy()
    pods >> done
    pods >> teardown(run)
    return done


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
        ti = context["ti"]
        run = ti.xcom_pull(task_ids="prepare")
        run_id = run["id"] if run else context["params"].get("run_id")
        deployed = ti.xcom_pull(task_ids="deploy") is not None
        return runflow.finalize(_client(), run_id, deployed)

    run = PrepareRunOperator(task_id="prepare", backend=settings.backend).output
    if settings.backend is Backend.KUBERNETES:
        deployed = _kubernetes_workers(run)
    else:

        @task
        def deploy(run: dict) -> dict:
            client = _client()
            return runflow.deploy_local(client, run, client.base_url.removesuffix("/api"))

        deployed = deploy(run)
    deployed >> finalize()
