"""Routing helpers: optional trailing slashes, and request bodies as JSON or form fields."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from copy import deepcopy
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from mlbench_core.api.schemas import JSON_BODY

M = TypeVar("M", bound=BaseModel)

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class SlashRouter(APIRouter):
    """An APIRouter that serves every path with and without its trailing slash.

    Existing mlbench clients call ``/api/runs/`` and ``/api/metrics`` alike; a redirect would
    turn a form POST into a second request, so both spellings are real routes.
    """

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        kwargs["responses"] = {**error_responses(path, kwargs), **(kwargs.get("responses") or {})}
        bare = path.rstrip("/")
        if not bare and not self.prefix:
            super().add_api_route("/", endpoint, **kwargs)
            return
        super().add_api_route(bare, endpoint, **kwargs)
        hidden = {**kwargs, "include_in_schema": False}
        super().add_api_route(bare + "/", endpoint, **hidden)


class ErrorOut(BaseModel):
    """Every error answer: FastAPI's ``detail`` (a text, or a list of field errors for
    422) and, where the API words one, a one-line ``message``."""

    detail: Any = None
    message: str | None = None


# What each status means on every route that can answer it.
_ERRORS = {
    400: "a body that is not what the route reads",
    401: "no token, or an expired, unknown or revoked one",
    403: "not allowed: a worker token outside its run, a finished run's token, or a write "
    "authenticated by cookie from another origin",
    404: "no such run, pod or night",
    409: "a conflict: a name taken, a state change not allowed, a pod of another run, a run "
    "this deployment cannot give (more CPUs than it has, a limit it cannot enforce)",
    415: "a body that is neither JSON nor form fields",
    422: "a field, query parameter or header failed validation (each named in detail)",
    503: "the store or Airflow is unavailable: try again",
}
_WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def error_responses(path: str, route: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of the errors a route can answer: every route 401, 403, 422
    and 503; routes with a path parameter 404; writes 400, 404 (what they name), 409 and
    415."""
    methods = set(route.get("methods") or ())
    codes = {401, 403, 422, 503}
    if "{" in path:
        codes.add(404)
    if methods & _WRITES:
        codes |= {400, 404, 409, 415}
    return {code: {"model": ErrorOut, "description": _ERRORS[code]} for code in sorted(codes)}


@dataclass(frozen=True)
class Body:
    """A request body: parsed JSON (its values taken as typed), or form fields (text,
    stripped of surrounding blanks, read leniently: '' is none)."""

    data: Any
    form: bool = False

    def context(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Validation context: ``extra`` and, for JSON, :data:`JSON_BODY`."""
        return {**(extra or {}), **({} if self.form else JSON_BODY)}


async def read_body(request: Request) -> Body:
    """The request body: parsed JSON, or form fields as a dict of strings; ``{}`` if empty."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in FORM_TYPES:
        form = await request.form()
        fields = {key: value.strip() for key, value in form.items() if isinstance(value, str)}
        return Body(fields, form=True)
    raw = await request.body()
    if not raw.strip():
        return Body({})
    if content_type and content_type != "application/json" and not content_type.endswith("+json"):
        raise HTTPException(
            status_code=415,
            detail=f"unsupported content type {content_type!r}: send JSON or form fields",
        )
    try:
        return Body(json.loads(raw))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body",),
                    "msg": f"invalid JSON: {exc}",
                    "input": None,
                }
            ]
        ) from None


def validate_body(
    model: type[M],
    body: Body,
    context: dict[str, Any] | None = None,
    translate: Callable[[Any], Any] | None = None,
) -> M:
    """``model`` validated from ``body`` (first read by ``translate``, where a route reads
    other clients' bodies); errors become FastAPI's 422 with ``body.<field>``."""
    if not isinstance(body.data, dict):
        raise RequestValidationError(
            [
                {
                    "type": "model_type",
                    "loc": ("body",),
                    "msg": "must be a JSON object",
                    "input": None,
                }
            ]
        )
    try:
        data = translate(body.data) if translate is not None else body.data
        return model.model_validate(data, context=body.context(context))
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        ) from None


def body(
    model: type[M],
    context: Callable[[], dict[str, Any]] | None = None,
    translate: Callable[[Any], Any] | None = None,
) -> Callable[[Request], Awaitable[M]]:
    """A dependency giving the request body (JSON or form) validated as ``model`` (read by
    ``translate`` first, when given)."""

    async def dependency(request: Request) -> M:
        data = await read_body(request)
        return validate_body(model, data, context() if context else None, translate)

    return dependency


def body_schema(
    model: type[BaseModel], schema: dict[str, Any] | None = None, *, required: bool | None = None
) -> dict[str, Any]:
    """``openapi_extra`` documenting a body read by :func:`body` (JSON or form): ``model``'s
    JSON schema, or ``schema`` where the route reads more (or checks more) than the model
    says. An empty body is read as ``{}``, so the body is required only when the model has
    required fields."""
    schema = _inline_refs(deepcopy(schema or model.model_json_schema()))
    if required is None:
        required = bool(model.model_json_schema().get("required"))
    return {
        "requestBody": {
            "required": required,
            # Form fields are read too (the original mlbench clients post forms), but the
            # document describes JSON: a form cannot carry nulls, objects or lists as such.
            "content": {"application/json": {"schema": schema}},
        }
    }


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(deepcopy(defs[ref.removeprefix("#/$defs/")]))
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)
