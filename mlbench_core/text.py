"""Short texts for tables and headings, the same in the dashboard and the CLI: dates (UTC,
to the second), durations (``12.3 s``, ``4m05s``), numbers, a run's result in a line."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

TERMINAL = ("FINISHED", "FAILED", "CANCELLED")


def parse_date(value: Any) -> datetime | None:
    """An API date (ISO 8601, ``Z`` or offset) as an aware datetime; None if it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def show_date(value: Any) -> str:
    """``2026-11-23 04:31:07`` (UTC), or ``-``."""
    parsed = parse_date(value)
    return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if parsed else "-"


def show_seconds(seconds: float | None) -> str:
    """``12.3 s``, ``4m05s``, ``1h02m03s``, or ``-``."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def duration(run: Mapping[str, Any], now: datetime | None = None) -> float | None:
    """Seconds from the run's start to its end (to ``now`` while it goes); None before."""
    started = parse_date(run.get("started_at"))
    if started is None:
        return None
    ended = parse_date(run.get("finished_at"))
    if ended is None:
        if run.get("state") in TERMINAL:
            return None
        ended = now or datetime.now(UTC)
    return max(0.0, (ended - started).total_seconds())


def show_number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e15):
        return str(int(value))
    return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e6 else f"{value:.4f}".rstrip("0")


def result_summary(result: Any) -> str:
    """The run's result in a few words: the goal reached in how long, or why not."""
    if result is None or result == {}:
        return "-"
    if isinstance(result, str):
        line = " ".join(result.split())
        return line if len(line) <= 80 else line[:77] + "..."
    if not isinstance(result, Mapping):
        return str(result)
    if result.get("synthetic") is True:
        throughput = result.get("throughput")
        rate = (
            f": {show_number(throughput)} samples/s" if isinstance(throughput, int | float) else ""
        )
        return f"throughput only{rate}"
    goal = result.get("goal") if isinstance(result.get("goal"), Mapping) else None
    target = f"{goal['metric']} {show_number(goal['target'])}" if goal else "target"
    if result.get("reached") is True:
        return f"{target} reached in {show_seconds(result.get('time_to_target_s'))}"
    if result.get("reached") is False:
        final = result.get("final") if isinstance(result.get("final"), Mapping) else {}
        best = final.get(goal["metric"]) if goal else None
        got = f" (last {show_number(best)})" if isinstance(best, int | float) else ""
        return f"{target} not reached{got}"
    if isinstance(result.get("rows"), list):
        text = f"{len(result['rows'])} measurements in {show_seconds(result.get('total_time_s'))}"
        return text + _against_cap(result)
    if result.get("error"):
        return f"error: {result['error']}"
    return ", ".join(f"{k}={show_number(v)}" for k, v in list(result.items())[:3])


def _against_cap(result: Mapping[str, Any]) -> str:
    """0a: the bus bandwidth at the largest size, next to the cap it ran under."""
    reached = result.get("busbw_at_largest")
    if not isinstance(reached, Mapping) or not reached:
        return ""
    dtype, row = next(iter(reached.items()))
    if not isinstance(row, Mapping) or not isinstance(row.get("busbw_mbit_s"), int | float):
        return ""
    text = f"; bus bandwidth {show_number(row['busbw_mbit_s'])} Mbit/s ({dtype}"
    cap = result.get("bandwidth_cap_mbit_s")
    if isinstance(cap, int | float) and isinstance(row.get("of_cap"), int | float):
        return text + f", cap {show_number(cap)} Mbit/s: {row['of_cap']:.0%} of it)"
    return text + ", no cap)"
