"""How the CLI shows a run's outcome: why it failed, its result as a table of figures, and
for an all-reduce run (0a) the report's table, one row per data type and size."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlbench_core import run_fields
from mlbench_core.benchmarks.allreduce_report import Report, is_report, report
from mlbench_core.cli.common import one_line, show_state
from mlbench_core.result_view import result_rows

__all__ = ["failure", "print_result", "report_table", "result_table", "show_outcome"]


def failure(run: dict[str, Any], limit: int = 300) -> str:
    """Why the run failed, as the DAG recorded it (one line, shortened), or ''."""
    reason = one_line((run.get("job_metadata") or {}).get("failure") or "")
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"


def result_table(result: dict[str, Any] | str) -> Table:
    """A run's result: its headline figures first, then the rest (see result_view)."""
    table = Table(title="result", show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value")
    for label, text in result_rows(result):
        table.add_row(escape(label), escape(text))
    return table


def report_table(shown: Report) -> Table:
    """The all-reduce report: one row per data type and message size."""
    cap = f", cap {shown.cap_gbit_s:g} Gbit/s" if shown.cap_gbit_s is not None else ", no cap"
    ranks = f"{shown.world_size} ranks" if shown.world_size else "all-reduce"
    title = f"all-reduce: {ranks}{cap}; latency p10/p50/p90 over the repetitions"
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for column in shown.columns():
        table.add_column(
            escape(column.title), justify="right" if column.numeric else "left", no_wrap=True
        )
    for row in shown.rows:
        table.add_row(*(escape(cell) for cell in shown.cells(row)))
    return table


def show_outcome(run: dict[str, Any], out: Console) -> None:
    """The failure, the result, and for 0a the report (nothing recorded: says so)."""
    if reason := failure(run):
        out.print(f"failure: {escape(reason)}")
    result = run.get("result")
    if result is None:
        out.print("no result recorded")
        return
    if is_report(result):
        out.print(report_table(report(result)))
    out.print(result_table(result))


def print_result(run: dict[str, Any], out: Console) -> None:
    out.print(f"run [bold]{escape(run['name'])}[/] ended {show_state(run['state'])}")
    out.print(f"goal: {run_fields.goal_label(run)}")
    show_outcome(run, out)
