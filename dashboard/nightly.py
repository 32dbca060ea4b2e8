"""What the nightly page shows of the stored reports: one row per entry, and each entry's
trend over the nights (pure functions, tested without a browser)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["COLUMNS", "entry_rows", "trend"]

# metric -> column title
COLUMNS = {
    "time_to_target_s": "time to target (s)",
    "throughput": "throughput (samples/s)",
    "communication_share": "communication share",
    "peak_memory_bytes": "peak memory (MiB)",
}
_SCALE = {"peak_memory_bytes": 1 / 2**20, "communication_share": 100.0}


def _show(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    value *= _SCALE.get(metric, 1.0)
    if metric == "communication_share":
        return f"{value:.1f} %"
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def cell(metric: str, verdict: Mapping[str, Any]) -> str:
    """``today (+x.x % vs baseline)``, or the status when there is no value."""
    today = verdict.get("today")
    if today is None:
        return verdict.get("reason") or verdict.get("status", "-")
    relative = verdict.get("relative")
    change = f" ({relative:+.1%})" if relative is not None else ""
    return f"{_show(metric, today)}{change}"


def entry_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per entry: its key, verdict, runs, baseline, and per metric the cell text and
    the metric's status (for colouring)."""
    rows = []
    for key, entry in report.get("entries", {}).items():
        verdicts = entry.get("verdicts", {})
        row: dict[str, Any] = {
            "entry": key,
            "verdict": entry.get("verdict", "-"),
            "runs": len(entry.get("runs", [])),
            "failed": entry.get("failed", 0),
            "baseline": entry.get("baseline", "-"),
        }
        for metric in COLUMNS:
            verdict = verdicts.get(metric, {})
            row[metric] = cell(metric, verdict)
            row[f"{metric}_status"] = verdict.get("status", "no-data")
        rows.append(row)
    return rows


def trend(
    reports: Sequence[Mapping[str, Any]], key: str, metric: str = "time_to_target_s"
) -> tuple[list[str], list[float | None]]:
    """The entry's ``metric`` night after night (oldest first): dates and medians."""
    points = []
    for stored in reports:
        entry = stored.get("report", {}).get("entries", {}).get(key)
        if entry is None:
            continue
        value = (entry.get("values") or {}).get(metric)
        points.append((stored["date"], value))
    points.sort()
    return [d for d, _ in points], [v for _, v in points]
