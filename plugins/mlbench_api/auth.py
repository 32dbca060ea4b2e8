"""Who is calling: an Airflow user (JWT), a run's worker (worker token), or anyone (auth off).

``MLBENCH_AUTH=airflow`` (default): every route needs Airflow's JWT (``Authorization: Bearer``
or the Airflow UI's ``_token`` cookie), checked by Airflow's own ``get_user``. A run's worker
token (``mlbw_...``, issued once to the DAG) may only write metrics and pod status of its run,
and only while the run has not ended.
``MLBENCH_AUTH=none``: no checks, for trusted networks and legacy clients.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from mlbench_api.store import Run, get_store
from mlbench_core.api.schemas import RunState
from mlbench_core.settings import AuthMode, get_settings

log = logging.getLogger(__name__)

WORKER_TOKEN_PREFIX = "mlbw_"
_bearer = HTTPBearer(auto_error=False, description="Airflow JWT, or a run's worker token")


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of a request."""

    kind: str  # "user" | "worker" | "anonymous"
    name: str
    run_id: int | None = None

    @property
    def is_worker(self) -> bool:
        return self.kind == "worker"

    def require_user(self) -> None:
        if self.is_worker:
            raise HTTPException(status_code=403, detail="a worker token may not do this")

    def require_run(self, run_id: int | None) -> None:
        """Workers may only write for their own run."""
        if self.is_worker and run_id != self.run_id:
            raise HTTPException(
                status_code=403, detail=f"this worker token is for run {self.run_id} only"
            )


def new_worker_token(run_id: int) -> tuple[str, str]:
    """A fresh worker token for ``run_id`` and the hash the store keeps of it."""
    token = f"{WORKER_TOKEN_PREFIX}{run_id}_{secrets.token_urlsafe(32)}"
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _worker(token: str) -> Caller:
    with get_store().sessions() as session:
        found = session.execute(
            select(Run.id, Run.state).where(Run.token_hash == hash_token(token))
        ).first()
    if found is None:
        raise HTTPException(status_code=401, detail="unknown or revoked worker token")
    run_id, state = found
    if RunState(state).terminal:
        # The run's workers are done: what still writes with its token is not one of them.
        raise HTTPException(
            status_code=403,
            detail=f"run {run_id} is {state}: its worker token writes nothing any more",
        )
    return Caller(kind="worker", name=f"worker of run {run_id}", run_id=run_id)


async def get_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Authenticate the request (see the module doc)."""
    if get_settings().auth is AuthMode.NONE:
        return Caller(kind="anonymous", name="anonymous")
    if credentials and credentials.credentials.startswith(WORKER_TOKEN_PREFIX):
        return await run_in_threadpool(_worker, credentials.credentials)
    from airflow.api_fastapi.core_api.security import get_user

    user = await get_user(request, None, credentials)
    return Caller(kind="user", name=user.get_name())


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_user_caller(caller: CallerDep) -> Caller:
    caller.require_user()
    return caller


UserDep = Annotated[Caller, Depends(get_user_caller)]
