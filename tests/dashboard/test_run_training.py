"""The run page's training charts against the real API: a point that arrives while the first
draw reads its series one by one (after it read the cursor) is drawn once, not again by the
next poll — the epoch-1 phase bar once showed 21 s for 10.7 s, and "Against epoch" smeared
points on one x after a reload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboard import live
from dashboard.api import Access
from dashboard.pages.run import training
from dashboard.series import SPLIT_GROUPS
from mlbench_core.api import ApiClient


def _metric(run_id: int, name: str, value: float, at: datetime) -> dict:
    return ApiClient.metric(name, value, run_id=run_id, date=at)


def _bar(figure: dict, extensions: list, trace: int, epoch: int) -> float:
    """The height of the stacked bar of ``trace`` at ``epoch``: the figure's and appended."""
    xs, ys = figure["data"][trace]["x"], figure["data"][trace]["y"]
    total = sum(y for x, y in zip(xs, ys, strict=True) if x == epoch)
    for index, more_x, more_y in extensions:
        if index == trace:
            total += sum(y for x, y in zip(more_x, more_y, strict=True) if x == epoch)
    return total


def test_a_point_arriving_during_the_first_draw_is_drawn_once(
    api, api_url, admin_token, monkeypatch
):
    run = api.create_run("racing", 2, benchmark="digits")
    rid = run["id"]
    t0 = datetime.now(UTC) - timedelta(minutes=5)

    def epoch_end(epoch: int, at: datetime) -> list[dict]:
        return [
            _metric(rid, "epoch", epoch, at),
            _metric(rid, "val_accuracy", 80.0 + epoch, at + timedelta(microseconds=1)),
            _metric(rid, "time_compute", 10.7, at + timedelta(microseconds=2)),
            _metric(rid, "time_communication", 2.5, at + timedelta(microseconds=3)),
            _metric(rid, "time_data_loading", 0.5, at + timedelta(microseconds=4)),
        ]

    losses = [
        _metric(rid, "train_loss", 2.0 - s / 30, t0 + timedelta(seconds=s)) for s in range(20)
    ]
    api.post_metrics(losses + epoch_end(1, t0 + timedelta(seconds=10)))
    end = t0 + timedelta(seconds=21.4)
    epoch_two = epoch_end(2, end)  # epoch 2 ends while the page draws
    original = live.fetch_summaries
    arrived = []

    def slow_reads(*args, **kwargs):  # the cursor is read; epoch 1 ends before the series
        if not arrived:
            api.post_metrics(epoch_two)
            arrived.append(True)
        return original(*args, **kwargs)

    monkeypatch.setattr(live, "fetch_summaries", slow_reads)
    access = Access(api_url, admin_token)
    _, names, by_time, by_epoch, bars, feed = training.first_draw(access, rid, None, SPLIT_GROUPS)
    assert arrived and names == ["train_loss", "val_accuracy"]

    # the next poll reads from the older cursor: epoch 1's points come again
    _, timed, epoched, appended, feed = training.poll_draw(access, feed)
    appended = appended or []
    for epoch in (1, 2):
        assert _bar(bars, appended, 0, epoch) == pytest.approx(10.7, rel=0.01)  # not 21.4
        assert _bar(bars, appended, 1, epoch) == pytest.approx(2.5, rel=0.01)

    # epoch 3 goes on: its points spread along the epoch axis instead of piling up at 2
    api.post_metrics([_metric(rid, "train_loss", 1.0 - s / 100, end + timedelta(seconds=s))
                      for s in range(1, 6)])  # fmt: skip
    _, timed, epoched, appended, feed = training.poll_draw(access, feed)
    xs = next(part[1] for part in epoched if part[0] == 0)
    assert len(xs) == 5 and all(b > a for a, b in zip(xs, xs[1:], strict=False))
    assert 2.0 < xs[0] < xs[-1] < 3.0
    assert feed["marks"][-1][1] == 2.0 and len({t for t, _ in feed["marks"]}) == len(feed["marks"])
