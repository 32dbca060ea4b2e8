"""Wall-clock time per training phase, per epoch and in total.

The phases of one training step are those of the original mlbench tracker: ``batch_load``,
``fwd_pass``, ``comp_loss``, ``backprop``, ``agg``, ``opt_step``, ``comp_metrics``; plus
``validation`` (the evaluation pass after each epoch) and ``sync`` (the per-epoch collectives:
reducing the validation sums, the stop decision). The result reports them in three groups:
data loading (``batch_load``), communication (``agg``, ``sync``) and compute (the rest).

The hot loop calls :meth:`PhaseTracker.switch` at each boundary: one clock read and one
addition, so that timing a step costs well under a microsecond per phase. Time between
:meth:`PhaseTracker.pause` and the next switch is charged to no phase.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["GROUPS", "PHASES", "SPLIT_NAMES", "PhaseTracker"]

PHASES = (
    "batch_load",
    "fwd_pass",
    "comp_loss",
    "backprop",
    "agg",
    "opt_step",
    "comp_metrics",
    "validation",
    "sync",
)
GROUPS = {
    "batch_load": "data",
    "fwd_pass": "compute",
    "comp_loss": "compute",
    "backprop": "compute",
    "agg": "communication",
    "opt_step": "compute",
    "comp_metrics": "compute",
    "validation": "compute",
    "sync": "communication",
}
# The result's names of the three groups.
SPLIT_NAMES = {
    "data": "data_loading_s",
    "compute": "compute_s",
    "communication": "communication_s",
}


class PhaseTracker:
    """Accumulates seconds per phase for the current epoch; closed epochs are kept.

    Exactly one phase (or none, when paused) is current; switching charges the time since the
    last switch to the phase being left.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._epoch = dict.fromkeys(PHASES, 0.0)
        self._epochs: list[dict[str, float]] = []
        self._current: str | None = None
        self._since = 0.0
        self._offset = dict.fromkeys(PHASES, 0.0)  # totals carried over (checkpoint resume)

    def switch(self, phase: str) -> None:
        """Make ``phase`` current from now on (one of :data:`PHASES`)."""
        now = self._clock()
        current = self._current
        if current is not None:
            self._epoch[current] += now - self._since
        if phase not in self._epoch:
            raise ValueError(f"unknown phase {phase!r}; valid: {', '.join(PHASES)}")
        self._current, self._since = phase, now

    def pause(self) -> None:
        """Charge the current phase up to now; the time until the next switch counts nowhere."""
        now = self._clock()
        if self._current is not None:
            self._epoch[self._current] += now - self._since
        self._current = None

    @property
    def current(self) -> str | None:
        return self._current

    @contextmanager
    def phase(self, phase: str) -> Iterator[None]:
        """Time the block as ``phase``, then return to the phase that was current before."""
        before = self._current
        self.switch(phase)
        try:
            yield
        finally:
            if before is None:
                self.pause()
            else:
                self.switch(before)

    def _charge(self) -> None:
        if self._current is not None:
            now = self._clock()
            self._epoch[self._current] += now - self._since
            self._since = now

    def end_epoch(self) -> dict[str, float]:
        """Close the current epoch: its seconds per phase (also kept in :attr:`epochs`).

        The current phase stays current; its time so far belongs to the closed epoch.
        """
        self._charge()
        done, self._epoch = self._epoch, dict.fromkeys(PHASES, 0.0)
        self._epochs.append(done)
        return dict(done)

    @property
    def totals(self) -> dict[str, float]:
        """Seconds per phase since the tracker was created (the current epoch included)."""
        self._charge()
        totals = dict(self._offset)
        for epoch in (*self._epochs, self._epoch):
            for name, seconds in epoch.items():
                totals[name] += seconds
        return totals

    @property
    def epochs(self) -> list[dict[str, float]]:
        """Seconds per phase of each closed epoch."""
        return [dict(e) for e in self._epochs]

    def restore(self, totals: dict[str, float]) -> None:
        """Carry ``totals`` (of a run resumed from a checkpoint) into :attr:`totals`."""
        unknown = set(totals) - set(PHASES)
        if unknown:
            raise ValueError(f"unknown phases {sorted(unknown)}; valid: {', '.join(PHASES)}")
        self._offset.update({name: float(seconds) for name, seconds in totals.items()})

    @staticmethod
    def grouped(phases: dict[str, float]) -> dict[str, float]:
        """``phases`` summed into the result's groups (``data_loading_s``, ...)."""
        split = dict.fromkeys(SPLIT_NAMES.values(), 0.0)
        for name, seconds in phases.items():
            split[SPLIT_NAMES[GROUPS[name]]] += seconds
        return split

    def split(self) -> dict[str, float]:
        """The totals in the result's three groups."""
        return self.grouped(self.totals)
