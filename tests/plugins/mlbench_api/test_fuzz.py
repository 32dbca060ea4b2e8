"""Property-based fuzzing of every operation from the served OpenAPI schema (schemathesis):
whatever the input, the API never answers with a 5xx, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from mlbench_api.app import create_app

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())


@pytest.fixture
def open_api(store, settings_env, make_run) -> None:  # noqa: ANN001
    """Auth off (the fuzzer reaches the handlers) and one existing run to collide with."""
    settings_env.setenv("MLBENCH_AUTH", "none")
    make_run("existing")


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_input_gives_a_server_error(case, open_api):
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
