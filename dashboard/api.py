"""How the dashboard reaches the REST API: the URL and token of each request, and API
errors turned into messages a person can act on.

Callbacks run inside a Flask request. :func:`client` builds an
:class:`~mlbench_core.api.ApiClient` for it from the app's :class:`DashboardConfig`: a fixed
API URL, or (mounted by the plugin) the server that received the request; the token from the
configured provider (mounted: the logged-in Airflow user's ``_token`` cookie).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flask
from dash import no_update

from mlbench_core.api import (
    ApiClient,
    ApiError,
    ApiUnavailable,
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationFailed,
)

__all__ = [
    "Access",
    "DashboardConfig",
    "TokenProvider",
    "access",
    "client",
    "config",
    "cookie_token",
    "error_message",
    "field_errors",
    "guarded",
    "href",
    "same_origin_api_url",
]

log = logging.getLogger(__name__)

TokenProvider = Callable[[], str | None]
UrlProvider = str | Callable[[], str]
CONFIG_KEY = "MLBENCH_DASHBOARD"
AIRFLOW_COOKIE = "_token"


@dataclass(frozen=True)
class DashboardConfig:
    """What :func:`dashboard.app.create_app` was given; kept in the Flask app's config."""

    api_url: UrlProvider
    token_provider: TokenProvider
    prefix: str = "/"  # where the browser reaches the dashboard (ends with "/")
    login_url: str | Callable[[], str] | None = None  # where to log in after a 401
    poll_ms: int = 2000


def config() -> DashboardConfig:
    """The configuration of the dashboard serving the current request."""
    return flask.current_app.config[CONFIG_KEY]


def href(path: str) -> str:
    """The browser's URL of dashboard page ``path`` (e.g. ``/runs/3``)."""
    return config().prefix.rstrip("/") + path


@dataclass(frozen=True)
class Access:
    """The API URL and token of one request; usable from other threads."""

    url: str
    token: str | None

    def client(self, timeout: float = 30.0) -> ApiClient:
        return ApiClient(self.url, token=self.token, timeout=timeout)


def access() -> Access:
    """The API URL and token for the current request."""
    settings = config()
    url = settings.api_url() if callable(settings.api_url) else settings.api_url
    return Access(url, settings.token_provider())


def client() -> ApiClient:
    """An API client for the current request."""
    return access().client()


def same_origin_api_url() -> str:
    """The mlbench API root on the server that received the current request.

    Mounted by the plugin, the dashboard and the API are one app: callbacks call the server's
    own address (not the Host the browser used, which may be a proxy's), under the mount
    point (``SCRIPT_NAME``, e.g. ``/mlbench``).
    """
    environ = flask.request.environ
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("SERVER_NAME") or ""
    port = environ.get("SERVER_PORT") or ""
    if not host or not port.isdigit() or int(port) == 0:
        return flask.request.host_url.rstrip("/") + environ.get("SCRIPT_NAME", "")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}{environ.get('SCRIPT_NAME', '')}"


def cookie_token() -> str | None:
    """The caller's Airflow JWT: the Airflow UI's ``_token`` cookie, or a Bearer header."""
    token = flask.request.cookies.get(AIRFLOW_COOKIE)
    if token:
        return token
    header = flask.request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


def error_message(exc: BaseException) -> str:
    """One line telling what went wrong and, where possible, what to do."""
    if isinstance(exc, Unauthorized):
        where = config().login_url if flask.has_request_context() else None
        if callable(where):
            where = where()
        hint = f"log in at {where}" if where else "log in to Airflow"
        return f"Not logged in: {hint}, then reload this page ({exc.message})."
    if isinstance(exc, Forbidden):
        return f"The API refused this for your user: {exc.message}"
    if isinstance(exc, ApiUnavailable):
        return f"The mlbench API does not answer: {exc.message}"
    if isinstance(exc, NotFound):
        return f"Not found: {exc.message}"
    if isinstance(exc, ApiError):
        return f"The API answered {exc.status}: {exc.message}"
    return f"Something went wrong in the dashboard ({type(exc).__name__}: {exc})"


def field_errors(exc: ApiError) -> tuple[dict[str, str], str | None]:
    """Errors of a refused request body per field (``detail[].loc``), and the rest as one
    line (None when every error names a field)."""
    if isinstance(exc, Conflict):
        return {"name": exc.message}, None
    fields: dict[str, str] = {}
    rest: list[str] = []
    detail = exc.detail if isinstance(exc, ValidationFailed) else None
    for item in detail if isinstance(detail, list) else []:
        if not isinstance(item, dict):
            continue
        loc = [str(p) for p in item.get("loc", []) if p not in ("body", "query", "path")]
        msg = str(item.get("msg", "")).removeprefix("Value error, ")
        if loc:
            fields.setdefault(loc[0], msg)
        else:
            rest.append(msg)
    if not fields and not rest:
        rest.append(exc.message)
    return fields, "; ".join(rest) or None


def guarded(
    outputs: int, error_at: int, quiet: tuple[type[Exception], ...] = ()
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Make a callback with ``outputs`` outputs show failures instead of raising.

    An exception becomes a message in output ``error_at`` (the page's error box), the other
    outputs unchanged; a successful call clears it. Exceptions of the ``quiet`` types leave
    every output unchanged (another part of the page says what happened). The wrapped
    function returns a tuple of its other outputs, in order.
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                values = func(*args, **kwargs)
            except quiet:
                return [no_update] * outputs
            except Exception as exc:  # noqa: BLE001 - shown on the page, never as a traceback
                if not isinstance(exc, ApiError):
                    log.exception("dashboard callback %s failed", func.__name__)
                out = [no_update] * outputs
                out[error_at] = error_message(exc)
                return out
            values = list(values)
            if len(values) != outputs - 1:
                raise TypeError(f"{func.__name__} returned {len(values)} of {outputs - 1} outputs")
            values.insert(error_at, None)
            return values

        return wrapper

    return decorate
