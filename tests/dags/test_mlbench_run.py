"""The mlbench_run DAG as Airflow parses it, for both backends."""

from __future__ import annotations

import pytest

from tests.support.environment import REPO


def parse(settings_env, backend: str):  # noqa: ANN001, ANN201
    from airflow.dag_processing.dagbag import DagBag

    settings_env.setenv("MLBENCH_BACKEND", backend)
    bag = DagBag(dag_folder=str(REPO / "dags" / "mlbench_run.py"))
    assert bag.import_errors == {}
    return bag.dags["mlbench_run"]


def test_local_backend_dag(settings_env):
    dag = parse(settings_env, "local")
    assert set(dag.task_ids) == {"prepare", "deploy", "finalize"}
    assert dag.get_task("finalize").trigger_rule == "all_done"
    assert dag.get_task("deploy").upstream_task_ids == {"prepare"}
    assert dag.get_task("finalize").upstream_task_ids == {"deploy"}
    assert dag.schedule is None  # triggered only (API, form, CLI)
    prepare = dag.get_task("prepare")
    assert type(prepare).__name__ == "PrepareRunOperator" and prepare.backend == "local"


def test_trigger_form_params(settings_env):
    dag = parse(settings_env, "local")
    params = dag.params
    assert {
        "run_id",
        "name",
        "benchmark",
        "num_workers",
        "num_cpus",
        "max_bandwidth",
        "backend",
        "light_target",
        "oversubscribe",
    } <= set(params.keys())
    schema = params.get_param("benchmark").schema
    assert "1a" in schema["enum"]
    assert params.get_param("name").schema["pattern"].startswith("^[a-z0-9]")
    with pytest.raises(Exception, match="num_workers|maximum|less"):
        params.get_param("num_workers").resolve(10_000)


def test_kubernetes_backend_dag(settings_env):
    dag = parse(settings_env, "kubernetes")
    assert set(dag.task_ids) == {"prepare", "setup", "workers", "deploy", "teardown", "finalize"}
    workers = dag.get_task("workers")
    assert workers.upstream_task_ids == {"setup"}
    assert dag.get_task("teardown").trigger_rule == "all_done"
    assert dag.get_task("finalize").upstream_task_ids == {"deploy"}
