"""``/api/nightly``: the reports of the nightly benchmark suite, one per nightly DAG run
(every nightly of a day is kept)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query
from pydantic import AfterValidator
from sqlalchemy import ColumnElement, select

from mlbench_api.auth import UserDep
from mlbench_api.deps import SessionDep
from mlbench_api.routing import SlashRouter, body, body_schema
from mlbench_api.store import NightlyReport
from mlbench_api.store.models import utcnow
from mlbench_core.api.schemas import NIGHTLY_DATE, NightlyReportIn, NightlyReportOut

router = SlashRouter(prefix="/nightly", tags=["nightly"])


def _a_date(value: str) -> str:
    date.fromisoformat(value)  # ValueError: "month must be in 1..12", ...
    return value


NightDate = Annotated[
    str,
    Path(pattern=NIGHTLY_DATE, description="YYYY-MM-DD", json_schema_extra={"format": "date"}),
    AfterValidator(_a_date),
]


def _out(row: NightlyReport) -> NightlyReportOut:
    return NightlyReportOut(
        id=row.id,
        date=row.date,
        verdict=row.verdict,
        dag_run_id=row.dag_run_id,
        created_at=row.created_at,
        report=row.report,
    )


DagRunQuery = Annotated[
    str | None, Query(max_length=250, description="The report of this nightly DAG run")
]


def _of_run(dag_run_id: str | None) -> ColumnElement[bool]:
    column = NightlyReport.dag_run_id
    return column.is_(None) if dag_run_id is None else column == dag_run_id


@router.get("/", response_model=list[NightlyReportOut])
def list_reports(
    session: SessionDep,
    _caller: UserDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="The newest N reports")] = 30,
) -> list[NightlyReportOut]:
    """The newest reports first (a day with two nightlies has two)."""
    query = select(NightlyReport).order_by(NightlyReport.date.desc(), NightlyReport.id.desc())
    return [_out(row) for row in session.scalars(query.limit(limit))]


@router.get("/{date}", response_model=NightlyReportOut)
def get_report(
    date: NightDate, session: SessionDep, _caller: UserDep, dag_run_id: DagRunQuery = None
) -> NightlyReportOut:
    """The newest report of the night, or that of the nightly ``dag_run_id``."""
    query = select(NightlyReport).where(NightlyReport.date == date)
    if dag_run_id is not None:
        query = query.where(NightlyReport.dag_run_id == dag_run_id)
    row = session.scalars(query.order_by(NightlyReport.id.desc()).limit(1)).first()
    if row is None:
        run = f" of DAG run {dag_run_id}" if dag_run_id is not None else ""
        raise HTTPException(status_code=404, detail=f"no nightly report for {date}{run}")
    return _out(row)


@router.put("/{date}", response_model=NightlyReportOut, openapi_extra=body_schema(NightlyReportIn))
def put_report(
    date: NightDate,
    session: SessionDep,
    _caller: UserDep,
    data: Annotated[NightlyReportIn, Depends(body(NightlyReportIn))],
) -> NightlyReportOut:
    """Store the report of one nightly DAG run (the nightly DAG's ``compare`` task): it
    replaces the report of the same date and ``dag_run_id`` (a retry), and is kept beside
    the other nightlies of the day."""
    query = select(NightlyReport).where(NightlyReport.date == date, _of_run(data.dag_run_id))
    row = session.scalars(query.limit(1)).first()
    row = row or NightlyReport(date=date, dag_run_id=data.dag_run_id)
    row.verdict, row.report = data.verdict, data.report
    row.created_at = utcnow()
    session.add(row)
    session.commit()
    return _out(row)
