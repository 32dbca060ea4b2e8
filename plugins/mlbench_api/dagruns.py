"""Starting and stopping the Airflow DAG run behind an mlbench run.

This code runs inside Airflow's API server, where Airflow's own (supported) helpers for
triggering and marking DAG runs may use Airflow's metadata database.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


class DagRunError(RuntimeError):
    """Airflow refused to start or stop the DAG run."""


def trigger(dag_id: str, conf: dict, *, run_id: str, user: str | None = None) -> str:
    """Trigger ``dag_id`` with ``conf`` as DAG run ``run_id``; returns that id."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import AirflowException
    from airflow.utils.types import DagRunTriggeredByType

    try:
        dag_run = trigger_dag(
            dag_id,
            conf=conf,
            run_id=run_id,
            triggered_by=DagRunTriggeredByType.REST_API,
            triggering_user_name=user,
        )
    except (AirflowException, ValueError) as exc:
        raise DagRunError(f"could not trigger DAG {dag_id!r}: {exc}") from exc
    if dag_run is None:
        raise DagRunError(f"could not trigger DAG {dag_id!r}: no DAG run created")
    return dag_run.run_id


def stop(dag_id: str, dag_run_id: str) -> bool:
    """Mark the DAG run failed if it is still going (Airflow then kills its running tasks).

    Returns whether a running DAG run was stopped.
    """
    from airflow.api_fastapi.common.dagbag import get_dag_for_run
    from airflow.api_fastapi.core_api.datamodels.dag_run import DagRunMutableStates
    from airflow.api_fastapi.core_api.services.public.dag_run import patch_dag_run_state
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    with create_session() as session:
        dag_run = session.scalar(
            select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == dag_run_id)
        )
        if dag_run is None or dag_run.state in (DagRunState.SUCCESS, DagRunState.FAILED):
            return False
        dag = get_dag_for_run(DBDagBag(), dag_run, session=session)
        patch_dag_run_state(
            dag=dag, dag_run=dag_run, state=DagRunMutableStates.FAILED, session=session
        )
        _settle_teardowns(dag, dag_run, session)
        log.info("mlbench: marked DAG run %s/%s failed", dag_id, dag_run_id)
        return True


def _settle_teardowns(dag: Any, dag_run: Any, session: Any) -> None:
    """Airflow leaves a DAG run marked failed running while a teardown may still run, then
    judges it by its leaves. A teardown runs only after a setup succeeded: when none did,
    nothing is set up, so its teardowns are skipped and the DAG run is failed now. (When one
    did, the teardown cleans up and fails for the stopped run, which fails the DAG run.)"""
    from airflow.utils.state import DagRunState, State, TaskInstanceState

    tis = dag_run.get_task_instances(session=session)
    tasks = dag.task_dict
    if any(tasks[ti.task_id].is_setup and ti.state == TaskInstanceState.SUCCESS for ti in tis):
        return
    for ti in tis:
        if tasks[ti.task_id].is_teardown and ti.state not in State.finished:
            ti.state = TaskInstanceState.SKIPPED
    dag_run.set_state(DagRunState.FAILED)


def outcomes(dag_id: str, dag_run_ids: list[str]) -> dict[str, dict[str, Any] | None]:
    """Each DAG run's state, when it ended and its failed tasks (None: no such DAG run)."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    found: dict[str, dict[str, Any] | None] = dict.fromkeys(dag_run_ids)
    if not dag_run_ids:
        return found
    with create_session() as session:
        rows = session.execute(
            select(DagRun.run_id, DagRun.state, DagRun.end_date).where(
                DagRun.dag_id == dag_id, DagRun.run_id.in_(dag_run_ids)
            )
        ).all()
        for run_id, state, end_date in rows:
            found[run_id] = {
                "state": getattr(state, "value", state),
                "end_date": end_date,
                "failed_tasks": [],
            }
        failed = session.execute(
            select(TaskInstance.run_id, TaskInstance.task_id).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id.in_([row[0] for row in rows]),
                TaskInstance.state.in_(
                    [TaskInstanceState.FAILED, TaskInstanceState.UPSTREAM_FAILED]
                ),
            )
        ).all()
        for run_id, task_id in failed:
            found[run_id]["failed_tasks"].append(task_id)  # type: ignore[index]
    return found
