"""Regression detection: one entry's values today against its history.

The baseline is the median of the history (the last K nightlies, or a pinned set of runs).
The noise is estimated, not assumed: sigma = 1.4826 x the median absolute deviation (MAD, a
robust standard deviation) of the history, or of today's repetitions when they spread more,
and never below a measurement resolution of 0.1 % of the baseline. A change beyond
``k x sigma`` (k = 3) in the bad direction is a regression, in the good direction an
improvement; within it, no change. Fewer than ``min_history`` past values: the verdict says
so instead of guessing.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = [
    "METRICS",
    "Verdict",
    "compare_entry",
    "judge",
    "mad",
    "measure",
]

Status = Literal["ok", "regression", "improvement", "insufficient-history", "no-data"]

# metric -> True when higher is worse
METRICS: dict[str, bool] = {
    "time_to_target_s": True,
    "throughput": False,
    "communication_share": True,
    "peak_memory_bytes": True,
}
K_SIGMA = 3.0
RESOLUTION = 1e-3  # relative: timings and counters are not finer than this
MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution x this = its standard deviation


@dataclass(frozen=True)
class Verdict:
    metric: str
    status: Status
    today: float | None = None
    baseline: float | None = None
    band: float | None = None  # k x sigma, in the metric's unit
    change: float | None = None  # today - baseline
    relative: float | None = None  # change / baseline
    history: int = 0  # past values used
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line, e.g. ``time_to_target_s 12.1 vs 6.0 (+101.7 %, band +-0.4)``."""
        if self.today is None or self.baseline is None:
            return f"{self.metric}: {self.reason or self.status}"
        rel = f"{self.relative:+.1%}" if self.relative is not None else "n/a"
        return (
            f"{self.metric} {self.today:.4g} vs baseline {self.baseline:.4g} ({rel}, "
            f"noise band +-{self.band:.3g}): {self.status}"
        )


def mad(values: Sequence[float]) -> float:
    """The median absolute deviation from the median."""
    center = statistics.median(values)
    return statistics.median(abs(v - center) for v in values)


def _finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def judge(
    metric: str,
    today: Sequence[float | None],
    history: Sequence[float | None],
    *,
    higher_is_worse: bool,
    min_history: int = 3,
    k: float = K_SIGMA,
) -> Verdict:
    """The verdict on ``metric``: today's repetitions against its past values."""
    now, past = _finite(today), _finite(history)
    if not now:
        return Verdict(metric, "no-data", history=len(past), reason="no value today")
    value = statistics.median(now)
    if len(past) < min_history:
        return Verdict(
            metric,
            "insufficient-history",
            today=value,
            history=len(past),
            reason=f"{len(past)} past values, {min_history} needed to estimate the noise",
        )
    baseline = statistics.median(past)
    spread = max(mad(past), mad(now) if len(now) > 1 else 0.0)
    sigma = max(MAD_TO_SIGMA * spread, RESOLUTION * abs(baseline))
    band = k * sigma
    change = value - baseline
    worse = change > band if higher_is_worse else change < -band
    better = change < -band if higher_is_worse else change > band
    status: Status = "regression" if worse else "improvement" if better else "ok"
    return Verdict(
        metric,
        status,
        today=value,
        baseline=baseline,
        band=band,
        change=change,
        relative=change / baseline if baseline else None,
        history=len(past),
    )


def measure(result: Mapping[str, Any] | None, peak_memory: float | None = None) -> dict[str, Any]:
    """The compared values of one run: from its result, and its workers' peak memory."""
    result = result or {}
    split = result.get("split") or {}
    total = sum(v for v in split.values() if isinstance(v, int | float))
    communication = split.get("communication_s")
    share = communication / total if total and communication is not None else None
    reached = result.get("reached")
    return {
        "reached": reached,
        "time_to_target_s": result.get("time_to_target_s") if reached else None,
        "throughput": result.get("throughput"),
        "communication_share": share,
        "peak_memory_bytes": peak_memory,
    }


def compare_entry(
    today: Sequence[Mapping[str, Any]],
    history: Sequence[Mapping[str, Any]],
    *,
    min_history: int = 3,
) -> dict[str, Verdict]:
    """Every metric's verdict: ``today`` and ``history`` are lists of :func:`measure` dicts
    (today's repetitions; past nightlies' values)."""
    verdicts = {
        metric: judge(
            metric,
            [t.get(metric) for t in today],
            [h.get(metric) for h in history],
            higher_is_worse=worse,
            min_history=min_history,
        )
        for metric, worse in METRICS.items()
    }
    # A goal that was reached before and is missed now is the worst time to target of all.
    missed = today and not any(t.get("reached") for t in today)
    used_to = [h for h in history if h.get("reached")]
    if missed and len(used_to) >= min_history:
        verdicts["time_to_target_s"] = Verdict(
            "time_to_target_s",
            "regression",
            history=len(used_to),
            reason="the goal was not reached today; it was in the history",
        )
    return verdicts
