"""Fixtures of the DAG tests: the DAG reaches the live API through its Airflow connection."""

from __future__ import annotations

import json

import pytest

from harness.environment import ADMIN, REPO
from mlbench_core.api import ApiClient


@pytest.fixture
def dag_env(live_server, store, settings_env, monkeypatch):  # noqa: ANN001, ANN201
    """The DAG reaches the API through its Airflow connection, as the admin user."""
    host, port = live_server.removeprefix("http://").split(":")
    connection = {
        "conn_type": "http",
        "host": host,
        "port": int(port),
        "schema": "http",
        "login": ADMIN[0],
        "password": ADMIN[1],
        "extra": {"path": "/mlbench"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_MLBENCH_API", json.dumps(connection))
    settings_env.setenv("MLBENCH_BACKEND", "local")
    return f"{live_server}/mlbench"


@pytest.fixture
def client(dag_env, admin_token) -> ApiClient:  # noqa: ANN001
    return ApiClient(dag_env, token=admin_token)


def load_dag():  # noqa: ANN201
    """The mlbench_run DAG as the DagBag parses it now (with the current MLBENCH_BACKEND)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "mlbench_run.py"))
    assert bag.import_errors == {}
    return bag.dags["mlbench_run"]
