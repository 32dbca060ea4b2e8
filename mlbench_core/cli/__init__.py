"""The ``mlbench`` command: the embedded stack and runs, through the REST API.

Every error is one line on stderr; exit codes: 0 success, 1 failure (no stack, unknown run,
server error, a followed run that did not finish), 2 input refused (bad arguments, or a
request the API rejected: 400, 409, 422), 130 interrupted.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pydantic import ValidationError

from mlbench_core.api import ApiError, ApiUnavailable, Forbidden, Unauthorized
from mlbench_core.cli.cluster_cmds import add_deploy, add_get_dashboard_url
from mlbench_core.cli.common import EXIT_ERROR, EXIT_USAGE, NOT_RUNNING, CliError, error
from mlbench_core.cli.dashboard_cmd import add_dashboard
from mlbench_core.cli.nightly_cmds import add_compare, add_nightly
from mlbench_core.cli.runs import (
    add_backend,
    add_benchmarks,
    add_delete,
    add_download,
    add_follow,
    add_run,
    add_status,
)
from mlbench_core.cli.stack_cmds import add_down, add_up
from mlbench_core.cli.tags import add_tag
from mlbench_core.settings import get_settings

__all__ = ["main"]

EXIT_INTERRUPTED = 130


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line (raised, not printed and exited)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mlbench",
        description="Distributed machine-learning benchmarks on Apache Airflow.",
        epilog="Settings come from MLBENCH_* variables (MLBENCH_HOME, MLBENCH_PORT, "
        "MLBENCH_API_URL, MLBENCH_API_TOKEN, ...). Exit codes: 0 ok, 1 failed, 2 input "
        "refused, 130 interrupted.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_up(commands)
    add_down(commands)
    add_run(commands)
    add_status(commands)
    add_follow(commands)
    add_tag(commands)
    add_download(commands)
    add_delete(commands)
    add_benchmarks(commands)
    add_backend(commands)
    add_dashboard(commands)
    add_nightly(commands)
    add_compare(commands)
    add_deploy(commands)
    add_get_dashboard_url(commands)
    return parser


def _api_error(exc: ApiError) -> CliError:
    if isinstance(exc, ApiUnavailable):
        return CliError(f"{NOT_RUNNING} ({exc.message})")
    if isinstance(exc, Unauthorized | Forbidden):
        return CliError(
            f"the API refused the credentials ({exc.message}): run `mlbench up`, "
            "or set MLBENCH_API_TOKEN"
        )
    if exc.status in (400, 409, 415, 422):
        return CliError(exc.message, EXIT_USAGE)
    if exc.status >= 500:
        return CliError(f"the API failed ({exc.status}): {exc.message}")
    return CliError(f"{exc.message} ({exc.status})")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``mlbench`` command; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except _UsageError as exc:
        error(str(exc))
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    try:
        settings = get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"MLBENCH_{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        error(f"bad settings: {problems}")
        return EXIT_USAGE
    try:
        return args.handler(args, settings)
    except CliError as exc:
        error(exc.message)
        return exc.code
    except ApiError as exc:
        failure = _api_error(exc)
        error(failure.message)
        return failure.code
    except KeyboardInterrupt:
        error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a bug or an unforeseen failure: still one line
        error(f"{type(exc).__name__}: {exc}")
        return EXIT_ERROR
