"""The FastAPI app that Airflow's API server mounts at ``/mlbench`` (API under ``/api``)."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, OperationalError

from mlbench_api.routers import benchmarks, logs, metrics, pods, runs
from mlbench_core import __version__
from mlbench_core.settings import AuthMode, get_settings

log = logging.getLogger(__name__)


def _field(loc: list | tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or str(loc[0] if loc else "body")


def _echo(value: Any) -> Any:
    """The rejected input, when it is short and valid JSON (NaN and huge batches are not)."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return None
    return value if len(text) <= 1000 else None


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 body, plus a one-line ``message`` naming each bad field."""
    errors = []
    for error in exc.errors():
        cleaned = {
            "type": error.get("type"),
            "loc": list(error.get("loc", ())),
            "msg": str(error.get("msg", "")).removeprefix("Value error, "),
        }
        if (echo := _echo(jsonable_encoder(error.get("input")))) is not None:
            cleaned["input"] = echo
        errors.append(cleaned)
    message = "; ".join(f"{_field(e['loc'])}: {e['msg']}" for e in errors[:5])
    return JSONResponse(status_code=422, content={"detail": errors, "message": message})


async def _store_refused(_request: Request, exc: DataError) -> JSONResponse:
    """Defence in depth: the schemas should catch every value the database cannot store."""
    log.warning("mlbench store refused a value: %s", exc.orig)
    return JSONResponse(
        status_code=422, content={"detail": f"the store refused a value: {exc.orig}".strip()}
    )


async def _store_unavailable(_request: Request, exc: OperationalError) -> JSONResponse:
    log.error("mlbench store unavailable: %s", exc)
    return JSONResponse(status_code=503, content={"detail": "the mlbench store is unavailable"})


def create_app() -> FastAPI:
    """The mlbench API app (routes under ``/api``), ready to be mounted."""
    if get_settings().auth is AuthMode.NONE:
        log.warning("mlbench API authentication is OFF (MLBENCH_AUTH=none): trusted networks only")
    app = FastAPI(
        title="mlbench API",
        version=__version__,
        description="Runs, metrics and worker pods of mlbench (served inside Airflow).",
    )
    for module in (pods, metrics, runs, logs, benchmarks):
        app.include_router(module.router, prefix="/api")
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DataError, _store_refused)
    app.add_exception_handler(OperationalError, _store_unavailable)
    return app
