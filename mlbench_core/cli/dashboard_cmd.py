"""``mlbench dashboard``: serve the dashboard on its own, reading the API at ``--api``."""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from mlbench_core.api import ApiClient
from mlbench_core.cli.common import EXIT_OK, EXIT_USAGE, CliError, api_url, console, login
from mlbench_core.settings import AuthMode, Settings

REFRESH_S = 3600.0  # log in again this often (Airflow's tokens last a day by default)


class StackLogin:
    """Tokens of the embedded stack's admin, as ``mlbench`` commands log in; renewed hourly."""

    def __init__(self, settings: Settings, url: str, refresh_s: float = REFRESH_S) -> None:
        self.settings = settings
        self.url = url
        self.refresh_s = refresh_s
        self._token: str | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() - self._at > self.refresh_s:
                self._token = login(self.settings, self.url)
                self._at = time.monotonic()
            return self._token


def token_provider(settings: Settings, url: str, token: str | None) -> Callable[[], str | None]:
    """The dashboard's token: ``--token``, else MLBENCH_API_TOKEN, else the stack's admin
    (logged in like the other commands); none with MLBENCH_AUTH=none."""
    if token:
        return lambda: token
    if settings.api_token:
        fixed = settings.api_token
        return lambda: fixed
    if settings.auth is AuthMode.NONE:
        return lambda: None
    return StackLogin(settings, url)


def add_dashboard(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "dashboard",
        help="serve the dashboard on its own, reading the API at --api",
        description="Serve the mlbench dashboard (workers, runs, run details, compare) on its "
        "own web server. It reads and writes only through the REST API at --api, with the "
        "token of --token, MLBENCH_API_TOKEN, or the embedded stack's admin login.",
    )
    parser.add_argument(
        "--api",
        metavar="URL",
        help="the mlbench API root, e.g. http://host:8080/mlbench (default: MLBENCH_API_URL, "
        "else the running stack's)",
    )
    parser.add_argument("--token", help="an Airflow JWT for the API (default: see above)")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8050, help="port to serve on (8050)")
    parser.set_defaults(handler=cmd_dashboard)


def dashboard_factory() -> Callable[..., Any]:
    """The dashboard's ``create_app(api_url, token_provider)``, from the installed
    ``mlbench.dashboard`` entry point (the dashboard package registers it)."""
    found = entry_points(group="mlbench.dashboard", name="app")
    if not found:
        raise CliError("no dashboard is installed (entry point mlbench.dashboard:app)")
    return next(iter(found)).load()


def cmd_dashboard(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn
    from a2wsgi import WSGIMiddleware

    create_app = dashboard_factory()
    url = args.api or api_url(settings)
    try:
        probe = ApiClient(url)
    except ValueError as exc:
        raise CliError(f"--api: {exc}", EXIT_USAGE) from None
    provider = token_provider(settings, url, args.token)
    probe.token = provider()
    with probe:
        probe.get_benchmarks()  # the API answers and takes the token: else one line, exit 1
    app = create_app(url, provider)
    console().print(
        f"mlbench dashboard on http://{args.host}:{args.port}/ (API {probe.base_url}); "
        "Ctrl+C stops it"
    )
    uvicorn.run(WSGIMiddleware(app.server), host=args.host, port=args.port, log_level="warning")
    return EXIT_OK
