"""``mlbench run --follow`` and ``mlbench follow NAME``: the run's phase, epochs, ETA and
latest metrics until it ends.

Progress is :func:`mlbench_core.progress.progress` of the run and its ``epoch`` and
``validation_started`` series; beside it the latest value of ``train_loss`` and of every
``val_*`` series (other series when there are none). On a terminal the view is a live panel;
elsewhere (logs, CI) one line per change.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mlbench_core import progress as where
from mlbench_core.api import ApiClient, ApiUnavailable, ServerError
from mlbench_core.cli.common import CliError, one_line, parse_date, show_number, show_state
from mlbench_core.launch import limits
from mlbench_core.progress import EPOCH, VALIDATING

TERMINAL = ("FINISHED", "FAILED", "CANCELLED")
POLL_S = 1.0  # between two looks at the run
RETRY_FOR_S = 30.0  # how long the API may be unreachable before following gives up
LOOKBACK = timedelta(seconds=60)  # metrics batches may arrive late: look back this far
MAX_SHOWN = 6


class Snapshot:
    """What is known of the run: its latest state and the latest value of each series."""

    def __init__(self, run: dict[str, Any]) -> None:
        self.run = run
        self.latest: dict[str, tuple[datetime, float]] = {}
        self.marks: dict[str, list[dict[str, Any]]] = {EPOCH: [], VALIDATING: []}

    @property
    def newest(self) -> datetime | None:
        return max((date for date, _ in self.latest.values()), default=None)

    def add(self, series: dict[str, list[dict[str, Any]]]) -> bool:
        """Take in fetched points; whether a shown value changed."""
        changed = False
        for name, points in series.items():
            for point in points:
                date = parse_date(point.get("date"))
                if date is None:
                    continue
                known = self.latest.get(name)
                marks = self.marks.get(name)
                if marks is not None and (not marks or point["date"] > marks[-1]["date"]):
                    marks.append(point)
                if known is None or date > known[0]:
                    changed = changed or known is None or known[1] != point["value"]
                    self.latest[name] = (date, float(point["value"]))
        return changed

    def progress(self) -> where.Progress:
        return where.progress(self.run, self.marks, has_points=bool(self.latest))

    def shown(self) -> list[tuple[str, float]]:
        """The series to show, with their latest values."""
        names = sorted(self.latest)
        chosen = [n for n in names if n == "train_loss" or n.startswith("val_")]
        if not chosen:
            chosen = [n for n in names if n not in (EPOCH, VALIDATING)]
        return [(name, self.latest[name][1]) for name in chosen[:MAX_SHOWN]]

    def line(self) -> str:
        """The snapshot as one plain line."""
        return "  ".join(self.parts(eta=True))

    def parts(self, eta: bool) -> list[str]:
        """The line's parts; without the ETA (which changes by itself) when not ``eta``."""
        now = self.progress()
        if not eta:
            now = replace(now, eta_s=None)
        parts = [f"{self.run['name']}: {self.run['state']}", now.text()]
        parts += [f"{name}={show_number(value)}" for name, value in self.shown()]
        return parts


class _LiveView:
    """The terminal view: a progress bar of epochs, the state and a table of metrics."""

    def __init__(self, out: Console, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=out,
        )
        self.task = self.progress.add_task("epochs", total=None)
        self.phase = ""
        self.live = Live(self.render(), console=out, refresh_per_second=4)

    def render(self) -> Group:
        snapshot = self.snapshot
        where = snapshot.progress()
        self.progress.update(
            self.task,
            completed=where.done,
            total=where.epochs,
            description=f"{escape(snapshot.run['name'])} {show_state(snapshot.run['state'])}",
        )
        metrics = Table(show_header=False, box=None, padding=(0, 2))
        metrics.add_row("progress", escape(where.text()))
        for label, text in notices(snapshot.run):
            metrics.add_row(escape(label), f"[yellow]{escape(text)}[/]")
        for name, value in snapshot.shown():
            metrics.add_row(escape(name), show_number(value))
        return Group(self.progress, metrics)

    def update(self) -> None:
        self.live.update(self.render())


def waiting_reason(run: dict[str, Any]) -> str:
    """Why an INITIALIZED run has not started yet (it waits for CPUs), or ''."""
    waiting = (run.get("job_metadata") or {}).get("waiting")
    if run.get("state") != "INITIALIZED" or not isinstance(waiting, dict):
        return ""
    return one_line(waiting.get("reason") or "")


def notices(run: dict[str, Any]) -> list[tuple[str, str]]:
    """What a user must know beside the numbers: why the run waits, and its warnings (an
    oversubscribed machine)."""
    shown = []
    if waiting := waiting_reason(run):
        shown.append(("waiting", waiting))
    warnings = (run.get("job_metadata") or {}).get("warnings") or []
    if isinstance(warnings, str):
        warnings = [warnings]
    shown += [("warning", one_line(text)) for text in warnings if text]
    return shown


def follow(client: ApiClient, run: dict[str, Any], out: Console) -> dict[str, Any]:
    """Show the run's progress until it ends; returns the run as it ended.

    Ctrl-C stops following (the run goes on) and raises ``KeyboardInterrupt``.
    """
    snapshot = Snapshot(run)
    view = _LiveView(out, snapshot) if out.is_terminal else None
    last_line: list[str] = []
    limits_shown = False
    if view:
        view.live.start()
    try:
        try:  # a re-attach's past epochs (for the ETA)
            snapshot.add(client.get_run_metrics(run["id"], metric_filter=EPOCH))
            snapshot.add(client.get_run_metrics(run["id"], metric_filter=VALIDATING, last_n=1))
        except (ApiUnavailable, ServerError):
            pass  # the loop below waits for the API
        failing_since: float | None = None
        while True:
            try:
                snapshot.run = client.get_run(run["id"])
                newest = snapshot.newest
                series = client.get_run_metrics(
                    run["id"], since=newest - LOOKBACK if newest else None, last_n=1
                )
                failing_since = None
            except (ApiUnavailable, ServerError) as exc:
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since > RETRY_FOR_S:
                    raise CliError(f"lost the API while following the run: {exc}") from None
                time.sleep(POLL_S)
                continue
            snapshot.add(series)
            if not limits_shown and limits.of(snapshot.run) is not None:
                limits_shown = True  # once the workers started: what holds
                for label, text in limits.rows(snapshot.run):
                    out.print(f"{escape(label)}: {escape(text)}")
            if view:
                view.update()
            else:
                key = snapshot.parts(eta=False)  # a line per change, not per tick of the ETA
                if key != last_line:
                    out.print(escape(snapshot.line()))
                    last_line = key
            if snapshot.run["state"] in TERMINAL:
                return snapshot.run
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        name = run["name"]
        raise CliError(
            f"stopped following run {name}; it goes on (`mlbench status {name}`)", 130
        ) from None
    finally:
        if view:
            view.live.stop()
