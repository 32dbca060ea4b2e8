"""Property-based fuzzing of every operation from the served OpenAPI schema (schemathesis),
as the Airflow admin, with data that fits the schema and data that does not: whatever the
input, the API never answers with a 5xx, answers only statuses its document names, and its
bodies (errors included) match the documented schemas; on SQLite and PostgreSQL."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from mlbench_api.app import create_app

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())
# The admin's token is sent with every case (the handlers are reached through the real
# authentication); the fuzzer does not take it away.
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], with_security_parameters=False
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    positive_data_acceptance,
    negative_data_rejection,
]


@pytest.fixture
def as_admin(store, make_run, admin_token) -> dict[str, str]:  # noqa: ANN001
    """One existing run to collide with; the admin's Authorization header."""
    make_run("existing")
    return {"Authorization": f"Bearer {admin_token}"}


@schema.parametrize()
@settings(
    # The suite runs the same examples every time; MLBENCH_FUZZ_EXAMPLES=300
    # MLBENCH_FUZZ_RANDOM=1 explores further (new examples on each run).
    max_examples=int(os.environ.get("MLBENCH_FUZZ_EXAMPLES", "30")),
    derandomize=not os.environ.get("MLBENCH_FUZZ_RANDOM"),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_answer_is_documented_and_none_is_a_server_error(case, as_admin):
    response = case.call(headers=as_admin)
    case.validate_response(response, checks=CHECKS)
