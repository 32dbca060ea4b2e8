"""A run's fields as every entry point offers them, derived from the one declaration
(:class:`~mlbench_core.api.schemas.RunCreate`) and this installation's registry.

The API validates with :func:`validation_context`; the DAG's trigger form, the CLI's options,
the dashboard's New run form and the nightly suite take their fields, types, bounds, choices,
titles and descriptions from :func:`form_schema`, so that none of them can drift.
"""

from __future__ import annotations

import copy
from typing import Any

from mlbench_core.api.schemas import MAX_ID, RunCreate
from mlbench_core.benchmarks import DEFAULT_BENCHMARK, REGISTRY

__all__ = [
    "FORM_FIELDS",
    "INTERNAL_FIELDS",
    "aggregations",
    "bounds_text",
    "choices",
    "dag_conf",
    "field_kind",
    "form_schema",
    "goal_label",
    "validation_context",
]

# Set by the system, never by a person: the API's run id travels in the DAG run's conf.
INTERNAL_FIELDS = ("job_id",)
FORM_FIELDS: tuple[str, ...] = tuple(f for f in RunCreate.model_fields if f not in INTERNAL_FIELDS)
DEFAULT_SHOWN = "benchmark default"  # what a form shows for "none: the benchmark's"


def aggregations() -> list[str]:
    """Every aggregation some benchmark offers."""
    return sorted({name for spec in REGISTRY.values() for name in spec.aggregations})


def validation_context(max_workers: int | None = None) -> dict[str, Any]:
    """What :class:`RunCreate` checks against beyond its own bounds: the registry's
    benchmarks, their aggregations and settings, and the most workers a run may have."""
    return {
        "max_workers": max_workers,
        "benchmarks": REGISTRY.keys(),
        "default_benchmark": DEFAULT_BENCHMARK,
        "aggregations": {spec.id: spec.aggregations for spec in REGISTRY.values()},
        "settings": {spec.id: spec.settings for spec in REGISTRY.values()},
    }


def _flatten(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """One property of pydantic's JSON schema in the plain form forms understand: a type
    list (``["null", "number"]``) instead of ``anyOf``, enums inlined instead of ``$ref``."""
    prop = copy.deepcopy(prop)
    if "$ref" in prop:
        prop = {**defs[prop.pop("$ref").rsplit("/", 1)[-1]], **prop}
    variants = prop.pop("anyOf", None)
    if variants:
        types: list[str] = []
        for variant in variants:
            if "$ref" in variant:
                variant = defs[variant["$ref"].rsplit("/", 1)[-1]]
            types.append(variant["type"])
            prop.update({k: v for k, v in variant.items() if k != "type"})
        prop["type"] = sorted(set(types), key=lambda t: (t != "null", t))
    return prop


# Where a form starts (the API has no default for these).
FORM_DEFAULTS: dict[str, Any] = {
    "num_workers": 2,
    "benchmark": "digits" if "digits" in REGISTRY else DEFAULT_BENCHMARK,
}
# Collapsible groups of the forms; the other fields come first.
SECTIONS: dict[str, str] = {
    "image_name": "Custom image",
    "custom_image_command": "Custom image",
    "backend": "Advanced",
    "gpu_enabled": "Advanced",
    "seed": "Advanced",
    "settings": "Advanced",
    "oversubscribe": "Advanced",
}


def form_schema() -> dict[str, dict[str, Any]]:
    """JSON schema of each field a person sets (:data:`FORM_FIELDS`, in declaration order):
    ``type`` (with ``"null"`` where the field is optional), bounds, ``enum`` (benchmarks,
    aggregations, backends, with ``values_display`` naming null), ``title``,
    ``description``, ``default`` (:data:`FORM_DEFAULTS` where the API has none) and
    ``section`` (:data:`SECTIONS`). The deployment's own bounds (``MLBENCH_MAX_WORKERS``)
    are the API's to check (:func:`validation_context`)."""
    full = RunCreate.model_json_schema()
    defs = full.get("$defs", {})
    schema = {name: _flatten(full["properties"][name], defs) for name in FORM_FIELDS}
    schema["benchmark"]["enum"] = [None, *sorted(REGISTRY)]
    schema["benchmark"]["values_display"] = {"null": f"default benchmark ({DEFAULT_BENCHMARK})"}
    schema["aggregation"]["enum"] = [None, *aggregations()]
    schema["aggregation"]["values_display"] = {"null": DEFAULT_SHOWN}
    schema["settings"]["type"] = "object"
    schema["settings"]["default"] = {}
    for name in FORM_FIELDS:
        schema[name]["default"] = FORM_DEFAULTS.get(name, schema[name].get("default"))
        if name in SECTIONS:
            schema[name]["section"] = SECTIONS[name]
    return schema


def field_kind(schema: dict[str, Any]) -> str:
    """A field's JSON type without its null: ``"integer"`` for ``["null", "integer"]``."""
    types = schema["type"]
    return next(t for t in ([types] if isinstance(types, str) else types) if t != "null")


def bounds_text(schema: dict[str, Any]) -> str:
    """A field's bounds in words, e.g. ``" (>= 1, <= 100000)"`` ('' without bounds; the
    32-bit id limit is left unsaid)."""

    def show(value: float) -> str:
        return str(int(value)) if float(value).is_integer() else f"{value:g}"

    parts = []
    if "minimum" in schema:
        parts.append(f">= {show(schema['minimum'])}")
    if "exclusiveMinimum" in schema:
        parts.append(f"> {show(schema['exclusiveMinimum'])}")
    if "maximum" in schema and schema["maximum"] < MAX_ID:
        parts.append(f"<= {show(schema['maximum'])}")
    return f" ({', '.join(parts)})" if parts else ""


def dag_conf(run: dict[str, Any]) -> dict[str, Any]:
    """The ``mlbench_run`` DAG run's conf for a run the API created: its id (how ``prepare``
    finds it) and its fields (what the DAG run's Params show and validate)."""
    fields = RunCreate.model_fields
    return {
        "run_id": run["id"],
        **{
            name: run[name] if name in run else fields[name].get_default(call_default_factory=True)
            for name in FORM_FIELDS
        },
    }


def goal_label(run: dict[str, Any]) -> str:
    """What the run aims at: the full or the light goal, or nothing (synthetic data)."""
    if run.get("synthetic"):
        return "throughput only"
    return "light goal" if run.get("light_target") else "full goal"


# Fields that depart from the benchmark's reference when set, with their labels.
_CHOICES = (
    ("aggregation", "aggregation"),
    ("epochs", "epochs (at most)"),
    ("steps_per_epoch", "steps per epoch (at most)"),
    ("seed", "seed"),
)


def choices(run: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, text) of the run's own choices where it departs from the benchmark's
    reference configuration (the run page and ``mlbench status`` show them)."""
    rows = [(label, str(run[field])) for field, label in _CHOICES if run.get(field) is not None]
    if run.get("settings"):
        pairs = ", ".join(f"{k}={v}" for k, v in sorted(run["settings"].items()))
        rows.append(("settings", pairs))
    return rows
