"""A bounded, evenly spread sample of a run's training-step times.

The nightly's confirmation compares tonight's step-time distribution with earlier nights'
(Mann-Whitney, Kolmogorov-Smirnov), so a run keeps its step times in its result — but not
all of them: a long run has millions of steps. :class:`StepTimes` keeps every step until it
holds ``capacity``, then every second one of those and of what follows, then every fourth,
and so on: at any moment it holds at most ``capacity`` samples spread evenly over the whole
run (a systematic sample, not the first or last steps only).
"""

from __future__ import annotations

__all__ = ["CAPACITY", "StepTimes"]

CAPACITY = 512


class StepTimes:
    """Step durations in seconds, thinned to at most ``capacity`` evenly spaced ones."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        if capacity < 2:
            raise ValueError("capacity must be at least 2")
        self.capacity = capacity
        self.stride = 1  # keep one step of every ``stride``
        self.seen = 0
        self.kept: list[float] = []

    def add(self, seconds: float) -> None:
        if self.seen % self.stride == 0:
            self.kept.append(seconds)
            if len(self.kept) > self.capacity:
                self.kept = self.kept[::2]
                self.stride *= 2
        self.seen += 1

    def summary(self) -> dict[str, object]:
        """What the result keeps: the samples, how many steps they stand for, the stride."""
        return {"seconds": [round(s, 7) for s in self.kept], "steps": self.seen,
                "stride": self.stride}  # fmt: skip
