"""The mlbench_run DAG as Airflow parses it, for both backends."""

from __future__ import annotations

import pytest

from harness.environment import REPO


def parse(settings_env, backend: str):  # noqa: ANN001, ANN201
    from airflow.dag_processing.dagbag import DagBag

    settings_env.setenv("MLBENCH_BACKEND", backend)
    bag = DagBag(dag_folder=str(REPO / "dags" / "mlbench_run.py"))
    assert bag.import_errors == {}
    return bag.dags["mlbench_run"]


def assert_graph(dag, ranks: str) -> None:  # noqa: ANN001
    """prepare >> workers[setup >> ranks >> teardown] >> finalize, with Airflow's
    setup/teardown marks and a finalize that always runs."""
    assert set(dag.task_ids) == {
        "prepare",
        "workers.setup",
        "workers.ranks",
        "workers.teardown",
        "finalize",
    }
    setup, work, teardown = (dag.get_task(f"workers.{t}") for t in ("setup", "ranks", "teardown"))
    assert setup.is_setup and not setup.is_teardown
    assert teardown.is_teardown and teardown.on_failure_fail_dagrun
    assert teardown.trigger_rule == "all_done_setup_success"
    assert setup.upstream_task_ids == {"prepare"}
    assert work.upstream_task_ids == {"workers.setup"} | (
        {"prepare"} if ranks == "_PythonDecoratedOperator" else set()
    )
    assert teardown.upstream_task_ids == {"prepare", "workers.setup", "workers.ranks"}
    assert getattr(work, "operator_class", type(work)).__name__ == ranks
    finalize = dag.get_task("finalize")
    assert finalize.upstream_task_ids == {"workers.ranks"}  # not the teardown: it runs beside
    assert finalize.trigger_rule == "all_done"
    assert dag.schedule is None  # triggered only (API, form, CLI)


def test_local_backend_dag(settings_env):
    dag = parse(settings_env, "local")
    assert_graph(dag, "_PythonDecoratedOperator")
    prepare = dag.get_task("prepare")
    assert type(prepare).__name__ == "PrepareRunOperator" and prepare.backend == "local"


def test_kubernetes_backend_dag(settings_env):
    dag = parse(settings_env, "kubernetes")
    assert_graph(dag, "KubernetesPodOperator")
    ranks = dag.get_task("workers.ranks")
    assert ranks.partial_kwargs["deferrable"] is False  # it follows the log stream
    assert ranks.partial_kwargs["get_logs"] is True
    assert [c.__name__ for c in ranks.partial_kwargs["callbacks"]] == ["ShipPodLogs"]


def test_a_third_backend_plugs_in_by_its_import_path(settings_env):
    dag = parse(settings_env, "tests.support.plain_backend:BACKEND")
    assert_graph(dag, "_PythonDecoratedOperator")
    assert dag.get_task("prepare").backend == "tests.support.plain_backend:BACKEND"


def test_an_unknown_backend_is_an_import_error(settings_env):
    from airflow.dag_processing.dagbag import DagBag

    settings_env.setenv("MLBENCH_BACKEND", "tests.support.plain_backend:NOTHING")
    bag = DagBag(dag_folder=str(REPO / "dags" / "mlbench_run.py"))
    assert "NOTHING" in next(iter(bag.import_errors.values()))


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
