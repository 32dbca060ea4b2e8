"""Wall-clock time per training phase (data loading, compute, communication), per epoch."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["PHASES", "PhaseTracker"]

PHASES = ("data", "compute", "communication")


class PhaseTracker:
    """Accumulates seconds per phase, in total and for the current epoch.

    Phases may nest: time is charged to the innermost open phase only, so a ``communication``
    phase inside ``compute`` is not counted twice and the phases add up to wall time.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._totals = dict.fromkeys(PHASES, 0.0)
        self._epoch = dict.fromkeys(PHASES, 0.0)
        self._epochs: list[dict[str, float]] = []
        self._open: list[str] = []
        self._since = 0.0  # when the innermost open phase was last (re)started
        # One reusable context manager per phase: entered every step, so it stays cheap.
        self._phases = {name: _Phase(self, name) for name in PHASES}

    def _charge(self) -> None:
        now = self._clock()
        if self._open:
            seconds = now - self._since
            self._totals[self._open[-1]] += seconds
            self._epoch[self._open[-1]] += seconds
        self._since = now

    def phase(self, name: str) -> _Phase:
        """Time the block as phase ``name`` (one of :data:`PHASES`)."""
        try:
            return self._phases[name]
        except KeyError:
            raise ValueError(f"unknown phase {name!r}; valid: {', '.join(PHASES)}") from None

    def end_epoch(self) -> dict[str, float]:
        """Close the current epoch: its seconds per phase (also kept in :attr:`epochs`)."""
        self._charge()
        done, self._epoch = self._epoch, dict.fromkeys(PHASES, 0.0)
        self._epochs.append(done)
        return dict(done)

    @property
    def totals(self) -> dict[str, float]:
        """Seconds per phase since the tracker was created (open phases included)."""
        self._charge()
        return dict(self._totals)

    @property
    def epochs(self) -> list[dict[str, float]]:
        """Seconds per phase of each closed epoch."""
        return [dict(e) for e in self._epochs]

    def split(self) -> dict[str, float]:
        """The totals under the result's names (``data_loading_s``, ...)."""
        totals = self.totals
        return {
            "data_loading_s": totals["data"],
            "compute_s": totals["compute"],
            "communication_s": totals["communication"],
        }


class _Phase:
    """``with tracker.phase(name):`` — a plain object, not a generator, for the hot loop."""

    __slots__ = ("_tracker", "_name")

    def __init__(self, tracker: PhaseTracker, name: str) -> None:
        self._tracker, self._name = tracker, name

    def __enter__(self) -> None:
        tracker = self._tracker
        tracker._charge()
        tracker._open.append(self._name)

    def __exit__(self, *exc: object) -> None:
        tracker = self._tracker
        tracker._charge()
        tracker._open.pop()
