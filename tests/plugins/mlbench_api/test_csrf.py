"""Cross-site request forgery: writes authenticated by the Airflow UI's cookie must come from
this server's pages; bearer clients and MLBENCH_AUTH=none are unaffected."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mlbench_api.csrf import refusal
from tests.plugins.mlbench_api.test_auth import ROUTES, concrete

WRITES = [(method, concrete(path)) for method, path in ROUTES if method != "GET"]
FOREIGN = "http://evil.example"


@pytest.fixture
def browser(airflow_app, admin_token, store):  # noqa: ANN001, ANN201
    """A logged-in browser: the UI's cookie, no Authorization header."""
    with TestClient(airflow_app, base_url="http://testserver/mlbench") as client:
        client.cookies.set("_token", admin_token)
        yield client


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_every_write_with_the_cookie_from_another_site_is_refused(browser, method, path):
    answer = browser.request(method, path, data={"name": "csrf", "num_workers": "1"},
                             headers={"Origin": FOREIGN})  # fmt: skip
    assert answer.status_code == 403, answer.text
    assert "cross-site write refused: origin http://evil.example" in answer.json()["detail"]


def test_nothing_is_written_and_reads_still_work(browser, api):
    run = api.post("/api/runs/", json={"name": "victim", "num_workers": 1}).json()
    forged = [
        browser.post("/api/runs/", data={"name": "csrf", "num_workers": "1"},
                     headers={"Origin": FOREIGN}),
        browser.post(f"/api/runs/{run['id']}/token", headers={"Origin": FOREIGN}),
        browser.post(f"/api/runs/{run['id']}/stop", headers={"Origin": FOREIGN}),
        browser.post(f"/api/runs/{run['id']}/stop"),  # no Origin, no Referer
        browser.post(f"/api/runs/{run['id']}/stop", headers={"Origin": "null"}),
        browser.post(f"/api/runs/{run['id']}/stop",
                     headers={"Referer": f"{FOREIGN}/page.html"}),
    ]  # fmt: skip
    assert [a.status_code for a in forged] == [403] * 6
    assert [r["name"] for r in api.get("/api/runs/").json()] == ["victim"]
    assert api.get(f"/api/runs/{run['id']}").json()["state"] == "INITIALIZED"
    assert browser.get("/api/runs/", headers={"Origin": FOREIGN}).status_code == 200


def test_the_servers_own_pages_and_bearer_clients_may_write(browser, api, admin_token):
    own = browser.post("/api/runs/", json={"name": "own", "num_workers": 1},
                       headers={"Origin": "http://testserver"})  # fmt: skip
    assert own.status_code == 201, own.text
    referred = browser.post("/api/runs/", json={"name": "referred", "num_workers": 1},
                            headers={"Referer": "http://testserver/mlbench/runs"})  # fmt: skip
    assert referred.status_code == 201, referred.text
    bearer = api.post("/api/runs/", json={"name": "bearer", "num_workers": 1},
                      headers={"Origin": FOREIGN})  # fmt: skip
    assert bearer.status_code == 201  # a foreign page cannot set this header


def test_auth_none_is_unaffected(browser, settings_env):
    settings_env.setenv("MLBENCH_AUTH", "none")
    answer = browser.post("/api/runs/", json={"name": "open", "num_workers": 1},
                          headers={"Origin": FOREIGN})  # fmt: skip
    assert answer.status_code == 201


def test_behind_a_proxy_the_forwarded_host_and_trusted_origins_count(settings_env):
    headers = {"cookie": "_token=x", "host": "mlbench:8080", "origin": "https://bench.example"}
    assert "not this server's" in refusal("POST", "http", headers)
    assert refusal("POST", "http", {**headers, "x-forwarded-host": "bench.example",
                                    "x-forwarded-proto": "https"}) is None  # fmt: skip
    settings_env.setenv("MLBENCH_TRUSTED_ORIGINS", '["https://bench.example"]')
    assert refusal("POST", "http", headers) is None
    assert refusal("GET", "http", {**headers, "origin": FOREIGN}) is None
    assert refusal("POST", "http", {**headers, "authorization": "Bearer t",
                                    "origin": FOREIGN}) is None  # fmt: skip
