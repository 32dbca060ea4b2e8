"""The live charts of workers' resources (CPU, memory, network in and out), one line per
worker, as the Workers page and the run page draw them: a first draw from each worker's
series, then extensions with each worker's new points (rates continue from the last point
drawn, kept in the feed as its tail)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dashboard import figures
from dashboard.live import tails
from dashboard.series import RESOURCES, Series, derive

__all__ = ["charts", "extend", "start"]


def charts(names: Sequence[str], series: Mapping[str, Series]) -> list[Any]:
    """One chart per resource, one line per worker (drawn even without points, so that
    polls can extend them)."""
    out = []
    for resource in RESOURCES:
        traces = [(n, *derive(resource, series.get(n, {}).get(resource.series, []))) for n in names]
        out.append(figures.lines(resource.title, resource.unit, traces))
    return out


def start(
    names: Sequence[str], series: Mapping[str, Series], cursors: Mapping[str, str | None]
) -> dict[str, Any]:
    """The feed of charts just drawn from ``series`` (by worker), polled from ``cursors``."""
    return {
        "pods": list(names),
        "drawn": any(series.get(n) for n in names),
        "cursors": dict(cursors),
        "tails": {n: tails(series.get(n, {})) for n in names},
        "points": 0,
    }


def extend(
    feed: dict[str, Any], new: Mapping[str, tuple[Series, str | None]]
) -> tuple[list[Any], dict[str, Any]]:
    """The charts' ``extendData`` (one per resource) for each worker's new points and next
    cursor (workers without news left out), and the feed moved on."""
    parts: dict[str, list] = {r.key: [] for r in RESOURCES}
    feed = {**feed, "tails": dict(feed["tails"]), "cursors": dict(feed["cursors"])}
    for index, name in enumerate(feed["pods"]):
        if name not in new:
            continue
        points, cursor = new[name]
        before = feed["tails"].get(name, {})
        for resource in RESOURCES:
            xs, ys = derive(resource, points.get(resource.series, []), before.get(resource.series))
            parts[resource.key].append((index, xs, ys))
            feed["points"] += len(xs)
        feed["tails"][name] = {**before, **tails(points)}
        feed["cursors"][name] = cursor
    return [figures.extension(parts[r.key]) for r in RESOURCES], feed
