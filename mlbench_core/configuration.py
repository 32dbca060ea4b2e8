"""A run's configuration as one comparable key: everything that decides what its numbers
mean (benchmark, goal kind, workers, CPUs, cap, backend, aggregation, data, overrides,
software), and nothing that only repeats it (name, seed, dates). Comparisons group runs by
it and never pool runs whose keys differ; :func:`differing` names what sets runs apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlbench_core.benchmarks.registry import REGISTRY
from mlbench_core.text import show_number

__all__ = ["KEYS", "Key", "configuration", "describe", "differing", "groups", "label"]

Run = Mapping[str, Any]


def _benchmark(run: Run) -> str:
    return str(run.get("benchmark") or run.get("image_name") or "-")


def _goal(run: Run) -> str:
    if run.get("synthetic"):
        return "none"
    return "light" if run.get("light_target") else "full"


def _cpus(run: Run) -> str:
    cpus = run.get("num_cpus")
    return show_number(float(cpus)) if isinstance(cpus, int | float) else "-"


def _cap(run: Run) -> str:
    cap = run.get("max_bandwidth")
    return f"{show_number(float(cap))} Mbit/s" if isinstance(cap, int | float) else "none"


def _backend(run: Run) -> str:
    return f"{run.get('backend') or '-'}{' + GPU' if run.get('gpu_enabled') else ''}"


def _aggregation(run: Run) -> str:
    result = run.get("result") if isinstance(run.get("result"), Mapping) else {}
    spec = REGISTRY.get(_benchmark(run))
    chosen = run.get("aggregation") or result.get("aggregation")
    return str(chosen or (spec.aggregation if spec is not None else "-"))


def _overrides(run: Run) -> str:
    parts = [
        f"{label}={run[field]}"
        for field, label in (("epochs", "epochs"), ("steps_per_epoch", "steps"))
        if run.get(field) is not None
    ]
    settings = run.get("settings") or {}
    parts += [f"{k}={v}" for k, v in sorted(settings.items())]
    if run.get("image_name"):
        parts.append(f"command={run.get('custom_image_command') or '-'}")
    return ", ".join(parts) or "none"


def _software(run: Run) -> str:
    record = run.get("record") if isinstance(run.get("record"), Mapping) else {}
    versions = record.get("versions") if isinstance(record.get("versions"), Mapping) else {}
    shown = [f"{k} {versions[k]}" for k in ("mlbench", "torch") if versions.get(k)]
    return ", ".join(shown) or "unknown"


@dataclass(frozen=True)
class Key:
    name: str
    label: str
    of: Callable[[Run], str]


KEYS: tuple[Key, ...] = (
    Key("benchmark", "benchmark", _benchmark),
    Key("goal", "goal", _goal),
    Key("workers", "workers", lambda run: str(run.get("num_workers", "-"))),
    Key("cpus", "CPUs per worker", _cpus),
    Key("bandwidth", "bandwidth cap", _cap),
    Key("backend", "backend", _backend),
    Key("aggregation", "aggregation", _aggregation),
    Key("data", "data", lambda run: "synthetic" if run.get("synthetic") else "real"),
    Key("overrides", "overrides", _overrides),
    Key("software", "software", _software),
)
LABELS = {key.name: key.label for key in KEYS}


def configuration(run: Run) -> dict[str, str]:
    """The run's configuration, each key's value as text (equal text: equal value)."""
    return {key.name: key.of(run) for key in KEYS}


def differing(runs: Iterable[Run]) -> list[str]:
    """The keys (in :data:`KEYS` order) whose values are not the same for all ``runs``."""
    seen: dict[str, set[str]] = {}
    for run in runs:
        for name, value in configuration(run).items():
            seen.setdefault(name, set()).add(value)
    return [key.name for key in KEYS if len(seen.get(key.name, ())) > 1]


@dataclass(frozen=True)
class Group:
    """Runs that agree on every key but those that vary."""

    fixed: dict[str, str]  # key -> value, for every key that does not vary
    runs: list[Any]


def groups(
    runs: Sequence[Any],
    vary: Iterable[str],
    config_of: Callable[[Any], Mapping[str, str]] = configuration,
) -> list[Group]:
    """``runs`` grouped by every key except ``vary``, largest group first (``config_of``:
    each item's configuration, by default computed from the run)."""
    varying = set(vary)
    out: dict[tuple, Group] = {}
    for run in runs:
        config = config_of(run)
        fixed = {k: v for k, v in config.items() if k not in varying}
        key = tuple(sorted(fixed.items()))
        out.setdefault(key, Group(fixed, [])).runs.append(run)
    return sorted(out.values(), key=lambda g: (-len(g.runs), sorted(g.fixed.items())))


def label(values: Mapping[str, str], keys: Iterable[str] | None = None) -> str:
    """``goal full, CPUs per worker 1`` for ``keys`` of ``values`` (all by default)."""
    names = list(keys) if keys is not None else list(values)
    return ", ".join(f"{LABELS.get(k, k)} {values[k]}" for k in names if k in values)


def describe(group: Group, among: Sequence[Group]) -> str:
    """What sets ``group`` apart from the others ``among`` (its values of the keys on which
    the groups differ), or its benchmark when it is alone."""
    apart = [k for k in group.fixed if len({g.fixed.get(k) for g in among}) > 1]
    return label(group.fixed, apart) if apart else label(group.fixed, ["benchmark"])
