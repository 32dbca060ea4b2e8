"""The mlbench dashboard: a Dash (Pages) app that reads and writes only through the REST API.

``create_app(api_url, token_provider)`` builds it. The Airflow plugin mounts it beside the API
(``prefix="/mlbench/"``, the API URL taken from the request, the token from the Airflow UI's
login cookie); ``mlbench dashboard --api URL`` serves it on its own.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable
from pathlib import Path

import dash
import flask
from dash import Dash, dcc, html

from dashboard import downloads
from dashboard.api import CONFIG_KEY, DashboardConfig, TokenProvider, UrlProvider, config, href
from dashboard.pages import (
    compare,
    nightly,
    not_found_404,
    overlay,
    run_details,
    runs,
    worker_details,
    workers,
)

__all__ = ["create_app"]

RUN_PAGE = re.compile(r"/runs/(\d{1,10})/?")
ASSETS = Path(__file__).resolve().parent / "assets"
PAGES = (workers, runs, run_details, worker_details, compare, overlay, nightly, not_found_404)


def _no_token() -> None:
    return None


def _shell() -> html.Div:
    """Header with the navigation, then the current page."""
    api = config().api_url
    if isinstance(api, str):
        root = api.rstrip("/")
        api_href = (root if root.endswith("/api") else root + "/api") + "/"
    else:
        api_href = href("/api/")
    return html.Div(
        [
            html.Header(
                [
                    dcc.Link("mlbench", href=href("/"), className="brand"),
                    html.Nav(
                        [
                            dcc.Link("Workers", href=href("/"), id="nav-workers"),
                            dcc.Link("Runs", href=href("/runs"), id="nav-runs"),
                            dcc.Link("Compare", href=href("/compare"), id="nav-compare"),
                            dcc.Link("Nightly", href=href("/nightly"), id="nav-nightly"),
                        ]
                    ),
                    html.A("API", href=api_href, className="api-link", target="_blank"),
                ],
                className="topbar",
            ),
            html.Main(dash.page_container, className="page"),
        ]
    )


def _register_pages(app: Dash) -> None:
    """The pages and their callbacks. Run in a context of its own: ``dash.register_page``
    reads a context variable that ``import dash`` sets only in the importing thread, and the
    plugin builds the app in a worker thread."""
    from dash._callback_context import context_value

    context_value.set({})
    for order, page in enumerate(PAGES):
        dash.register_page(page.__name__, order=order, layout=page.layout, **page.PAGE)
        page.register(app)


def create_app(
    api_url: UrlProvider,
    token_provider: TokenProvider | None = None,
    *,
    prefix: str = "/",
    login_url: str | Callable[[], str] | None = None,
    poll_interval_s: float = 2.0,
) -> Dash:
    """The dashboard app.

    ``api_url``: the mlbench API root (``http://host:8080/mlbench``), or a function giving it
    per request. ``token_provider``: a function giving the token of the current request (None:
    no token). ``prefix``: the URL path where browsers reach the dashboard; its routes are
    served at ``/`` of the WSGI app (a mount point passes the prefix as ``SCRIPT_NAME``).
    """
    if not prefix.startswith("/") or not prefix.endswith("/"):
        raise ValueError(f"prefix must start and end with '/': {prefix!r}")
    app = Dash(
        "dashboard",
        use_pages=True,
        pages_folder="",
        assets_folder=str(ASSETS),
        requests_pathname_prefix=prefix,
        routes_pathname_prefix="/",
        suppress_callback_exceptions=True,
        title="mlbench",
        update_title=None,
        serve_locally=True,
    )
    app.server.config[CONFIG_KEY] = DashboardConfig(
        api_url=api_url,
        token_provider=token_provider or _no_token,
        prefix=prefix,
        login_url=login_url,
        poll_ms=int(poll_interval_s * 1000),
    )
    contextvars.copy_context().run(_register_pages, app)
    downloads.register(app.server)

    @app.server.before_request
    def _head_start() -> None:
        """Opening a run's page: start reading its charts' series right away."""
        match = RUN_PAGE.fullmatch(flask.request.path) if flask.request.method == "GET" else None
        if match:
            run_details.prefetch(int(match.group(1)))

    app.layout = _shell
    return app
