"""A run's fields as every entry point offers them, derived from the one declaration
(:class:`~mlbench_core.api.schemas.RunCreate`) and this installation's registry.

The API validates with :func:`validation_context`; the DAG's trigger form, the CLI's options,
the dashboard's New run form and the nightly suite take their fields, types, bounds, choices,
titles and descriptions from :func:`form_schema`, so that none of them can drift.
"""

from __future__ import annotations

import copy
from typing import Any

from mlbench_core.api.schemas import MAX_ID, NO_NUL, RunCreate, cast_setting
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
    "request_schema",
    "typed_settings",
    "validation_context",
]

# Set by the system, never by a person: the API's run id travels in the DAG run's conf;
# an original mlbench client's custom command is a template (mlbench_core.api.original).
INTERNAL_FIELDS = ("job_id", "original_command")
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


_SETTING_SCHEMAS: dict[type, dict[str, Any]] = {
    bool: {"type": "boolean"},
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string", "pattern": NO_NUL},
}


def _when(condition: dict[str, Any], then: dict[str, Any]) -> dict[str, Any]:
    return {"if": {"properties": condition, "required": list(condition)}, "then": then}


def _of_benchmark(benchmark: str) -> dict[str, Any]:
    """What a run of ``benchmark`` may set: its aggregations and its settings, typed."""
    spec = REGISTRY[benchmark]
    aggregation = (
        {"anyOf": [{"type": "string", "enum": list(spec.aggregations)}, {"type": "null"}]}
        if spec.aggregations
        else {"type": "null"}
    )
    settings = {
        "type": "object",
        "properties": {k: _SETTING_SCHEMAS[type(v)] for k, v in spec.settings.items()},
        "additionalProperties": False,
    }
    return {"properties": {"aggregation": aggregation, "settings": settings}}


def request_schema(max_workers: int | None = None) -> dict[str, Any]:
    """RunCreate's JSON schema as the API applies it here: the registry's benchmarks and
    aggregations as enums, at most ``max_workers`` workers, and the rules between fields
    (a custom image or a benchmark; a custom image needs its command and sets no
    benchmark's aggregation, settings or synthetic data; nccl needs GPUs; each benchmark
    its own aggregations and typed settings; no benchmark and no image: the default's)."""
    schema = copy.deepcopy(RunCreate.model_json_schema())
    props = schema["properties"]
    props["benchmark"]["anyOf"][0]["enum"] = sorted(REGISTRY)
    props["aggregation"]["anyOf"][0]["enum"] = aggregations()
    if max_workers is not None:
        props["num_workers"]["maximum"] = max_workers
    given = {"type": "string"}
    none = {"type": "null"}
    custom_image = {
        "properties": {
            "benchmark": none,
            "custom_image_command": given,
            "aggregation": none,
            "synthetic": {"const": False},
            "settings": {"maxProperties": 0},
        },
        "required": ["custom_image_command"],
    }
    default = _of_benchmark(DEFAULT_BENCHMARK)
    schema["allOf"] = [
        _when({"image_name": given}, custom_image),
        _when(  # an original mlbench client's command template is a custom image's
            {"original_command": {"const": True}},
            {"properties": {"image_name": given}, "required": ["image_name"]},
        ),
        _when(
            {"backend": {"const": "nccl"}},
            {"properties": {"gpu_enabled": {"const": True}}, "required": ["gpu_enabled"]},
        ),
        {  # neither a benchmark nor an image: the default benchmark
            "if": {"properties": {"benchmark": none, "image_name": none}},
            "then": default,
        },
        *(_when({"benchmark": {"const": b}}, _of_benchmark(b)) for b in sorted(REGISTRY)),
    ]
    return schema


def typed_settings(benchmark: str | None, settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` typed in as text (a form, a command line), as the JSON the API takes:
    each value cast to the type of ``benchmark``'s setting (the default benchmark's when
    none); a key the benchmark lacks or a value that is not of its type stays as given, for
    the API to refuse naming it."""
    known = REGISTRY.get(benchmark or DEFAULT_BENCHMARK)
    typed = {}
    for key, value in settings.items():
        try:
            typed[key] = cast_setting(key, value, known.settings[key]) if known else value
        except (KeyError, ValueError):
            typed[key] = value
    return typed


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
    "tags": "Tags and note",
    "note": "Tags and note",
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
    schema["tags"]["default"] = []
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
