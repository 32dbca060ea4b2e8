"""Fixtures of the CLI tests: ``mlbench`` run in-process against the live API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from mlbench_core.cli import main


@pytest.fixture
def store_url(tmp_path) -> str:
    """The CLI only talks to the API: SQLite is enough (the API tests cover PostgreSQL)."""
    return f"sqlite:///{tmp_path / 'mlbench.db'}"


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli_env(live_server, admin_token, store, settings_env, monkeypatch, tmp_path):
    """MLBENCH_API_URL and MLBENCH_API_TOKEN of the live API, a private MLBENCH_HOME, and
    wide consoles (no wrapped table cells)."""
    monkeypatch.setenv("COLUMNS", "200")
    settings_env.setenv("MLBENCH_HOME", str(tmp_path / "home"))
    settings_env.setenv("MLBENCH_API_URL", f"{live_server}/mlbench")
    settings_env.setenv("MLBENCH_API_TOKEN", admin_token)
    return settings_env


@pytest.fixture
def mlbench(cli_env, capsys) -> Callable[..., Result]:
    """Run ``mlbench ARGS`` in this process; its exit code and captured output."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
