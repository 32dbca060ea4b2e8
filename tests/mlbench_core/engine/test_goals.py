"""Goals: direction, NaN, and a goal that fires once."""

from __future__ import annotations

from mlbench_core.engine.goals import Goal, GoalWatch, goal_reached

UP = Goal(metric="val_accuracy", target=95.0)
DOWN = Goal(metric="val_perplexity", target=70.0, higher_is_better=False)


def test_goal_reached_respects_the_direction():
    assert goal_reached(UP, 95.0) and not goal_reached(UP, 94.99)
    assert goal_reached(DOWN, 70.0) and not goal_reached(DOWN, 70.1)
    assert not goal_reached(None, 100.0)
    assert not goal_reached(UP, float("nan"))


def test_a_goal_fires_once_and_keeps_the_first_time():
    watch = GoalWatch(DOWN)
    assert not watch.check(90.0, 1, 10.0)
    assert watch.check(69.0, 2, 20.0)
    assert not watch.check(60.0, 3, 30.0)  # better still: no second firing
    assert not watch.check(80.0, 4, 40.0)
    assert (watch.reached, watch.epoch, watch.seconds) == (True, 2, 20.0)


def test_no_goal_never_fires_and_a_restored_goal_stays_reached():
    assert not GoalWatch(None).check(100.0, 1, 1.0)
    watch = GoalWatch(UP)
    watch.restore(3, 12.5)
    assert watch.reached and not watch.check(99.0, 4, 20.0)
    assert watch.seconds == 12.5
