"""Clients of the live API (``live_server``) for the client and writer tests."""

from __future__ import annotations

import pytest

from mlbench_core.api import ApiClient


@pytest.fixture
def client(live_server, admin_token, store):  # noqa: ANN001, ANN201
    """A client of the live API as the Airflow admin, on a clean store."""
    with ApiClient(f"{live_server}/mlbench", token=admin_token) as api:
        yield api


@pytest.fixture
def run(client):  # noqa: ANN001, ANN201
    return client.create_run("run-a", 2, benchmark="1a")


@pytest.fixture
def worker(client, run, live_server):  # noqa: ANN001, ANN201
    """A client holding the worker token of ``run``."""
    with ApiClient(f"{live_server}/mlbench", token=client.issue_worker_token(run["id"])) as api:
        yield api
