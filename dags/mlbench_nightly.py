"""``mlbench_nightly``: the benchmark suite every night, compared with its history.

plan (tonight's runs from the suite) → bench (one ``mlbench_run`` per planned run, one at a
time, each awaited deferred) → compare (against the last nightlies or pinned runs; the
report is stored through the API; fails on a regression or a failed run, so that Airflow's
alerting fires) → report (Markdown + JSON under ``$MLBENCH_HOME/nightly/``, always) → done
(fails with compare, so that the DAG run does too).
The logic lives in ``mlbench_core.nightly``; this file only wires it.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, CronTriggerTimetable, Param, get_current_context, task

from mlbench_airflow.operators import MlbenchRunOperator
from mlbench_core.settings import get_settings

settings = get_settings()
SUITE_VARIABLE = "mlbench_nightly_suite"

with DAG(
    dag_id="mlbench_nightly",
    description="The mlbench suite, nightly, with regression detection",
    # No start_date: the first nightly is the next scheduled time, not the latest past one
    # (starting the stack must not start the suite). Airflow reads run_immediately=False (its
    # default) as "the past run if within a tenth of the period" (2.4 h for a daily
    # schedule): a stack started before 04:24 ran the 02:00 nightly at once. A zero margin
    # never takes a past run.
    schedule=CronTriggerTimetable(
        settings.nightly_schedule, timezone="UTC", run_immediately=timedelta(0)
    ),
    catchup=False,
    max_active_runs=1,
    tags=["mlbench"],
    params={
        "suite": Param(
            None,
            type=["null", "string"],
            title="Suite (YAML)",
            description="Empty: the Variable mlbench_nightly_suite, else "
            "$MLBENCH_HOME/nightly.yaml, else digits at 1 and 2 workers, twice",
        ),
    },
) as dag:

    @task
    def plan() -> list[dict]:
        from airflow.sdk import Variable

        from mlbench_core.nightly import suite as suites

        context = get_current_context()
        text = context["params"].get("suite") or Variable.get(SUITE_VARIABLE, default=None)
        suite = suites.load_suite(text, settings.nightly_suite_file)
        day = context["dag_run"].logical_date or context["dag_run"].run_after
        planned = suites.plan(suite, day.date(), context["dag_run"].run_id)
        return [p.model_dump() for p in planned]

    bench = MlbenchRunOperator.partial(
        task_id="bench",
        poll_interval=settings.nightly_poll_interval,
        max_active_tis_per_dagrun=1,  # one run at a time: runs must not share the CPUs
        # A look that fails (API or executor hiccup) is tried again: the run is found by
        # its name and awaited, not started twice.
        retries=3,
        retry_delay=timedelta(seconds=2),
    ).expand(planned=plan())

    @task(trigger_rule="all_done")
    def compare() -> str:
        from airflow.sdk import Variable
        from airflow.sdk.exceptions import AirflowFailException

        from mlbench_airflow.hooks import MlbenchApiHook
        from mlbench_core.nightly import flow
        from mlbench_core.nightly import suite as suites

        context = get_current_context()
        params_suite = context["params"].get("suite")
        text = params_suite or Variable.get(SUITE_VARIABLE, default=None)
        suite = suites.load_suite(text, settings.nightly_suite_file)
        day = (context["dag_run"].logical_date or context["dag_run"].run_after).date()
        dag_run_id = context["dag_run"].run_id
        planned = suites.plan(suite, day, dag_run_id)
        with MlbenchApiHook().get_conn() as client:
            tonight = flow.collect(client, planned)
            past = flow.history(client, suite, day)
            verdict, report = flow.make_report(day, dag_run_id, suite, tonight, past)
            client.put_nightly_report(day.isoformat(), verdict, report, dag_run_id)
        problems = flow.regressions(report)
        if problems:
            raise AirflowFailException("nightly " + day.isoformat() + ": " + "; ".join(problems))
        return verdict

    @task(trigger_rule="all_done")
    def report() -> str:
        import json

        from mlbench_airflow.hooks import MlbenchApiHook
        from mlbench_core.nightly import flow

        context = get_current_context()
        day = (context["dag_run"].logical_date or context["dag_run"].run_after).date()
        with MlbenchApiHook().get_conn() as client:
            stored = client.get_nightly_report(day.isoformat())
        folder = settings.home / "nightly"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{day.isoformat()}.json").write_text(json.dumps(stored["report"], indent=2))
        markdown = folder / f"{day.isoformat()}.md"
        markdown.write_text(flow.render_markdown(stored["report"]))
        return str(markdown)

    # "done" fails (upstream failed) when compare failed, so the DAG run fails too: the
    # report, which always runs, is not the last word.
    compared = compare()
    written = report()
    done = EmptyOperator(task_id="done")
    bench >> compared >> written
    [compared, written] >> done
