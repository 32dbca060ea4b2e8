"""Exactly-once writes: a writer names each write with an ``Idempotency-Key`` header (a
random id it keeps across its retries); the store keeps the key with the write's answer in
the same transaction, so a retry of a write that was stored (say, after the client timed out
while the server committed) gets the first answer back and stores nothing twice.

Keys are kept :data:`KEEP` (far longer than any writer retries) and then pruned.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import Header, HTTPException
from pydantic import WithJsonSchema
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mlbench_api.store.models import WriteKey, utcnow

__all__ = ["KEEP", "KeyHeader", "commit_once", "prune", "replay"]

KEEP = timedelta(days=1)
_KEY_PATTERN = r"^[A-Za-z0-9._:-]+$"
KeyHeader = Annotated[
    str | None,
    # optional, not nullable: a header is there or not
    WithJsonSchema({"type": "string", "minLength": 8, "maxLength": 128, "pattern": _KEY_PATTERN}),
    Header(
        alias="Idempotency-Key",
        min_length=8,
        max_length=128,
        pattern=_KEY_PATTERN,
        description="A key the writer chose for this write and sends again with every retry "
        "of it: a retry of a stored write is answered as the first time, and stores nothing",
    ),
]


def replay(session: Session, key: str | None, route: str) -> dict[str, Any] | None:
    """The answer of the write stored under ``key``, if there is one (None without a key)."""
    if key is None:
        return None
    stored = session.get(WriteKey, key)
    if stored is None:
        return None
    if stored.route != route:
        raise HTTPException(
            status_code=422,
            detail=f"Idempotency-Key {key!r} named a write of another route ({stored.route})",
        )
    return stored.answer


def commit_once(session: Session, key: str | None, route: str, answer: dict[str, Any]) -> Any:
    """Commit the write with its key; the first write's answer when a concurrent one with
    the same key committed first (this one is then rolled back)."""
    if key is not None:
        session.add(WriteKey(key=key, route=route, answer=answer, created_at=utcnow()))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        first = replay(session, key, route)
        if first is None:
            raise
        return first
    return answer


def prune(session: Session) -> int:
    """Forget keys older than :data:`KEEP`; how many."""
    result = session.execute(delete(WriteKey).where(WriteKey.created_at < utcnow() - KEEP))
    session.commit()
    return result.rowcount or 0
