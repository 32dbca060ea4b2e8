"""The nightly suite: which benchmarks, at which worker counts, light or full, how often.

Written as YAML (``$MLBENCH_HOME/nightly.yaml``, or the Airflow Variable
``mlbench_nightly_suite``)::

    history: 7            # K: compare with the median of the last K nightlies
    min_history: 3        # fewer past values: "insufficient history"
    entries:
      - benchmark: digits
        workers: [1, 2]
        light: true           # light_target; any other field of a run too (RunCreate):
        repetitions: 2        # num_cpus, max_bandwidth, aggregation, synthetic, epochs,
                              # steps_per_epoch, seed, settings, ...
    baseline:             # optional: pinned runs instead of the history, per entry key
      digits-2w-light: [run-name-a, run-name-b]
"""

from __future__ import annotations

import copy
import hashlib
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from mlbench_core.api.schemas import RunCreate
from mlbench_core.benchmarks import REGISTRY
from mlbench_core.run_fields import FORM_FIELDS, validation_context

__all__ = [
    "DEFAULT_SUITE",
    "PlannedRun",
    "Suite",
    "SuiteEntry",
    "SuiteError",
    "load_suite",
    "plan",
]


class SuiteError(ValueError):
    """A suite that cannot be used, with the reason."""


# A suite entry sets any field of a run (RunCreate) but these: the name is planned, the
# worker counts are a list, and the suite runs benchmarks, not custom images.
NOT_IN_ENTRIES = ("name", "num_workers", "image_name", "custom_image_command")
RUN_FIELDS = tuple(f for f in FORM_FIELDS if f not in NOT_IN_ENTRIES)


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    workers: list[int] = Field(min_length=1, description="One run per worker count")
    repetitions: int = Field(default=1, ge=1, le=20, description="Runs per worker count")
    label: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        max_length=20,
        description="Tells apart entries that differ only in fields the key does not show",
    )

    @field_validator("workers")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(w < 1 for w in value):
            raise ValueError("worker counts must be at least 1")
        return sorted(set(value))

    @field_validator("benchmark", check_fields=False)
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in REGISTRY:
            raise ValueError(f"unknown benchmark {value!r}; valid: {', '.join(REGISTRY)}")
        return value

    @model_validator(mode="after")
    def _a_valid_run(self) -> _Entry:
        """Each planned run is a body the API accepts: bounds, the benchmark's
        aggregations and settings, as RunCreate checks them."""
        try:
            RunCreate.model_validate(
                {"name": "nightly", "num_workers": max(self.workers), **self.run_fields()},
                context=validation_context(),
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            message = first["msg"].removeprefix("Value error, ")
            raise ValueError(f"{where}: {message}" if where else message) from None
        return self

    def run_fields(self) -> dict[str, Any]:
        """The entry's fields of a run (those set, or with a default)."""
        return {f: getattr(self, f) for f in RUN_FIELDS if getattr(self, f) not in (None, {}, [])}

    def key(self, workers: int) -> str:
        """The entry's name in reports:
        ``<benchmark>-<w>w-<light|full>[-<aggregation>][-synthetic][-<label>]``."""
        kind = "light" if self.light_target else "full"
        parts = [self.benchmark, f"{workers}w", kind, self.aggregation]
        parts += ["synthetic" if self.synthetic else None, self.label]
        return "-".join(p for p in parts if p)


def _entry_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {
        name: (info.annotation, copy.copy(info))
        for name, info in RunCreate.model_fields.items()
        if name in RUN_FIELDS
    }
    fields["benchmark"] = (str, Field(description="A benchmark of the registry"))
    light = copy.copy(RunCreate.model_fields["light_target"])
    light.default = True  # the suite aims at light goals unless told
    light.validation_alias = AliasChoices("light", "light_target")
    fields["light_target"] = (bool, light)
    return fields


SuiteEntry = create_model(
    "SuiteEntry",
    __base__=_Entry,
    __doc__="One benchmark of the suite: any run field, at each worker count.",
    **_entry_fields(),
)


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: list[SuiteEntry] = Field(min_length=1)
    history: int = Field(default=7, ge=1, le=365)
    min_history: int = Field(default=3, ge=1)
    baseline: dict[str, list[str]] = Field(default_factory=dict)

    def keys(self) -> list[str]:
        return [e.key(w) for e in self.entries for w in e.workers]

    @model_validator(mode="after")
    def _keys_unique(self) -> Suite:
        keys = self.keys()
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(
                f"two entries plan the same runs ({', '.join(twice)}): give one a label"
            )
        return self

    @model_validator(mode="after")
    def _baseline_of_entries(self) -> Suite:
        unknown = sorted(set(self.baseline) - set(self.keys()))
        if unknown:
            raise ValueError(
                f"baseline names no entry {', '.join(unknown)}; entries: {', '.join(self.keys())}"
            )
        return self


DEFAULT_SUITE = Suite(entries=[SuiteEntry(benchmark="digits", workers=[1, 2], repetitions=2)])


class PlannedRun(BaseModel):
    """One run of tonight's suite: its name, and the fields it is created with."""

    key: str
    repetition: int
    name: str
    num_workers: int
    fields: dict[str, Any] = Field(description="RunCreate fields besides name and workers")


def load_suite(text: str | None = None, path: Path | None = None) -> Suite:
    """The suite from YAML ``text``, else the file at ``path``, else :data:`DEFAULT_SUITE`;
    :class:`SuiteError` names what is wrong."""
    if text is None and path is not None and path.is_file():
        text = path.read_text()
    if text is None or not text.strip():
        return DEFAULT_SUITE
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SuiteError(f"the suite is not valid YAML: {exc}") from None
    try:
        return Suite.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "suite"
        raise SuiteError(f"suite {where}: {first['msg']}") from None


def plan(suite: Suite, day: date, dag_run_id: str) -> list[PlannedRun]:
    """Tonight's runs, named ``nightly-<yyyymmdd>-<hash>-<key>-r<k>`` (the hash tells apart
    two nightlies of one day) and tagged ``nightly`` and ``nightly-<yyyy-mm-dd>`` (with the
    entry's own tags), in the order they run."""
    tag = hashlib.sha256(dag_run_id.encode()).hexdigest()[:4]
    tags = ["nightly", f"nightly-{day:%Y-%m-%d}"]
    runs = []
    for entry in suite.entries:
        for workers in entry.workers:
            key = entry.key(workers)
            for rep in range(1, entry.repetitions + 1):
                name = f"nightly-{day:%Y%m%d}-{tag}-{key}-r{rep}"[:63].rstrip("-")
                runs.append(
                    PlannedRun(
                        key=key,
                        repetition=rep,
                        name=name,
                        num_workers=workers,
                        fields={
                            **entry.run_fields(),
                            "tags": list(dict.fromkeys([*tags, *entry.tags])),
                        },  # fmt: skip
                    )
                )
    return runs
