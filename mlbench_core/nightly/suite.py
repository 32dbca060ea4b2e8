"""The nightly suite: which benchmarks, at which worker counts, light or full, how often.

Written as YAML (``$MLBENCH_HOME/nightly.yaml``, or the Airflow Variable
``mlbench_nightly_suite``)::

    history: 7            # K: compare with the median of the last K nightlies
    min_history: 3        # fewer past values: "insufficient history"
    entries:
      - benchmark: digits
        workers: [1, 2]
        light: true
        repetitions: 2
    baseline:             # optional: pinned runs instead of the history, per entry key
      digits-2w-light: [run-name-a, run-name-b]
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mlbench_core.benchmarks import REGISTRY

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


class SuiteEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    benchmark: str
    workers: list[int] = Field(min_length=1)
    light: bool = True
    repetitions: int = Field(default=1, ge=1, le=20)
    num_cpus: float = Field(default=1.0, gt=0)
    synthetic: bool = False

    @field_validator("benchmark")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in REGISTRY:
            raise ValueError(f"unknown benchmark {value!r}; valid: {', '.join(REGISTRY)}")
        return value

    @field_validator("workers")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(w < 1 for w in value):
            raise ValueError("worker counts must be at least 1")
        return sorted(set(value))

    def key(self, workers: int) -> str:
        """The entry's name in reports: ``<benchmark>-<w>w-<light|full>[-synthetic]``."""
        kind = "light" if self.light else "full"
        return f"{self.benchmark}-{workers}w-{kind}" + ("-synthetic" if self.synthetic else "")


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: list[SuiteEntry] = Field(min_length=1)
    history: int = Field(default=7, ge=1, le=365)
    min_history: int = Field(default=3, ge=1)
    baseline: dict[str, list[str]] = Field(default_factory=dict)

    def keys(self) -> list[str]:
        return [e.key(w) for e in self.entries for w in e.workers]

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
    """One run of tonight's suite."""

    key: str
    repetition: int
    name: str
    benchmark: str
    num_workers: int
    num_cpus: float
    light_target: bool
    synthetic: bool


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
    two nightlies of one day), in the order they run."""
    tag = hashlib.sha256(dag_run_id.encode()).hexdigest()[:4]
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
                        benchmark=entry.benchmark,
                        num_workers=workers,
                        num_cpus=entry.num_cpus,
                        light_target=entry.light,
                        synthetic=entry.synthetic,
                    )
                )
    return runs
