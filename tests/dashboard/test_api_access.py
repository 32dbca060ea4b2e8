"""How the dashboard reaches the API (no browser, no server): URL, token, error messages."""

from __future__ import annotations

import requests
from dash import no_update

from dashboard.api import (
    cookie_token,
    error_message,
    field_errors,
    guarded,
    same_origin_api_url,
)
from dashboard.app import create_app
from mlbench_core.api import ApiUnavailable, Conflict, NotFound, Unauthorized, ValidationFailed


def flask_app():
    return create_app("http://api.invalid/mlbench", prefix="/mlbench/", login_url="/auth/login")


def test_same_origin_api_url_is_the_receiving_server_under_the_mount_point():
    app = flask_app().server
    environ = {"SERVER_NAME": "10.0.0.5", "SERVER_PORT": "8080", "SCRIPT_NAME": "/mlbench"}
    proxied = "https://proxy.example"
    with app.test_request_context("/runs", base_url=proxied, environ_overrides=environ):
        assert same_origin_api_url() == "https://10.0.0.5:8080/mlbench"
    environ = {"SERVER_NAME": "::1", "SERVER_PORT": "9000", "SCRIPT_NAME": "/mlbench"}
    with app.test_request_context("/", environ_overrides=environ):
        assert same_origin_api_url() == "http://[::1]:9000/mlbench"


def test_cookie_token_reads_the_airflow_login_cookie_or_a_bearer_header():
    app = flask_app().server
    with app.test_request_context("/", headers={"Cookie": "_token=jwt-1"}):
        assert cookie_token() == "jwt-1"
    with app.test_request_context("/", headers={"Authorization": "Bearer jwt-2"}):
        assert cookie_token() == "jwt-2"
    with app.test_request_context("/"):
        assert cookie_token() is None


def refused(status: int, body: dict) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = __import__("json").dumps(body).encode()
    response.headers["Content-Type"] = "application/json"
    return response


def test_field_errors_name_the_fields_of_a_422():
    detail = [
        {"type": "value_error", "loc": ["body", "name"], "msg": "must be a lower-case DNS label"},
        {"type": "greater_than", "loc": ["body", "num_workers"], "msg": "must be >= 1"},
        {"type": "value_error", "loc": ["body"], "msg": "backend nccl needs gpu_enabled"},
    ]
    exc = ValidationFailed(422, "name: ...", detail)
    fields, rest = field_errors(exc)
    assert fields == {"name": "must be a lower-case DNS label", "num_workers": "must be >= 1"}
    assert rest == "backend nccl needs gpu_enabled"


def test_a_taken_name_is_an_error_of_the_name_field():
    fields, rest = field_errors(Conflict(409, "run name 'a' is taken"))
    assert fields == {"name": "run name 'a' is taken"} and rest is None


def test_error_messages_tell_what_to_do():
    app = flask_app().server
    with app.test_request_context("/"):
        assert "log in at /auth/login" in error_message(Unauthorized(401, "no token"))
        assert error_message(NotFound(404, "run 9 not found")) == "Not found: run 9 not found"
        assert "does not answer" in error_message(ApiUnavailable("refused"))
        assert "ZeroDivisionError" in error_message(ZeroDivisionError("x"))


def test_guarded_shows_failures_in_the_error_output_and_leaves_the_rest():
    app = flask_app().server

    @guarded(outputs=3, error_at=0)
    def ok():
        return ("a", "b")

    @guarded(outputs=3, error_at=0)
    def broken():
        raise NotFound(404, "run 3 not found")

    with app.test_request_context("/"):
        assert ok() == [None, "a", "b"]
        assert broken() == ["Not found: run 3 not found", no_update, no_update]
