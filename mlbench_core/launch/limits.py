"""What held: the limits in force for a run's workers, as the backend recorded them.

The record lives in the run's ``job_metadata["limits"]`` (written when the workers start)
and is what the CLI, the dashboard and the downloads show next to the limits asked for:

``cpu`` and ``bandwidth``: ``{"requested", "status", "by"}`` where ``status`` is
``enforced`` (applied on this machine and in force), ``requested`` (asked of a cluster that
may or may not enforce it: not verified), or ``none`` (nothing was asked); ``network``: how
ranks are connected; ``oversubscribed``: the run asked for more CPUs than the machine has.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ValidationError

__all__ = ["Limit", "Limits", "Status", "rows", "short"]


class Status(StrEnum):
    ENFORCED = "enforced"
    REQUESTED = "requested"
    NONE = "none"


class Limit(BaseModel):
    requested: float | None = None
    status: Status
    by: str


class Limits(BaseModel):
    backend: str
    cpu: Limit
    bandwidth: Limit
    network: str
    oversubscribed: bool = False

    def record(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def uncapped() -> Limit:
    return Limit(status=Status.NONE, by="no cap")


def of(run: dict[str, Any]) -> Limits | None:
    """The limits recorded for ``run`` (None before its workers started)."""
    recorded = (run.get("job_metadata") or {}).get("limits")
    if not isinstance(recorded, dict):
        return None
    try:
        return Limits.model_validate(recorded)
    except ValidationError:
        return None


def _number(value: Any) -> str:
    return f"{float(value):g}"


def _asked(run: dict[str, Any]) -> tuple[str, str]:
    cpus = f"{_number(run.get('num_cpus') or 1)} CPU"
    cap = run.get("max_bandwidth")
    return cpus, "no cap" if cap is None else f"{_number(cap)} Mbit/s"


def short(run: dict[str, Any]) -> str:
    """One line: each limit per worker and whether it held (for tables of runs)."""
    cpus, cap = _asked(run)
    limits = of(run)
    if limits is None:
        text = f"{cpus}, {cap}"
        return text if run.get("state") in ("FINISHED", "FAILED", "CANCELLED") else (
            f"{text} (not applied yet)"
        )  # fmt: skip
    bandwidth = cap if limits.bandwidth.status is Status.NONE else (
        f"{cap} {limits.bandwidth.status}"
    )  # fmt: skip
    text = f"{cpus} {limits.cpu.status}, {bandwidth}"
    return f"{text}, oversubscribed" if limits.oversubscribed else text


def rows(run: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, text) of each limit per worker with how it was enforced (for one run)."""
    cpus, cap = _asked(run)
    limits = of(run)
    if limits is None:
        note = "not applied yet: recorded when the workers start"
        if run.get("state") in ("FINISHED", "FAILED", "CANCELLED"):
            note = "no workers started: not applied"
        return [("CPU limit", f"{cpus} per worker ({note})"), ("bandwidth cap", f"{cap} ({note})")]
    cpu = f"{cpus} per worker: {limits.cpu.status} ({limits.cpu.by})"
    if limits.bandwidth.status is Status.NONE:
        bandwidth = "no cap"
    else:
        bandwidth = f"{cap} per worker: {limits.bandwidth.status} ({limits.bandwidth.by})"
    shown = [("CPU limit", cpu), ("bandwidth cap", bandwidth), ("network", limits.network)]
    if limits.oversubscribed:
        shown.append(("oversubscribed", "yes: the workers ask for more CPUs than the machine has"))
    return shown
