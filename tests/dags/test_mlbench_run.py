"""The mlbench_run DAG as Airflow parses it, for both backends."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from harness.environment import REPO
from mlbench_core.api.schemas import RunCreate
from mlbench_core.run_fields import FORM_FIELDS, bounds_text, form_schema, validation_context


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


def test_trigger_form_params_are_the_run_fields(settings_env):
    """One Param per field a person sets, with RunCreate's types, bounds, choices, titles
    and descriptions; nothing internal (the API's run id travels in conf)."""
    params = parse(settings_env, "local").params
    schema = form_schema()
    assert list(params.keys()) == list(FORM_FIELDS) == list(schema)
    assert "run_id" not in params and "job_id" not in params
    for name in FORM_FIELDS:
        param = params.get_param(name)
        expected = {k: v for k, v in schema[name].items() if k not in ("default", "description")}
        assert param.schema == expected, name
        assert param.value == schema[name]["default"], name
        description = schema[name]["description"] + bounds_text(schema[name])
        assert param.description == description, name
    assert params.get_param("benchmark").value == "digits"
    assert params.get_param("aggregation").schema["values_display"] == {"null": "benchmark default"}
    assert params.get_param("name").schema["type"] == "string"  # required: no null


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", None),
        ("name", "Bad_Name"),
        ("name", "a" * 64),
        ("num_workers", 0),
        ("num_cpus", 0),
        ("epochs", 0),
        ("steps_per_epoch", 0),
        ("seed", -1),
        ("seed", 2**32),
        ("benchmark", "9z"),
        ("aggregation", "ring"),
        ("backend", "mpi"),
    ],
)
def test_the_form_refuses_what_the_api_refuses(settings_env, field, value):
    params = parse(settings_env, "local").params
    with pytest.raises(Exception):  # noqa: B017 - jsonschema's or Airflow's error
        params.get_param(field).resolve(value)
    body = {"name": "ok", "num_workers": 1, field: value}
    with pytest.raises(ValidationError):
        RunCreate.model_validate(body, context=validation_context())
