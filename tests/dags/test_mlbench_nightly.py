"""The mlbench_nightly DAG as Airflow parses it."""

from __future__ import annotations

import pendulum
import pytest

from harness.environment import REPO


def parse(settings_env, **env: str):  # noqa: ANN001, ANN201
    from airflow.dag_processing.dagbag import DagBag

    for name, value in env.items():
        settings_env.setenv(name, value)
    bag = DagBag(dag_folder=str(REPO / "dags" / "mlbench_nightly.py"))
    assert bag.import_errors == {}
    return bag.dags["mlbench_nightly"]


def test_the_nightly_parses_with_its_schedule_and_one_run_at_a_time(settings_env):
    dag = parse(settings_env)
    assert set(dag.task_ids) == {"plan", "bench", "compare", "report", "done"}
    assert dag.timetable.expression == "0 2 * * *"  # 02:00 UTC by default
    assert dag.catchup is False and dag.max_active_runs == 1
    bench = dag.get_task("bench")
    assert bench.upstream_task_ids == {"plan"}
    assert bench.max_active_tis_per_dagrun == 1  # runs do not share the CPUs
    assert dag.get_task("compare").trigger_rule == "all_done"
    assert dag.get_task("compare").upstream_task_ids == {"bench"}
    assert dag.get_task("report").trigger_rule == "all_done"
    assert dag.get_task("report").upstream_task_ids == {"compare"}
    done = dag.get_task("done")  # the DAG run fails with compare
    assert done.upstream_task_ids == {"compare", "report"} and done.trigger_rule == "all_success"


def test_the_schedule_comes_from_the_settings(settings_env):
    dag = parse(settings_env, MLBENCH_NIGHTLY_SCHEDULE="30 3 * * 1-5")
    assert dag.timetable.expression == "30 3 * * 1-5"


@pytest.mark.parametrize(
    "now", ["2026-12-02T02:30:00", "2026-12-02T04:00:00", "2026-12-02T23:00:00"]
)
def test_starting_the_stack_never_runs_a_past_nightly(settings_env, monkeypatch, now):
    """The scheduler's own timetable (as it decodes the serialized DAG): with no run yet, the
    first nightly is the next 02:00, even just after today's."""
    from airflow.serialization.decoders import decode_timetable
    from airflow.serialization.encoders import encode_timetable
    from airflow.timetables import trigger
    from airflow.timetables.base import TimeRestriction

    timetable = decode_timetable(encode_timetable(parse(settings_env).timetable))
    monkeypatch.setattr(trigger, "utcnow", lambda: pendulum.parse(now))
    info = timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=None, latest=None, catchup=False),
    )
    assert info.run_after == pendulum.parse("2026-12-03T02:00:00")
