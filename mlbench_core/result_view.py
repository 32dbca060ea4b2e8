"""A run's result and reproducibility record as rows a person reads (the CLI's tables and
the run page's), the figures that matter first, each with its unit; the raw JSON stays one
click (or ``--json``) away. What each figure means is in ``docs/figures.md``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlbench_core.text import show_number, show_seconds

__all__ = ["FIGURES", "Figure", "record_sections", "result_rows", "show_bytes"]

MIB = 2**20


def show_bytes(value: Any) -> str:
    """``1,234 MiB`` (or bytes when below one MiB); ``-`` when not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return f"{value / MIB:,.0f} MiB" if value >= MIB else f"{int(value):,} bytes"


def _rate(value: Any) -> str:
    return f"{show_number(round(value, 1))} samples/s" if isinstance(value, int | float) else "-"


def _yes(value: Any) -> str:
    return "yes" if value is True else "no" if value is False else "-"


def _goal(goal: Any) -> str:
    if not isinstance(goal, Mapping) or "metric" not in goal:
        return "none (throughput only)"
    sign = "<=" if goal.get("higher_is_better") is False else ">="
    return f"{goal['metric']} {sign} {show_number(goal.get('target'))}"


def _memory(memory: Any) -> str:
    if not isinstance(memory, Mapping) or memory.get("peak_bytes") is None:
        return "-"
    ranks = memory.get("per_rank") or []
    top = memory.get("rank")
    by = ranks[top].get("by") if isinstance(top, int) and 0 <= top < len(ranks) else None
    where = f" (rank {top}{', ' + by if by else ''})" if top is not None else ""
    return show_bytes(memory["peak_bytes"]) + where


def _seconds(value: Any) -> str:
    return show_seconds(value) if isinstance(value, int | float) else "-"


@dataclass(frozen=True)
class Figure:
    key: str  # top-level key of the result
    label: str
    show: Callable[[Any], str]


# The first rows of a training run's result, in this order; other keys follow as they are.
FIGURES: tuple[Figure, ...] = (
    Figure("goal", "goal", _goal),
    Figure("reached", "goal reached", _yes),
    Figure("time_to_target_s", "time to target", _seconds),
    Figure("epochs", "epochs run", show_number),
    Figure("total_time_s", "total time", _seconds),
    Figure("training_s", "training time (rank 0)", _seconds),
    Figure("validation_s", "validation time (rank 0)", _seconds),
    Figure("throughput", "throughput (training steps)", _rate),
    Figure("throughput_overall", "throughput (whole run)", _rate),
    Figure("samples", "samples trained", lambda v: f"{int(v):,}" if v is not None else "-"),
    Figure("memory", "peak memory (largest rank)", _memory),
)
SHOWN_APART = {"rows", "split", "phases", "final"}  # tables of their own, or below


def _flat(value: Any, prefix: str) -> list[tuple[str, str]]:
    if isinstance(value, Mapping):
        out: list[tuple[str, str]] = []
        for key, item in value.items():
            out += _flat(item, f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(value, list):
        if all(isinstance(v, Mapping) for v in value):
            out = []
            for i, item in enumerate(value):
                out += _flat(item, f"{prefix}[{i}]")
            return out
        return [(prefix, ", ".join(show_number(v) for v in value) or "-")]
    if value is None:
        return [(prefix, "-")]
    if isinstance(value, bool):
        return [(prefix, _yes(value))]
    return [(prefix, show_number(value))]


def result_rows(result: Any) -> list[tuple[str, str]]:
    """(label, text) rows of a result: its headline figures, the final metrics, the time
    per phase group, every rank's peak memory, then whatever else it holds."""
    if not isinstance(result, Mapping):
        return [("result", str(result))] if result not in (None, "") else []
    rows: list[tuple[str, str]] = []
    known = {f.key for f in FIGURES}
    training = "rows" not in result
    for figure in FIGURES:
        if figure.key in result or (figure.key == "goal" and training):
            rows.append((figure.label, figure.show(result.get(figure.key))))
    final = result.get("final")
    if isinstance(final, Mapping):
        rows += [(f"final {k}", show_number(v)) for k, v in final.items()]
    split = result.get("split")
    if isinstance(split, Mapping):
        rows += [
            (f"{k.removesuffix('_s').replace('_', ' ')} (rank 0)", _seconds(v))
            for k, v in split.items()
        ]
    memory = result.get("memory")
    if isinstance(memory, Mapping):
        for rank, figures in enumerate(memory.get("per_rank") or []):
            if isinstance(figures, Mapping):
                rows.append((f"peak memory rank {rank}", show_bytes(figures.get("peak_bytes"))))
    for key, value in result.items():
        if key not in known and key not in SHOWN_APART:
            rows += _flat(value, key)
    return rows


def record_sections(record: Any) -> list[tuple[str, list[tuple[str, str]]]]:
    """A reproducibility record as titled sections of (field, text): each object at its top
    (versions, platform, hardware, hyperparameters, data, ...) a section, plain values first
    under "run"."""
    if not isinstance(record, Mapping):
        return []
    plain = [(k, v) for k, v in record.items() if not isinstance(v, Mapping)]
    sections = [("run", [row for k, v in plain for row in _flat(v, k)])] if plain else []
    for key, value in record.items():
        if isinstance(value, Mapping):
            sections.append((key.replace("_", " "), _flat(value, "")))
    return sections
