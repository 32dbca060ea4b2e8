"""Fixtures shared by all tests. Importing this module configures a private Airflow."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from harness.environment import configure

TEST_ROOT = configure()

PG_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def _require_service(reason: str) -> None:
    """A missing service fails under CI=true and skips elsewhere."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: required)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Airflow's metadata DB migrated and the DAGs folder serialized into it."""
    from harness.environment import migrate_airflow_db

    migrate_airflow_db()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database on 127.0.0.1:5432 for this test session."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"mlbench_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        _require_service(f"PostgreSQL on 127.0.0.1:5432 is unreachable: {exc.orig}")
    yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """The store's URL, once with SQLite and once with PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mlbench.db'}"
    return request.getfixturevalue("postgres_url")


class SettingsEnv:
    """Sets MLBENCH_* variables for one test; the settings are read again after each change."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch

    def setenv(self, name: str, value: str) -> None:
        from mlbench_core.settings import get_settings

        self.monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    def delenv(self, name: str) -> None:
        from mlbench_core.settings import get_settings

        self.monkeypatch.delenv(name, raising=False)
        get_settings.cache_clear()


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[SettingsEnv]:
    """MLBENCH_* variables for one test (see :class:`SettingsEnv`); the store is reset."""
    from mlbench_api.store import reset_store
    from mlbench_core.settings import get_settings

    get_settings.cache_clear()
    reset_store()
    yield SettingsEnv(monkeypatch)
    monkeypatch.undo()
    reset_store()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def airflow_app(airflow_db):  # noqa: ANN201
    """Airflow's whole API app (its own API, auth, and our plugin mounted at /mlbench)."""
    from airflow.api_fastapi.app import create_app

    return create_app()


@pytest.fixture(scope="session")
def admin_token(airflow_app) -> str:  # noqa: ANN001
    """A JWT of the test admin, from Airflow's own ``POST /auth/token``."""
    from fastapi.testclient import TestClient

    from harness.environment import ADMIN

    with TestClient(airflow_app) as client:
        response = client.post("/auth/token", json={"username": ADMIN[0], "password": ADMIN[1]})
    response.raise_for_status()
    return response.json()["access_token"]


@pytest.fixture
def store(store_url: str, settings_env: pytest.MonkeyPatch):  # noqa: ANN201
    """The process's store on ``store_url`` (SQLite or PostgreSQL), empty."""
    from sqlalchemy import text

    from mlbench_api.store import get_store

    settings_env.setenv("MLBENCH_DATABASE_URL", store_url)
    current = get_store()
    if current.dialect == "postgresql":
        with current.engine.begin() as connection:
            connection.execute(
                text(
                    "TRUNCATE metrics, pods, runs, nightly_reports, write_keys "
                    "RESTART IDENTITY CASCADE"
                )
            )
    return current


@pytest.fixture(scope="session")
def live_server(airflow_app) -> Iterator[str]:  # noqa: ANN001
    """Airflow's API app served by uvicorn on a free loopback port; its base URL."""
    from harness.server import ThreadedServer

    with ThreadedServer(airflow_app) as server:
        yield server.url


@pytest.fixture(autouse=True)
def no_sandbox_left() -> Iterator[None]:
    """After every test: no network namespace, host link or qdisc, cgroup or sandbox record
    that was not there before it (what local runs make must go when they end)."""
    from tests.support.sandboxes import footprint

    before = footprint()
    yield
    left = footprint() - before
    assert not left, f"left behind by the test: {sorted(left)}"


@pytest.fixture(scope="session")
def original_client() -> None:
    """The original mlbench-core 3.0.0 installed by ``make original-client`` (its own
    environment: see :mod:`tests.support.original`)."""
    from tests.support.original import available

    if (reason := available()) is not None:
        _require_service(reason)
