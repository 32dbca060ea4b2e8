"""Shared route dependencies: the store session and lookups that 404."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path
from sqlalchemy.orm import Session

from mlbench_api.store import Pod, Run, get_store
from mlbench_core.api.schemas import MAX_ID

RunId = Annotated[int, Path(ge=1, le=MAX_ID, description="The run's id")]


def get_session() -> Iterator[Session]:
    """A store session for one request. Writing routes commit before they answer, so a 2xx
    always means stored; anything not committed is rolled back when the session closes."""
    with get_store().sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def run_or_404(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise HTTPException(status_code=404, detail=f"run {run_id} not found")
    return run


def pod_or_404(session: Session, name: str) -> Pod:
    pod = session.get(Pod, name)
    if pod is None:
        raise HTTPException(status_code=404, detail=f"pod {name!r} not found")
    return pod


def conflict(loc: list[str], message: str, kind: str = "conflict") -> HTTPException:
    """A 409 in the shape of a validation error: where, what, and its type."""
    return HTTPException(status_code=409, detail=[{"loc": loc, "msg": message, "type": kind}])
