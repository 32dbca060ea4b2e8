"""``/api/runs/{id}/logs``: workers' stdout and stderr, in order and resumable."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query
from sqlalchemy import func, select

from mlbench_api.auth import CallerDep, UserDep
from mlbench_api.deps import RunId, SessionDep, run_or_404
from mlbench_api.idempotency import KeyHeader, commit_once, replay
from mlbench_api.routing import SlashRouter, body, body_schema
from mlbench_api.store import LogLine
from mlbench_api.store.models import utcnow
from mlbench_core.api.schemas import MAX_ID, MAX_ROW_ID, LogBatch, LogLineOut, LogPage

router = SlashRouter(prefix="/runs", tags=["logs"])


@router.post(
    "/{run_id}/logs", status_code=201, response_model=LogPage, openapi_extra=body_schema(LogBatch)
)
def post_logs(
    run_id: RunId,
    session: SessionDep,
    caller: CallerDep,
    batch: Annotated[LogBatch, Depends(body(LogBatch))],
    key: KeyHeader = None,
) -> Any:
    """Append lines (a worker token may append to its own run), once per
    ``Idempotency-Key``. Returns no lines; ``next`` is the id of the last line stored."""
    caller.require_run(run_id)
    run_or_404(session, run_id)
    if (first := replay(session, key, "logs")) is not None:
        return first
    now = utcnow()
    session.add_all(
        LogLine(run_id=run_id, rank=x.rank, stream=x.stream, line=x.line, date=x.date or now)
        for x in batch.lines
    )
    session.flush()
    last = session.scalar(select(func.max(LogLine.id)).where(LogLine.run_id == run_id))
    answer = LogPage(lines=[], next=last or 0).model_dump(mode="json")
    return commit_once(session, key, "logs", answer)


@router.get("/{run_id}/logs", response_model=LogPage)
def get_logs(
    run_id: RunId,
    session: SessionDep,
    _caller: UserDep,
    rank: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    after: Annotated[
        int, Query(ge=0, le=MAX_ROW_ID, description="Only lines with a larger id")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1_000,
    tail: Annotated[
        bool,
        Query(description="The newest ``limit`` lines (after ``after``) instead of the oldest"),
    ] = False,
) -> LogPage:
    """Lines of the run (or of one rank) after id ``after``, oldest first: the first
    ``limit`` of them, or with ``tail`` the last ``limit``."""
    run_or_404(session, run_id)
    query = select(LogLine).where(LogLine.run_id == run_id, LogLine.id > after)
    if rank is not None:
        query = query.where(LogLine.rank == rank)
    order = LogLine.id.desc() if tail else LogLine.id
    rows = list(session.scalars(query.order_by(order).limit(limit)))
    if tail:
        rows.reverse()
    lines = [
        LogLineOut(id=x.id, rank=x.rank, stream=x.stream, line=x.line, date=x.date) for x in rows
    ]
    return LogPage(lines=lines, next=lines[-1].id if lines else after)
