"""Typed errors of the mlbench REST API, raised by :class:`mlbench_core.api.ApiClient`.

The server answers errors as ``{"detail": "text"}`` or ``{"detail": [{"loc", "msg", ...}]}``;
422s also carry a one-line ``message`` naming each bad field. :func:`raise_for_response` turns
such an answer into the matching :class:`ApiError` subclass.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests

__all__ = [
    "ApiError",
    "ApiUnavailable",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "ServerError",
    "Unauthorized",
    "ValidationFailed",
    "raise_for_response",
    "retry_for",
]

T = TypeVar("T")
_MAX_TEXT = 500  # characters of a non-JSON error body kept in the message


class ApiError(Exception):
    """An error answer of the API (or no answer at all: ``status`` 0)."""

    def __init__(
        self,
        status: int,
        message: str,
        detail: Any = None,
        *,
        response: requests.Response | None = None,
    ) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message
        self.detail = detail
        self.response = response

    def __str__(self) -> str:
        if self.status == 0:
            return self.message
        reason = self.response.reason if self.response is not None else None
        head = f"{self.status} {reason}" if reason else str(self.status)
        return f"{head}: {self.message}"

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed later (no answer, 5xx, 408 or 429)."""
        return self.status == 0 or self.status >= 500 or self.status in (408, 429)


class BadRequest(ApiError):
    """400, or 415 (a body that is not JSON or form fields)."""


class Unauthorized(ApiError):
    """401: no token, or an expired, unknown or revoked one."""


class Forbidden(ApiError):
    """403: e.g. a worker token on a user route, or for another run."""


class NotFound(ApiError):
    """404: no such run or pod."""


class Conflict(ApiError):
    """409: e.g. a run name that is taken, or a state change that is not allowed."""


class ValidationFailed(ApiError):
    """422: the request's body, path or query failed validation."""


class ServerError(ApiError):
    """5xx: the server failed, or its store is unavailable (503)."""


class ApiUnavailable(ApiError):
    """No answer: connection refused, reset or timed out (``status`` is 0)."""

    def __init__(self, message: str) -> None:
        super().__init__(0, message)


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    415: BadRequest,
    422: ValidationFailed,
}


def error_class(status: int) -> type[ApiError]:
    """The :class:`ApiError` subclass of an HTTP error status."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, ApiError)


def _field(loc: Any) -> str:
    if not isinstance(loc, list | tuple):
        return str(loc)
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or (str(loc[0]) if loc else "body")


def render_detail(detail: Any) -> str:
    """A ``detail`` as one readable line: ``field: msg; field: msg`` for error lists."""
    if detail is None:
        return ""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, dict) and "msg" in detail:
        detail = [detail]
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict) and "msg" in item:
                loc = item.get("loc")
                msg = str(item["msg"])
                parts.append(f"{_field(loc)}: {msg}" if loc else msg)
            else:
                parts.append(item if isinstance(item, str) else json.dumps(item, default=str))
        return "; ".join(parts)
    return json.dumps(detail, default=str)


def raise_for_response(response: requests.Response) -> None:
    """Raise the typed :class:`ApiError` of an error response (4xx/5xx); else do nothing."""
    status = response.status_code
    if status < 400:
        return
    detail: Any
    message = ""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        detail = text or None
        message = " ".join(text.split())[:_MAX_TEXT]
    else:
        if isinstance(body, dict) and ("detail" in body or "message" in body):
            detail = body.get("detail")
            if isinstance(body.get("message"), str) and body["message"]:
                message = body["message"]
        else:
            detail = body
        message = message or render_detail(detail)
    raise error_class(status)(
        status, message or response.reason or f"HTTP {status}", detail, response=response
    )


def retry_for(
    call: Callable[[], T],
    seconds: float,
    on_retry: Callable[[ApiError], None] | None = None,
) -> T:
    """``call()``, called again while it fails with a retryable :class:`ApiError` (the API
    away, restarting or overloaded), with capped exponential backoff (0.5 s doubling to
    10 s) for up to ``seconds``; then the last error is raised. ``on_retry`` hears of each
    error that is retried. Only for calls that may be repeated (PUTs, keyed writes)."""
    deadline, delay = time.monotonic() + seconds, 0.5
    while True:
        try:
            return call()
        except ApiError as exc:
            left = deadline - time.monotonic()
            if not exc.retryable or left <= 0:
                raise
            if on_retry is not None:
                on_retry(exc)
            time.sleep(min(delay, left))
            delay = min(2 * delay, 10.0)
