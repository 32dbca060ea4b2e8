"""Fixtures for the API tests: clients of Airflow's real app with our plugin at /mlbench."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def api(airflow_app, admin_token, store, settings_env) -> Iterator[TestClient]:  # noqa: ANN001
    """A client of the mlbench API as the Airflow admin, on a clean store, on a machine that
    gives runs 64 CPUs (the tests of admission set their own)."""
    settings_env.setenv("MLBENCH_CPU_CAPACITY", "64")
    with TestClient(
        airflow_app,
        base_url="http://testserver/mlbench",
        headers={"Authorization": f"Bearer {admin_token}"},
    ) as client:
        yield client


@pytest.fixture
def anonymous(airflow_app, store) -> Iterator[TestClient]:  # noqa: ANN001
    """A client with no credentials."""
    with TestClient(airflow_app, base_url="http://testserver/mlbench") as client:
        yield client


@pytest.fixture
def airflow_api(airflow_app, admin_token) -> Iterator[TestClient]:  # noqa: ANN001
    """A client of Airflow's own REST API (/api/v2) as the admin."""
    with TestClient(airflow_app, headers={"Authorization": f"Bearer {admin_token}"}) as client:
        yield client


@pytest.fixture
def make_run(api: TestClient) -> Callable[..., dict]:
    """Create a run through the API; returns its JSON."""

    def make(name: str = "run-a", **fields: object) -> dict:
        body = {"name": name, "num_workers": 2, "benchmark": "1a", **fields}
        response = api.post("/api/runs/", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    return make


@pytest.fixture
def worker_client(airflow_app, api) -> Callable[[int], TestClient]:  # noqa: ANN001
    """A client holding the worker token of a run."""
    clients: list[TestClient] = []

    def make(run_id: int) -> TestClient:
        token = api.post(f"/api/runs/{run_id}/token").json()["token"]
        client = TestClient(
            airflow_app,
            base_url="http://testserver/mlbench",
            headers={"Authorization": f"Bearer {token}"},
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
