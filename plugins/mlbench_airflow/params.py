"""The ``mlbench_run`` trigger form: one Airflow ``Param`` per field of a run, generated from
the run's one declaration (``mlbench_core.run_fields.form_schema``)."""

from __future__ import annotations

from airflow.sdk import Param

from mlbench_core.run_fields import bounds_text, form_schema

__all__ = ["run_params"]


def run_params() -> dict[str, Param]:
    """Types, bounds, choices, titles, descriptions, defaults and sections of the form.
    A required field (the name) has no null: the form refuses to trigger without it.

    The bounds are RunCreate's own; the deployment's (``MLBENCH_MAX_WORKERS``, the CPUs a
    run may ask for) are the API's to check, when ``prepare`` creates the run, so that a
    DAG parsed before a settings change never refuses what the API accepts."""
    params = {}
    for name, schema in form_schema().items():
        schema = dict(schema)
        default = schema.pop("default")
        description = schema.pop("description", "") + bounds_text(schema)
        params[name] = Param(default, description=description, **schema)
    return params
