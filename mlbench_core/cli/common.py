"""What every command shares: errors, the console, the API client (URL and login), and
turning values into short text."""

from __future__ import annotations

import sys
from typing import Any

import requests
from rich.console import Console

from mlbench_core.api import ApiClient, ApiError, ApiUnavailable, Forbidden, Unauthorized
from mlbench_core.settings import AuthMode, Settings
from mlbench_core.stack import Stack
from mlbench_core.stack_env import ADMIN_USER, StackPaths, api_root, load_credentials
from mlbench_core.text import duration as run_duration
from mlbench_core.text import parse_date, show_date, show_number, show_seconds

__all__ = [
    "CliError", "connect", "console", "find_run", "parse_date", "run_duration", "show_date",
    "show_number", "show_seconds", "show_state",
]  # fmt: skip

EXIT_OK = 0
EXIT_ERROR = 1  # the command failed: no stack, unknown run, server error, run not FINISHED
EXIT_USAGE = 2  # the command's input was refused: bad arguments, or by the API (400/409/422)

NOT_RUNNING = "the mlbench stack is not running: run `mlbench up`"


class CliError(Exception):
    """An error the CLI reports as one line on stderr, exiting with ``code``."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def one_line(text: object) -> str:
    """``text`` with all whitespace runs (newlines included) collapsed to single spaces."""
    return " ".join(str(text).split())


def error(message: str) -> None:
    """Print one error line on stderr (plain, so that nothing wraps it)."""
    print(f"mlbench: error: {one_line(message)}", file=sys.stderr, flush=True)


def console() -> Console:
    """The console of standard output (looked up at each write, so capture works)."""
    out = Console(highlight=False, soft_wrap=True)
    if not out.is_terminal:  # piped or captured: don't squeeze tables into 80 columns
        out = Console(highlight=False, soft_wrap=True, width=160)
    return out


# -- the API ---------------------------------------------------------------------------------


def api_url(settings: Settings) -> str:
    """Where the API is: MLBENCH_API_URL when set, else the running stack's (stack.json),
    else the embedded stack's on MLBENCH_PORT."""
    if "api_url" in settings.model_fields_set:
        return settings.api_url
    state = Stack(settings).read_state()
    if state and isinstance(state.get("api_url"), str):
        return state["api_url"]
    return f"{api_root(settings)}/mlbench"


def airflow_root(url: str) -> str:
    """The api-server's root from the mlbench API URL (``.../mlbench`` or ``.../mlbench/api``)."""
    root = url.strip().rstrip("/")
    for suffix in ("/api", "/mlbench"):
        if root.endswith(suffix):
            root = root[: -len(suffix)]
    return root


def login(settings: Settings, url: str) -> str:
    """A JWT of the stack's admin (password from ``<home>/credentials.json``)."""
    home = StackPaths(settings.home).credentials
    try:
        credentials = load_credentials(settings.home)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if credentials is None:
        raise CliError(f"{NOT_RUNNING} (no credentials in {home}; or set MLBENCH_API_TOKEN)")
    try:
        client = ApiClient(url)
    except ValueError:
        raise CliError(f"{NOT_RUNNING} (no answer from {airflow_root(url)})") from None
    root = client.root_url
    try:
        with client:
            return client.authenticate(ADMIN_USER, credentials.admin_password)
    except (ApiUnavailable, requests.RequestException):
        raise CliError(f"{NOT_RUNNING} (no answer from {root})") from None
    except (Unauthorized, Forbidden):
        raise CliError(
            f"{root} refused the admin login with the password of {home}: is that its stack?"
        ) from None
    except ApiError as exc:
        raise CliError(f"the admin login at {root}/auth/token failed ({exc.status})") from None


def connect(settings: Settings) -> ApiClient:
    """An API client, authenticated as the settings say (token, stack admin, or none)."""
    url = api_url(settings)
    if settings.auth is AuthMode.NONE:
        token = None
    elif settings.api_token:
        token = settings.api_token
    else:
        token = login(settings, url)
    try:
        return ApiClient(url, token=token)
    except ValueError as exc:
        raise CliError(f"MLBENCH_API_URL: {exc}", EXIT_USAGE) from None


def find_run(client: ApiClient, name: str) -> dict[str, Any]:
    """The run called ``name``; CliError when there is none."""
    for run in client.get_runs():
        if run.get("name") == name:
            return run
    raise CliError(f"no run named {name!r} (`mlbench status` lists the runs)")


# -- text ------------------------------------------------------------------------------------


STATE_STYLE = {
    "INITIALIZED": "cyan",
    "STARTED": "blue",
    "FINISHED": "green",
    "FAILED": "red",
    "CANCELLED": "yellow",
}


def show_state(state: str) -> str:
    style = STATE_STYLE.get(state)
    return f"[{style}]{state}[/]" if style else state
