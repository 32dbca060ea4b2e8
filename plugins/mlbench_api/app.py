"""The FastAPI app that Airflow's API server mounts at ``/mlbench``: the API under ``/api``,
the dashboard (a Dash app, WSGI through a2wsgi) at every other path."""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from mlbench_api import reconcile
from mlbench_api.csrf import SameOriginWrites
from mlbench_api.routers import backend, benchmarks, logs, metrics, nightly, pods, runs
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


def _field_errors(errors: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """Field errors as the API answers them (type, loc, msg, a short input) and the one-line
    message naming each."""
    cleaned = []
    for error in errors:
        item = {
            "type": error.get("type"),
            "loc": list(error.get("loc", ())),
            "msg": str(error.get("msg", "")).removeprefix("Value error, "),
        }
        if (echo := _echo(jsonable_encoder(error.get("input")))) is not None:
            item["input"] = echo
        cleaned.append(item)
    return cleaned, "; ".join(f"{_field(e['loc'])}: {e['msg']}" for e in cleaned[:5])


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 body, plus a one-line ``message`` naming each bad field."""
    errors, message = _field_errors(list(exc.errors()))
    return JSONResponse(status_code=422, content={"detail": errors, "message": message})


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """A refusal naming fields (a 409 for a taken name or a limit the machine cannot give)
    carries the same one-line ``message`` as a 422; other errors as FastAPI answers them."""
    if not isinstance(exc.detail, list):
        return await http_exception_handler(request, exc)
    errors, message = _field_errors(exc.detail)
    return JSONResponse(
        status_code=exc.status_code,
        content={"detail": errors, "message": message},
        headers=exc.headers,
    )


async def _store_refused(_request: Request, exc: DataError) -> JSONResponse:
    """Defence in depth: the schemas should catch every value the database cannot store."""
    log.warning("mlbench store refused a value: %s", exc.orig)
    return JSONResponse(
        status_code=422, content={"detail": f"the store refused a value: {exc.orig}".strip()}
    )


async def _store_unavailable(_request: Request, exc: OperationalError) -> JSONResponse:
    log.error("mlbench store unavailable: %s", exc)
    return JSONResponse(status_code=503, content={"detail": "the mlbench store is unavailable"})


def _airflow_login_url() -> str:
    """Where the Airflow UI logs users in (the dashboard links there after a 401)."""
    try:
        from airflow.api_fastapi.app import get_auth_manager

        return get_auth_manager().get_url_login()
    except Exception:  # noqa: BLE001 - no auth manager yet: Airflow's root redirects to it
        return "/"


class _DashboardFallback:
    """Answers what no API route matched: ``/api/...`` with the API's own 404, any other
    path with the dashboard. Being the router's default (not a mount), it leaves the API's
    405s and trailing-slash handling alone. The dashboard is built on its first request, so
    that Airflow processes that only load the plugin (scheduler, tasks) never import Dash."""

    def __init__(self, build: Callable[[], ASGIApp], not_found: ASGIApp) -> None:
        self.build = build
        self.not_found = not_found
        self._dashboard: ASGIApp | None = None
        self._lock = threading.Lock()

    def dashboard(self) -> ASGIApp:
        with self._lock:
            if self._dashboard is None:
                self._dashboard = self.build()
            return self._dashboard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, root = scope.get("path", ""), scope.get("root_path", "")
        route = path[len(root) :] if root and path.startswith(root) else path
        if scope["type"] == "http" and route != "/api" and not route.startswith("/api/"):
            dashboard = self._dashboard or await run_in_threadpool(self.dashboard)
            await dashboard(scope, receive, send)
        else:
            await self.not_found(scope, receive, send)


def _build_dashboard(prefix: str) -> ASGIApp:
    from a2wsgi import WSGIMiddleware

    from dashboard.api import cookie_token, same_origin_api_url
    from dashboard.app import create_app as create_dashboard

    dashboard = create_dashboard(
        same_origin_api_url, cookie_token, prefix=prefix, login_url=_airflow_login_url
    )
    return WSGIMiddleware(dashboard.server)


def mount_dashboard(app: FastAPI, prefix: str) -> None:
    """Serve the dashboard from ``app`` beside the API, for browsers reaching ``app`` at
    ``prefix``. The dashboard calls the API on the server that received the request, with
    the logged-in Airflow user's token (the UI's ``_token`` cookie)."""
    build = functools.partial(_build_dashboard, prefix)
    app.router.default = _DashboardFallback(build, app.router.default)


def _openapi(app: FastAPI, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """FastAPI's document, with what the routes check against this deployment's settings
    (the registry's rules and ``MLBENCH_MAX_WORKERS`` for a new run)."""
    if app.openapi_schema is None:
        runs.document(build())
    return app.openapi_schema


def create_app(*, dashboard: bool = True, prefix: str = "/mlbench/") -> FastAPI:
    """The mlbench API app (routes under ``/api``), ready to be mounted at ``prefix``; with
    ``dashboard``, the dashboard answers every other path."""
    if get_settings().auth is AuthMode.NONE:
        log.warning("mlbench API authentication is OFF (MLBENCH_AUTH=none): trusted networks only")
    app = FastAPI(
        title="mlbench API",
        version=__version__,
        description="Runs, metrics and worker pods of mlbench (served inside Airflow).",
    )
    for module in (pods, metrics, runs, logs, benchmarks, backend, nightly):
        app.include_router(module.router, prefix="/api")
    app.openapi = functools.partial(_openapi, app, app.openapi)  # type: ignore[method-assign]
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DataError, _store_refused)
    app.add_exception_handler(OperationalError, _store_unavailable)
    if dashboard:
        mount_dashboard(app, prefix)
    app.add_middleware(SameOriginWrites)
    app.add_middleware(StartsMaintenance)
    return app


class StartsMaintenance:
    """Starts the API server's periodic reconciliation on the first request it serves:
    Airflow's other processes (scheduler, tasks) load the plugin but never serve it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.started and scope["type"] == "http":
            self.started = True
            reconcile.start_background()
        await self.app(scope, receive, send)
