"""Wire schemas of the REST API, shared by the server and the clients.

The server validates every request body with these models, so a client that builds its
requests with them gets the same errors before sending.
"""

from __future__ import annotations

import functools
import json
import math
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    computed_field,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

MAX_BATCH = 10_000
MAX_ID = 2**31 - 1  # ids are 32-bit integers in every store
MAX_ROW_ID = 2**63 - 1  # metric and log line ids are 64-bit (BIGINT; SQLite INTEGER)
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
PodPhase = Literal["Pending", "Running", "Succeeded", "Failed", "Unknown"]
POD_PHASES: tuple[str, ...] = get_args(PodPhase)


class RunState(StrEnum):
    INITIALIZED = "INITIALIZED"
    STARTED = "STARTED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in (RunState.FINISHED, RunState.FAILED, RunState.CANCELLED)


class CommBackend(StrEnum):
    GLOO = "gloo"
    NCCL = "nccl"


def utc(value: datetime) -> datetime:
    """The same instant as an aware UTC datetime (naive values are taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


# ``context["wire"]`` of a JSON body: its values are taken as typed, as the OpenAPI
# documents them. Form fields and Python callers get the lenient readings of text: '' is
# none, an object may come as JSON text, a number or a boolean as its spelling.
JSON_BODY = {"wire": "json"}


def typed(info: ValidationInfo) -> bool:
    """Whether the values being validated came as a JSON body."""
    return bool(info.context) and info.context.get("wire") == JSON_BODY["wire"]


def _empty_to_none(value: Any, info: ValidationInfo) -> Any:
    """Form posts send absent optional fields as empty strings."""
    return None if value == "" and not typed(info) else value


def _json_text(value: Any, info: ValidationInfo) -> Any:
    """Form posts send structured fields (labels, settings) as JSON text."""
    if isinstance(value, str) and not typed(info) and value.strip().startswith("{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def split_tags(text: str) -> list[str]:
    """Tags typed as one text (a form box, a command line), separated by commas or blanks."""
    return [tag for tag in re.split(r"[,\s]+", text) if tag]


def _tag_list(value: Any, info: ValidationInfo) -> Any:
    """Form posts and command lines send tags as one text: JSON, or separated by commas or
    blanks."""
    if isinstance(value, str) and not typed(info):
        if value.strip().startswith("["):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
        return split_tags(value)
    return value


def _distinct(tags: list[str]) -> list[str]:
    """Each tag once, in the order given."""
    return list(dict.fromkeys(tags))


# A run's tag: a label to find and group runs by ("baseline", "pr-123", "gpu:a100").
# No blank, comma or control character (C0 and C1). The control characters are named:
# Python's ``\s`` (Airflow's Params, jsonschema) counts \x1c-\x1f as blanks, pydantic's
# (Rust) does not; Rust's counts U+0085 as one, the fuzzer's generator does not.
TAG_PATTERN = r"^[^\s,\x00-\x1f\x7f-\x9f]+$"
MAX_TAGS = 20
Tag = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=TAG_PATTERN)]
Tags = Annotated[list[Tag], BeforeValidator(_tag_list), AfterValidator(_distinct)]
MAX_NOTE = 4000


# The Python types json.loads gives for each JSON Schema type.
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "string": (str,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


def _schema_types(node: dict[str, Any], defs: dict[str, Any]) -> set[str] | None:
    """The JSON types a (sub)schema admits; None when it does not say."""
    if "$ref" in node:
        return _schema_types(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    if "anyOf" in node or "oneOf" in node:
        found: set[str] = set()
        for variant in node.get("anyOf") or node["oneOf"]:
            types = _schema_types(variant, defs)
            if types is None:
                return None
            found |= types
        return found
    if "type" in node:
        return {node["type"]} if isinstance(node["type"], str) else set(node["type"])
    values = node.get("enum", [node["const"]] if "const" in node else None)
    if values is None:
        return None
    return {name for name, kinds in _JSON_TYPES.items() for v in values if type(v) in kinds}


def _field_error(key: str, kind: str, message: str, value: Any) -> InitErrorDetails:
    """A validation error located at field ``key`` (pydantic nests it under its parents)."""
    return InitErrorDetails(type=PydanticCustomError(kind, message), loc=(key,), input=value)


def _refuse_json_types(
    model: type[BaseModel], data: dict[str, Any], documented: dict[str, Any]
) -> None:
    """ValidationError naming each field of ``data`` whose JSON type the schema lacks (an
    integral float is a JSON integer)."""
    wrong = [
        _field_error(key, "json_type", f"must be JSON {names}", value)
        for key, value in data.items()
        for kinds, names in (documented.get(key, (None, "")),)
        if kinds is not None and type(value) not in kinds and not _integral(value, names)
    ]
    if wrong:
        raise ValidationError.from_exception_data(model.__name__, wrong)


def _integral(value: Any, names: str) -> bool:
    """``1.0`` is a JSON integer too."""
    return type(value) is float and value.is_integer() and "integer" in names


@functools.cache
def _documented_types(model: type[BaseModel]) -> dict[str, tuple[tuple[type, ...], str]]:
    """Per field, the Python types of the JSON values the model's schema documents, and
    their JSON names."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    found = {}
    for name, prop in schema.get("properties", {}).items():
        types = _schema_types(prop, defs)
        if types is not None:
            kinds = tuple({t for kind in types for t in _JSON_TYPES[kind]})
            found[name] = (kinds, " or ".join(sorted(types)))
    return found


def _metadata_text(value: Any) -> Any:
    """A metric's metadata as stored: text, or an object as its JSON text."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        raise ValueError("metadata must be text or an object")
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except ValueError:
        raise ValueError("metadata: numbers must be finite") from None


UtcDatetime = Annotated[datetime, BeforeValidator(_empty_to_none)]


def _check_finite(value: Any, where: str) -> None:
    """No non-finite numbers (JSON cannot carry them; Python's json reads NaN), at any
    depth. Strings of free-form objects may hold NUL characters: the objects are stored as
    JSON, where a NUL is escaped; text fields refuse NUL by their pattern (:data:`NO_NUL`)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: numbers must be finite")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for item in value:
            _check_finite(item, where)


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _json_types(cls, data: Any, info: ValidationInfo) -> Any:
        """A JSON body's values have the JSON types the OpenAPI documents (pydantic alone
        would read ``true`` as 1, ``0`` as false and ``"2"`` as 2)."""
        if isinstance(data, dict) and typed(info):
            documented = _documented_types(cls)
            for key, value in data.items():
                entry = documented.get(key)
                if entry is not None and type(value) not in entry[0]:
                    _refuse_json_types(cls, data, documented)
        return data


class _Strict(_Base):
    @model_validator(mode="after")
    def _storable(self) -> _Strict:
        for name in type(self).model_fields:
            _check_finite(getattr(self, name), name)
        return self


NO_NUL = r"^[^\x00]*$"
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"  # no NUL, and not only blanks
# A number as decimal text, short enough to be finite: a JSON number with at most 15
# digits before the point and an exponent of at most 290 (1e305 < the largest double).
NUMBER_TEXT = re.compile(
    r"^-?(0|[1-9][0-9]{0,14})(\.[0-9]+)?([eE][+-]?([0-9]{1,2}|1[0-9]{2}|2[0-8][0-9]|290))?$"
)
_OPTIONAL_METRIC_FIELDS = ("pod_name", "run_id", "date", "metadata")


MetricMetadata = Annotated[
    str | None,
    WithJsonSchema(
        {
            "anyOf": [{"type": "string", "pattern": NO_NUL}, {"type": "object"}, {"type": "null"}],
            "description": "Text, or an object (stored as its JSON text)",
        }
    ),
]


class MetricIn(_Base):
    """One metric: a numeric point of series ``name`` of a pod or of a run.

    Batches carry up to 10,000 of these, so checks run in pydantic-core where they can
    (finite numbers, lengths, no NUL characters) and in two Python hooks per metric.
    """

    model_config = ConfigDict(
        # exactly one owner, as _owner_and_utc checks it
        json_schema_extra={
            "oneOf": [
                {"required": ["pod_name"], "properties": {"pod_name": {"type": "string"}}},
                {"required": ["run_id"], "properties": {"run_id": {"type": "integer"}}},
            ]
        }
    )

    pod_name: str | None = Field(default=None, min_length=1, max_length=253, pattern=NOT_BLANK)
    run_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    name: str = Field(min_length=1, max_length=255, pattern=NOT_BLANK)
    date: datetime | None = None
    value: Annotated[
        float,
        WithJsonSchema(
            {
                "anyOf": [{"type": "number"}, {"type": "string", "pattern": NUMBER_TEXT.pattern}],
                "description": "A number, or its decimal text (as the original mlbench API "
                "documented it)",
            }
        ),
    ]
    cumulative: bool = False
    metadata: MetricMetadata = Field(default=None, pattern=NO_NUL)

    @model_validator(mode="before")
    @classmethod
    def _from_wire(cls, data: Any, info: ValidationInfo) -> Any:
        """Form posts send absent fields as empty strings; metadata objects become JSON text;
        booleans are not values (pydantic would read true as 1.0)."""
        if not isinstance(data, dict):
            return data
        if not typed(info) and any(data.get(key) == "" for key in _OPTIONAL_METRIC_FIELDS):
            data = {k: v for k, v in data.items() if v != "" or k not in _OPTIONAL_METRIC_FIELDS}
        value = data.get("value")
        if isinstance(value, bool):
            raise ValueError("value must be a number, not a boolean")
        if isinstance(value, str) and typed(info) and not NUMBER_TEXT.fullmatch(value):
            error = _field_error("value", "number_text", "must be a number or its text", value)
            raise ValidationError.from_exception_data(cls.__name__, [error])
        if "metadata" in data:
            data["metadata"] = _metadata_text(data["metadata"])
        return data

    @model_validator(mode="after")
    def _owner_and_utc(self) -> MetricIn:
        if (self.pod_name is None) == (self.run_id is None):
            raise ValueError("exactly one of pod_name and run_id is required")
        if self.date is not None:
            offset = self.date.utcoffset()
            if offset is None or offset:  # naive, or not already UTC
                self.date = utc(self.date)
        return self


class TextResultIn(_Base):
    """A run's official result posted as a metric, as the original mlbench's workers do:
    ``name`` ``TaskResult @ <rank>``, ``value`` the sentence of its goal ("80% Top 1
    Validation Accuracy reached in 1234.567 seconds"). It becomes the run's result (see
    :func:`mlbench_core.api.original.parse_result`), not a point of a series."""

    run_id: int = Field(ge=1, le=MAX_ID)
    name: str = Field(pattern=r"^TaskResult @ [0-9]{1,10}$")
    value: str = Field(min_length=1, max_length=4096, pattern=NO_NUL)
    date: UtcDatetime | None = None
    cumulative: bool = False
    metadata: MetricMetadata = Field(default=None, pattern=NO_NUL)

    @model_validator(mode="before")
    @classmethod
    def _from_wire(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and not typed(info):
            data = {k: v for k, v in data.items() if v != "" or k not in ("date", "metadata")}
        if isinstance(data, dict) and "metadata" in data:
            data = {**data, "metadata": _metadata_text(data["metadata"])}
        return data

    @classmethod
    def claims(cls, data: Any) -> bool:
        """Whether a metric body is a text result: a ``TaskResult @ <rank>`` whose value is
        text that is not a number."""
        return (
            isinstance(data, dict)
            and isinstance(data.get("name"), str)
            and data["name"].startswith("TaskResult @ ")
            and isinstance(data.get("value"), str)
            and NUMBER_TEXT.fullmatch(data["value"].strip()) is None
        )


class MetricBatch(_Strict):
    metrics: list[MetricIn] = Field(min_length=1, max_length=MAX_BATCH)


class MetricOut(BaseModel):
    id: int | None = Field(
        description="The point's id; none for a text result (stored as the run's result)"
    )
    pod_name: str | None = None
    run_id: int | None = None
    name: str
    date: datetime
    value: float | str
    cumulative: bool
    metadata: str | None = None


class MetricBatchOut(BaseModel):
    created: int


class Point(BaseModel):
    date: datetime
    value: float


SettingValue = str | int | float | bool
MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit


def cast_setting(
    key: str, value: Any, default: SettingValue, *, as_typed: bool = False
) -> SettingValue:
    """``value`` (a JSON value, or text from a command line) as the type of the benchmark's
    ``default`` for setting ``key``; ValueError naming the key when it is not one. With
    ``as_typed`` (a JSON body) the value must already have the setting's JSON type."""
    kind = type(default).__name__
    bad = ValueError(f"setting {key}: {value!r} is not a valid {kind}")
    if as_typed and type(value) not in SETTING_JSON_TYPES[type(default)]:
        raise bad
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise bad
    if isinstance(value, bool):  # JSON true is not a number
        raise bad
    try:
        if isinstance(default, int):
            number = float(value) if isinstance(value, float) else None
            if number is not None and not number.is_integer():
                raise bad
            return int(value)
        if isinstance(default, float):
            result = float(value)
            if not math.isfinite(result):
                raise bad
            return result
    except (TypeError, ValueError):
        raise bad from None
    if "\x00" in str(value):
        raise ValueError(f"setting {key}: NUL characters are not allowed")
    return str(value)


# The JSON values (as json.loads gives them) a setting of each type takes in a JSON body.
SETTING_JSON_TYPES: dict[type, tuple[type, ...]] = {
    bool: (bool,),
    int: (int, float),  # 3.0 is a JSON integer; 3.5 is refused as one
    float: (int, float),
    str: (str,),
}


class RunCreate(_Strict):
    """Body of ``POST /api/runs/``: the one declaration of a run's fields.

    The client, the CLI's options, the DAG's trigger form, the dashboard's New run form and
    the nightly suite derive their fields from this model (``mlbench_core.run_fields``).

    Validation context (given by the server, see ``run_fields.validation_context``):
    ``max_workers``, ``benchmarks`` (the ids of the registry), ``default_benchmark`` (used
    when neither ``benchmark`` nor ``image_name`` is given), ``aggregations`` and
    ``settings`` (per benchmark, its settable settings with their defaults).
    """

    name: str = Field(
        min_length=1,
        max_length=63,
        title="Run name",
        description="A lower-case DNS label (a-z, 0-9 and '-'), unique",
        json_schema_extra={"pattern": DNS_LABEL.pattern},  # checked by _dns_label
    )
    num_workers: int = Field(
        ge=1, le=MAX_ID, title="Workers", description="Workers (ranks) that train together"
    )
    num_cpus: float = Field(
        default=1.0, gt=0, le=1024, title="CPUs per worker", description="CPUs per worker"
    )
    max_bandwidth: Annotated[float | None, BeforeValidator(_empty_to_none)] = Field(
        default=None,
        gt=0,
        title="Bandwidth cap (Mbit/s)",
        description="Egress/ingress cap per worker in Mbit/s; none = no cap",
    )
    benchmark: Annotated[str | None, BeforeValidator(_empty_to_none)] = Field(
        default=None,
        min_length=1,
        max_length=64,
        title="Benchmark",
        description="A benchmark of the registry; none (and no image) = the default benchmark",
    )
    image_name: Annotated[str | None, BeforeValidator(_empty_to_none)] = Field(
        default=None,
        min_length=1,
        max_length=512,
        pattern=r"^[^\s\x00]+$",  # an image reference has no blank
        title="Custom image",
        description="A worker image of your own instead of a benchmark",
    )
    custom_image_command: Annotated[str | None, BeforeValidator(_empty_to_none)] = Field(
        default=None,
        min_length=1,
        max_length=4096,
        pattern=NO_NUL,
        title="Custom command",
        description="The custom image's command (run by /bin/sh -c)",
    )
    original_command: bool = Field(
        default=False,
        title="Original mlbench command",
        description="The custom command is an original mlbench template (set for the "
        "original client's image_name=custom_image): {run_id}, {rank}, {hosts} and "
        "{backend} are filled per rank, and it is split on spaces and run without a shell",
    )
    backend: CommBackend = Field(
        default=CommBackend.GLOO,
        title="Communication backend",
        description="torch.distributed backend: gloo, or nccl (needs GPUs)",
    )
    gpu_enabled: bool = Field(default=False, title="GPUs", description="One GPU per worker")
    light_target: bool = Field(
        default=False, title="Light target", description="Aim at the benchmark's light goal"
    )
    aggregation: Annotated[str | None, BeforeValidator(_empty_to_none)] = Field(
        default=None,
        min_length=1,
        max_length=32,
        title="Aggregation",
        description="Gradient aggregation (allreduce, ddp, gossip: those the benchmark "
        "offers); none = the benchmark's default",
    )
    synthetic: bool = Field(
        default=False,
        title="Synthetic data",
        description="Random data of the real shapes: throughput only, no goal",
    )
    epochs: Annotated[int | None, BeforeValidator(_empty_to_none)] = Field(
        default=None,
        ge=1,
        le=100_000,
        title="Epochs",
        description="At most this many epochs; none = the benchmark's",
    )
    steps_per_epoch: Annotated[int | None, BeforeValidator(_empty_to_none)] = Field(
        default=None,
        ge=1,
        le=MAX_ID,
        title="Steps per epoch",
        description="At most this many training steps per epoch; none = a whole pass",
    )
    seed: Annotated[int | None, BeforeValidator(_empty_to_none)] = Field(
        default=None,
        ge=0,
        le=MAX_SEED,
        title="Seed",
        description="Shared by all ranks; none = the benchmark's",
    )
    settings: Annotated[dict[str, SettingValue], BeforeValidator(_json_text)] = Field(
        default_factory=dict,
        title="Settings",
        description="Benchmark settings to change (name: value, as `mlbench benchmarks` "
        "lists them); recorded with the result",
    )
    oversubscribe: bool = Field(
        default=False,
        title="Oversubscribe",
        description="Run even though num_workers x num_cpus exceeds the CPUs the machine "
        "gives to runs (local backend): the run waits until it has the machine to itself, "
        "and its workers get less than they ask for",
    )
    tags: Tags = Field(
        default_factory=list,
        max_length=MAX_TAGS,
        title="Tags",
        description="Labels to find and group the run by (e.g. baseline, pr-123): each at "
        "most 40 characters, without blanks, commas or control characters; editable later",
    )
    note: Annotated[str | None, BeforeValidator(_empty_to_none)] = Field(
        default=None,
        max_length=MAX_NOTE,
        pattern=NO_NUL,
        title="Note",
        description="Free text: why the run was made, what to look at; editable later",
        json_schema_extra={"format": "multiline"},  # a text area in the forms
    )
    job_id: Annotated[str | None, BeforeValidator(_empty_to_none)] = Field(
        default=None,
        min_length=1,
        max_length=250,
        pattern=NO_NUL,
        title="DAG run",
        description="An existing mlbench_run DAG run to attach the run to (the DAG, when "
        "triggered from the Airflow UI) instead of triggering a new one",
    )

    @field_validator("name")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not DNS_LABEL.match(value):
            raise ValueError(
                "must be a lower-case DNS label: a-z, 0-9 and '-', "
                "starting and ending with a letter or digit"
            )
        return value

    @field_validator("num_workers")
    @classmethod
    def _max_workers(cls, value: int, info: ValidationInfo) -> int:
        limit = (info.context or {}).get("max_workers")
        if limit is not None and value > limit:
            raise ValueError(f"must be at most {limit} (MLBENCH_MAX_WORKERS)")
        return value

    @field_validator("benchmark")
    @classmethod
    def _known_benchmark(cls, value: str | None, info: ValidationInfo) -> str | None:
        known = (info.context or {}).get("benchmarks")
        if value is not None and known is not None and value not in known:
            raise ValueError(f"unknown benchmark {value!r}; valid: {', '.join(sorted(known))}")
        return value

    @model_validator(mode="after")
    def _what_to_run(self, info: ValidationInfo) -> RunCreate:
        if self.benchmark is None and self.image_name is None:
            # The seed's clients post only name, num_workers, num_cpus and max_bandwidth:
            # like the original mlbench, they get the default benchmark.
            self.benchmark = (info.context or {}).get("default_benchmark")
            if self.benchmark is None:
                raise ValueError("one of benchmark or image_name is required")
        if self.benchmark is not None and self.image_name is not None:
            raise ValueError("benchmark and image_name are mutually exclusive")
        if self.image_name is not None and not self.custom_image_command:
            raise ValueError("custom_image_command is required with image_name")
        if self.original_command and self.image_name is None:
            raise ValueError("original_command needs a custom image (image_name)")
        if self.backend is CommBackend.NCCL and not self.gpu_enabled:
            raise ValueError("backend nccl needs gpu_enabled")
        return self

    @staticmethod
    def _benchmark_of(info: ValidationInfo, field: str) -> str:
        """The benchmark a run will have (given, or the default), for checking ``field``
        (declared after benchmark and image_name) against it."""
        benchmark = info.data.get("benchmark")
        if benchmark is None and info.data.get("image_name") is None:
            benchmark = (info.context or {}).get("default_benchmark")
        if benchmark is None:
            raise ValueError(f"{field} needs a benchmark (not a custom image)")
        return benchmark

    @field_validator("aggregation")
    @classmethod
    def _offered(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        benchmark = cls._benchmark_of(info, "aggregation")
        valid = (info.context or {}).get("aggregations", {}).get(benchmark)
        if valid is not None and value not in valid:
            raise ValueError(
                f"aggregation {value!r} is not offered by benchmark {benchmark}; "
                f"valid: {', '.join(valid) or 'none'}"
            )
        return value

    @field_validator("synthetic")
    @classmethod
    def _of_a_benchmark(cls, value: bool, info: ValidationInfo) -> bool:
        if value:
            cls._benchmark_of(info, "synthetic")
        return value

    @field_validator("settings")
    @classmethod
    def _benchmark_settings(
        cls, value: dict[str, SettingValue], info: ValidationInfo
    ) -> dict[str, SettingValue]:
        """Each setting is one the benchmark has, cast to its type."""
        if not value:
            return value
        benchmark = cls._benchmark_of(info, "settings")
        known = ((info.context or {}).get("settings") or {}).get(benchmark)
        if known is None:
            return value  # no registry to check against (a client without context)
        cast = {}
        for key, item in value.items():
            if key not in known:
                raise ValueError(
                    f"benchmark {benchmark} has no setting {key!r}; valid: "
                    f"{', '.join(sorted(known)) or 'none'}"
                )
            cast[key] = cast_setting(key, item, known[key], as_typed=typed(info))
        return cast


class RunUpdate(_Strict):
    """Body of ``PATCH /api/runs/{id}/``: state, result and job metadata (DAG tasks); tags
    and note (people). A field left out is left as it is."""

    state: RunState | None = None
    result: dict[str, Any] | str | None = None
    job_metadata: dict[str, Any] | None = Field(
        default=None, description="Merged into the run's job_metadata"
    )
    tags: Tags | None = Field(
        default=None, max_length=MAX_TAGS, description="Replace the run's tags ([] clears them)"
    )
    note: str | None = Field(
        default=None,
        max_length=MAX_NOTE,
        pattern=NO_NUL,
        description='Replace the run\'s note ("" clears it)',
    )


class RunOut(BaseModel):
    id: int
    name: str
    state: RunState
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    job_id: str | None = None
    job_metadata: dict[str, Any] = Field(default_factory=dict)
    benchmark: str | None = None
    image_name: str | None = None
    custom_image_command: str | None = None
    original_command: bool = False
    num_workers: int
    num_cpus: float
    max_bandwidth: float | None = None
    backend: CommBackend
    gpu_enabled: bool
    light_target: bool
    aggregation: str | None = None
    synthetic: bool = False
    epochs: int | None = None
    steps_per_epoch: int | None = None
    seed: int | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    oversubscribe: bool = False
    tags: list[str] = Field(default_factory=list)
    note: str | None = None
    result: dict[str, Any] | str | None = None
    record: dict[str, Any] | None = None


class Admission(BaseModel):
    """Answer of ``POST /api/runs/{id}/admit``: whether the run may start now (it is then
    STARTED), else why it waits (also in its ``job_metadata["waiting"]``)."""

    admitted: bool
    reason: str | None = None
    run: RunOut


class RunEnded(BaseModel):
    id: int
    reason: str


class Reconciled(BaseModel):
    """Answer of ``POST /api/runs/reconcile``: the runs ended (their DAG run had ended or
    was gone) and the idempotency keys forgotten."""

    ended: list[RunEnded]
    pruned_keys: int


class LogLineIn(_Base):
    rank: int = Field(ge=0, le=MAX_ID)
    stream: Literal["stdout", "stderr"] = "stdout"
    # kept as written: indentation is part of a traceback
    line: Annotated[str, StringConstraints(strip_whitespace=False)] = Field(
        max_length=65_536, pattern=NO_NUL
    )
    date: datetime | None = None


class LogBatch(_Base):
    """Body of ``POST /api/runs/{id}/logs``: lines in the order they were written."""

    lines: list[LogLineIn] = Field(min_length=1, max_length=MAX_BATCH)


class LogLineOut(BaseModel):
    id: int
    rank: int
    stream: str
    line: str
    date: datetime


class LogPage(BaseModel):
    """Lines after ``after`` (an id); pass ``next`` as ``after`` to resume."""

    lines: list[LogLineOut]
    next: int


class RunResult(_Strict):
    """Body of ``PUT /api/runs/{id}/result``: the run's official result."""

    result: dict[str, Any] | str


class RunRecord(_Strict):
    """Body of ``PUT /api/runs/{id}/record``: how the run was made (versions, hardware,
    world size, seed, hyperparameters, data source), for reproducing it."""

    record: dict[str, Any]


class WorkerToken(BaseModel):
    run_id: int
    token: str


class PodIn(_Strict):
    """Body of ``PUT /api/pods/{name}/``: what a DAG task or worker knows of a pod."""

    run_id: Annotated[int | None, BeforeValidator(_empty_to_none)] = Field(
        default=None, ge=1, le=MAX_ID
    )
    rank: Annotated[int | None, BeforeValidator(_empty_to_none)] = Field(
        default=None, ge=0, le=MAX_ID
    )
    phase: PodPhase = "Pending"
    ip: Annotated[str | None, BeforeValidator(_empty_to_none)] = Field(
        default=None, max_length=64, pattern=NO_NUL
    )
    node: Annotated[str | None, BeforeValidator(_empty_to_none)] = Field(
        default=None, max_length=253, pattern=NO_NUL
    )
    labels: Annotated[dict[str, str] | None, BeforeValidator(_json_text)] = None


class PodOut(BaseModel):
    name: str
    run_id: int | None = None
    rank: int | None = None
    label_map: dict[str, str] = Field(
        default_factory=dict, description="The pod's labels, parsed: name -> value"
    )
    phase: str
    ip: str | None = None
    node: str | None = None
    created_at: datetime
    updated_at: datetime

    @computed_field(
        description="The pod's labels as the text of a dict, as the original mlbench API "
        "gave them (e.g. \"{'app': 'mlbench', 'component': 'worker'}\"): see label_map"
    )
    @property
    def labels(self) -> str:
        return str(self.label_map)


NIGHTLY_DATE = r"^\d{4}-\d{2}-\d{2}$"


# A night's verdict, the worst of its entries' (in this order); "ok" and
# "insufficient-history" are those of reports stored before change-point detection.
NightVerdict = Literal[
    "failed",
    "regression",
    "environment",
    "suspicious",
    "improvement",
    "same",
    "insufficient data",
    "no-data",
    "ok",
    "insufficient-history",
]


class NightlyReportIn(_Strict):
    """Body of ``PUT /api/nightly/{date}/``: the report of one nightly DAG run of that night
    (a retry of the same DAG run replaces it; another nightly of the day is kept beside)."""

    verdict: NightVerdict
    report: dict[str, Any]
    dag_run_id: Annotated[str | None, BeforeValidator(_empty_to_none)] = Field(
        default=None, min_length=1, max_length=250, pattern=NO_NUL
    )


class NightlyReportOut(BaseModel):
    id: int
    date: str
    verdict: str
    dag_run_id: str | None = None
    created_at: datetime
    report: dict[str, Any]
