"""``/api/nightly``: the reports of the nightly benchmark suite, one per night."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query
from pydantic import AfterValidator
from sqlalchemy import select

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
        date=row.date,
        verdict=row.verdict,
        dag_run_id=row.dag_run_id,
        created_at=row.created_at,
        report=row.report,
    )


@router.get("/", response_model=list[NightlyReportOut])
def list_reports(
    session: SessionDep,
    _caller: UserDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="The newest N nights")] = 30,
) -> list[NightlyReportOut]:
    """The newest reports first."""
    rows = session.scalars(select(NightlyReport).order_by(NightlyReport.date.desc()).limit(limit))
    return [_out(row) for row in rows]


@router.get("/{date}", response_model=NightlyReportOut)
def get_report(date: NightDate, session: SessionDep, _caller: UserDep) -> NightlyReportOut:
    row = session.get(NightlyReport, date)
    if row is None:
        raise HTTPException(status_code=404, detail=f"no nightly report for {date}")
    return _out(row)


@router.put("/{date}", response_model=NightlyReportOut, openapi_extra=body_schema(NightlyReportIn))
def put_report(
    date: NightDate,
    session: SessionDep,
    _caller: UserDep,
    data: Annotated[NightlyReportIn, Depends(body(NightlyReportIn))],
) -> NightlyReportOut:
    """Store the night's report (the nightly DAG's ``compare`` task), replacing an earlier
    one of the same night."""
    row = session.get(NightlyReport, date) or NightlyReport(date=date)
    row.verdict, row.report, row.dag_run_id = data.verdict, data.report, data.dag_run_id
    row.created_at = utcnow()
    session.add(row)
    session.commit()
    return _out(row)
