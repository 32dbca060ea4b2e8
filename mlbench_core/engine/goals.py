"""Goals: when a run has reached its quality target (full or light), noticed once."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

__all__ = ["Goal", "GoalWatch", "goal_reached"]


class Goal(BaseModel):
    """A quality target: ``metric`` (a validation metric) reaching ``target``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str
    target: float
    higher_is_better: bool = True


def goal_reached(goal: Goal | None, value: float) -> bool:
    """Whether ``value`` meets ``goal`` (never, without a goal or for NaN)."""
    if goal is None or not math.isfinite(value):
        return False
    return value >= goal.target if goal.higher_is_better else value <= goal.target


class GoalWatch:
    """Watches one goal over the epochs: :meth:`check` is true at the first epoch whose value
    meets it and never again, so that the time to target is taken once."""

    def __init__(self, goal: Goal | None) -> None:
        self.goal = goal
        self.epoch: int | None = None
        self.seconds: float | None = None

    @property
    def reached(self) -> bool:
        return self.epoch is not None

    def check(self, value: float, epoch: int, seconds: float) -> bool:
        """True when ``value`` (of ``epoch``, ``seconds`` into training) first meets the goal."""
        if self.reached or not goal_reached(self.goal, value):
            return False
        self.epoch, self.seconds = epoch, seconds
        return True

    def restore(self, epoch: int | None, seconds: float | None) -> None:
        """The state of a resumed run (goal already reached at ``epoch``, or not)."""
        self.epoch, self.seconds = epoch, seconds
