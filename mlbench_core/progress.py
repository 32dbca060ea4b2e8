"""Where a run is, in one line the CLI, the run page and the Runs table all show: its phase
(queued, scheduling, starting workers, training epoch k of n, validating, done) and an ETA
from the epochs so far.

The phase comes from the run (state, the DAG's ``job_metadata``: ``waiting``, ``launched``,
``epochs``) and its series: ``epoch`` (value k posted at the end of epoch k) and
``validation_started`` (value k posted when epoch k's validation begins). The ETA is the mean
epoch time so far times the epochs left, less the time into the current epoch; a run with a
goal may stop sooner, so the ETA is an upper bound there ("at most").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mlbench_core.benchmarks.registry import REGISTRY
from mlbench_core.engine.marks import EPOCH, VALIDATING
from mlbench_core.text import parse_date, show_seconds

__all__ = ["EPOCH", "VALIDATING", "Progress", "progress"]

ENDED = {"FINISHED": "done", "FAILED": "failed", "CANCELLED": "cancelled"}


@dataclass(frozen=True)
class Progress:
    phase: str  # queued, scheduling, starting workers, training, validating, measuring, ...
    epoch: int | None = None  # the epoch under way (1-based), or the last one when ended
    epochs: int | None = None  # planned (the most the run takes)
    done: int = 0  # epochs completed
    eta_s: float | None = None
    bounded: bool = False  # the ETA is an upper bound (the goal may be reached sooner)
    detail: str = ""

    def text(self) -> str:
        """E.g. ``training epoch 3 of 10, at most 1m20s left``."""
        words = self.phase
        of = f" of {self.epochs}" if self.epochs else ""
        if self.phase in ("training", "validating") and self.epoch is not None:
            words += f" epoch {self.epoch}{of}"
        elif self.done:
            words += f" after epoch {self.done}{of}"
        if self.detail:
            words += f" ({self.detail})"
        if self.eta_s is not None:
            words += f", {'at most ' if self.bounded else 'about '}{show_seconds(self.eta_s)} left"
        return words

    @property
    def fraction(self) -> float | None:
        """Epochs done of those planned (for a bar), None when unknown."""
        return min(1.0, self.done / self.epochs) if self.epochs else None


def _points(
    series: Mapping[str, Sequence[Mapping[str, Any]]], name: str
) -> list[tuple[datetime, float]]:
    out = []
    for point in series.get(name) or []:
        date = parse_date(point.get("date"))
        if date is not None and isinstance(point.get("value"), int | float):
            out.append((date, float(point["value"])))
    return sorted(out)


def _planned(run: Mapping[str, Any]) -> int | None:
    planned = (run.get("job_metadata") or {}).get("epochs") or run.get("epochs")
    try:
        return int(planned) if planned else None
    except (TypeError, ValueError):
        return None


def progress(
    run: Mapping[str, Any],
    series: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    has_points: bool | None = None,
    now: datetime | None = None,
) -> Progress:
    """The run's progress from the run and its ``epoch`` and ``validation_started`` series
    (``series`` may hold others; ``has_points``: whether the run has any point at all, by
    default whether ``series`` has one)."""
    now = now or datetime.now(UTC)
    state = run.get("state")
    meta = run.get("job_metadata") or {}
    epochs = _planned(run)
    marks = _points(series, EPOCH)
    done = int(marks[-1][1]) if marks else 0
    if state in ENDED:
        return Progress(ENDED[state], epoch=done or None, epochs=epochs, done=done)
    if state == "INITIALIZED":
        waiting = meta.get("waiting")
        if isinstance(waiting, Mapping):
            return Progress("queued", epochs=epochs, detail=str(waiting.get("reason") or ""))
        return Progress("scheduling", epochs=epochs)
    if has_points is None:
        has_points = any(series.values())
    if not has_points:
        what = "starting workers" if meta.get("launched") else "preparing"
        return Progress(what, epochs=epochs)
    spec = REGISTRY.get(str(run.get("benchmark") or ""))
    if spec is not None and spec.kind == "communication":
        return Progress("measuring")
    if epochs is None:  # a custom image, or no plan recorded: epochs as they come
        return Progress("training", epoch=done + 1, done=done)
    if done >= epochs:
        return Progress("finishing", epoch=done, epochs=epochs, done=done)
    current = done + 1
    last = marks[-1][0] if marks else None
    validating = [
        v for d, v in _points(series, VALIDATING) if v >= current and (last is None or d > last)
    ]
    phase = "validating" if validating else "training"
    eta = None
    started = parse_date(run.get("started_at"))
    per_epoch = None
    if len(marks) >= 2 and marks[-1][1] > marks[0][1]:  # start-up left out
        per_epoch = (marks[-1][0] - marks[0][0]).total_seconds() / (marks[-1][1] - marks[0][1])
    elif marks and started is not None and done:
        per_epoch = (marks[-1][0] - started).total_seconds() / done
    if per_epoch is not None:
        into = (now - marks[-1][0]).total_seconds()
        eta = max(0.0, per_epoch * (epochs - done) - into)
    goal = not run.get("synthetic")
    return Progress(phase, epoch=current, epochs=epochs, done=done, eta_s=eta, bounded=goal)
