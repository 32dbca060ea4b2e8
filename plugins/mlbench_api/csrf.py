"""Cross-site request forgery: a write that a browser authenticated with the Airflow UI's
``_token`` cookie must come from a page of this server.

A cross-site form (or ``fetch``) can make a logged-in browser send a POST with the cookie;
it cannot make it send an ``Authorization`` header, and it cannot choose the ``Origin`` the
browser sets. So a state-changing request (not GET, HEAD or OPTIONS) that carries the cookie
and no ``Authorization`` header is refused (403) unless its ``Origin`` (or, without one, its
``Referer``) is the server's own origin: the host the request was sent to
(``X-Forwarded-Host`` behind a proxy) or one of ``MLBENCH_TRUSTED_ORIGINS``. Bearer-token
clients (the CLI, workers, DAG tasks, the original mlbench client) and ``MLBENCH_AUTH=none``
are not affected.
"""

from __future__ import annotations

import json
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from mlbench_core.settings import AuthMode, get_settings

__all__ = ["SameOriginWrites"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
COOKIE = "_token"


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _has_cookie(headers: dict[str, str]) -> bool:
    try:
        return COOKIE in SimpleCookie(headers.get("cookie", ""))
    except CookieError:
        return COOKIE in headers.get("cookie", "")


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def refusal(method: str, scheme: str, headers: dict[str, str]) -> str | None:
    """Why the request must be refused, or None."""
    if method in SAFE_METHODS or "authorization" in headers or not _has_cookie(headers):
        return None
    claimed = headers.get("origin")
    if claimed is None or claimed == "null":
        referer = headers.get("referer")
        claimed = _origin_of(referer) if referer else None
    if claimed is None:
        return "a write authenticated by cookie must say where it comes from (Origin)"
    schemes = {scheme, headers.get("x-forwarded-proto")} - {None}
    hosts = {headers.get("host"), headers.get("x-forwarded-host")} - {None}
    own = {f"{s}://{h}".lower() for s in schemes for h in hosts}
    own |= {o.rstrip("/").lower() for o in get_settings().trusted_origins}
    if claimed.rstrip("/").lower() in own:
        return None
    return f"cross-site write refused: origin {claimed} is not this server's"


class SameOriginWrites:
    """ASGI middleware applying :func:`refusal` to every request of the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and get_settings().auth is not AuthMode.NONE:
            why = refusal(scope["method"], scope.get("scheme", "http"), _headers(scope))
            if why is not None:
                body = json.dumps({"detail": why, "message": why}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 403,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
