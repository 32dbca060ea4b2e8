"""``mlbench nightly run|report`` and ``mlbench compare``: the nightly suite from the CLI."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from rich import box
from rich.markup import escape
from rich.table import Table

from mlbench_core.api import ApiClient, NotFound
from mlbench_core.api.wire import wire_date
from mlbench_core.cli.common import CliError, connect, console, find_run
from mlbench_core.nightly.compare import METRICS, compare_entry, measure
from mlbench_core.nightly.flow import peak_memory
from mlbench_core.nightly.suite import SuiteError, load_suite
from mlbench_core.progress import EPOCH, VALIDATING, progress
from mlbench_core.settings import Settings

__all__ = ["add_compare", "add_nightly"]

EXIT_OK, EXIT_FAILED = 0, 1
DAG_ID = "mlbench_nightly"


def add_nightly(commands: argparse._SubParsersAction) -> None:
    nightly = commands.add_parser(
        "nightly", help="the nightly suite: start it now, or show a report"
    ).add_subparsers(dest="nightly_command", metavar="ACTION", required=True)
    run = nightly.add_parser("run", help="start the nightly suite now (a DAG run)")
    run.add_argument("--suite", type=Path, help="a suite YAML file (default: the configured)")
    run.add_argument("--wait", action="store_true", help="wait for its end, then show the report")
    run.set_defaults(handler=cmd_nightly_run)
    report = nightly.add_parser("report", help="a night's report (default: the newest)")
    report.add_argument("date", nargs="?", help="YYYY-MM-DD")
    report.add_argument("--json", action="store_true", help="the report as JSON")
    report.set_defaults(handler=cmd_nightly_report)


def add_compare(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "compare",
        help="compare runs: the last one against the others",
        description="The nightly comparison for any runs: the last RUN against the median "
        "and spread of the others (exit 1 on a regression).",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run names, the candidate last")
    parser.set_defaults(handler=cmd_compare)


def _airflow(client: ApiClient) -> tuple[str, dict[str, str]]:
    """The URL of the nightly DAG in Airflow's API, and the headers carrying the client's
    token."""
    headers = {"Authorization": f"Bearer {client.token}"} if client.token else {}
    return f"{client.root_url}/api/v2/dags/{DAG_ID}", headers


def cmd_nightly_run(args: argparse.Namespace, settings: Settings) -> int:
    out = console()
    conf: dict[str, Any] = {}
    if args.suite is not None:
        try:
            text = args.suite.read_text()
        except OSError as exc:
            raise CliError(f"cannot read {args.suite}: {exc.strerror}", 2) from None
        try:
            load_suite(text)
        except SuiteError as exc:
            raise CliError(f"{args.suite}: {exc}", 2) from None
        conf["suite"] = text
    with connect(settings) as client:
        base, headers = _airflow(client)
        body = {"logical_date": wire_date(datetime.now(UTC)), "conf": conf}
        answer = requests.post(f"{base}/dagRuns", json=body, headers=headers, timeout=30)
        if answer.status_code >= 400:
            raise CliError(
                f"Airflow refused to start {DAG_ID} ({answer.status_code}): {answer.text[:300]}"
            )
        dag_run = answer.json()
        out.print(f"started {DAG_ID} run [bold]{escape(dag_run['dag_run_id'])}[/]")
        if not args.wait:
            out.print("see it with: mlbench nightly report")
            return EXIT_OK
        state = dag_run.get("state")
        day = (dag_run.get("logical_date") or body["logical_date"])[:10]
        shown: dict[str, str] = {}
        while state not in ("success", "failed"):
            time.sleep(2)
            got = requests.get(
                f"{base}/dagRuns/{dag_run['dag_run_id']}", headers=headers, timeout=30
            )
            got.raise_for_status()
            state = got.json()["state"]
            _show_entries(client, day, shown, out)
        out.print(f"{DAG_ID} ended: {state}")
        try:
            stored = client.get_nightly_report(day)
        except NotFound:
            raise CliError(f"no report for {day}: the nightly failed before comparing") from None
    _print_report(stored, out)
    return EXIT_OK if state == "success" else EXIT_FAILED


def _show_entries(client: Any, day: str, shown: dict[str, str], out: Any) -> None:
    """A line for each of tonight's runs whose progress changed: which entry runs, and where
    it is (``nightly-<day>-...`` runs, ETA left out so that a line means a change)."""
    prefix = f"nightly-{day.replace('-', '')}-"
    for run in client.get_runs():
        if not str(run.get("name", "")).startswith(prefix):
            continue
        where = progress(run, {})
        if run["state"] == "STARTED":
            marks = client.get_run_metrics(run["id"], metric_filter=EPOCH)
            latest = client.get_run_metrics(run["id"], last_n=1)
            where = progress(run, {**marks, VALIDATING: latest.get(VALIDATING, [])},
                             has_points=bool(latest))  # fmt: skip
        text = f"{run['state']}: {replace(where, eta_s=None).text()}"
        if shown.get(run["name"]) != text:
            shown[run["name"]] = text
            out.print(f"{escape(run['name'])}  {escape(text)}")


def cmd_nightly_report(args: argparse.Namespace, settings: Settings) -> int:
    with connect(settings) as client:
        if args.date:
            try:
                stored = client.get_nightly_report(args.date)
            except NotFound:
                raise CliError(f"no nightly report for {args.date}") from None
        else:
            reports = client.get_nightly_reports(limit=1)
            if not reports:
                raise CliError("no nightly report yet: start one with `mlbench nightly run`")
            stored = reports[0]
    out = console()
    if args.json:
        out.print_json(json.dumps(stored))
    else:
        _print_report(stored, out)
    return EXIT_OK if stored["verdict"] in ("ok", "insufficient-history") else EXIT_FAILED


def _cell(verdict: dict[str, Any]) -> str:
    today = verdict.get("today")
    if today is None:
        return verdict["status"]
    rel = verdict.get("relative")
    change = f" {rel:+.1%}" if rel is not None else ""
    return f"{today:.4g}{change} {verdict['status']}"


def _print_report(stored: dict[str, Any], out: Any) -> None:
    report = stored["report"]
    table = Table(
        title=f"nightly {stored['date']}: {stored['verdict']}", box=box.SIMPLE_HEAD, pad_edge=False
    )
    table.add_column("entry", no_wrap=True)
    table.add_column("verdict")
    for metric in METRICS:
        table.add_column(metric)
    for key, entry in report.get("entries", {}).items():
        cells = [_cell(entry["verdicts"][m]) for m in METRICS]
        table.add_row(key, entry["verdict"], *cells)
    out.print(table)


def cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    if len(args.runs) < 2:
        raise CliError("compare needs at least two runs: the baseline(s), then the candidate", 2)
    with connect(settings) as client:
        values = []
        for name in args.runs:
            run = find_run(client, name)
            if not isinstance(run.get("result"), dict):
                raise CliError(f"run {name} has no result ({run['state']})")
            values.append(measure(run["result"], peak_memory(client, run)))
    verdicts = compare_entry([values[-1]], values[:-1], min_history=1)
    out = console()
    out.print(f"{args.runs[-1]} against {', '.join(args.runs[:-1])}:")
    for verdict in verdicts.values():
        out.print(f"  {escape(verdict.describe())}")
    worse = any(v.status == "regression" for v in verdicts.values())
    return EXIT_FAILED if worse else EXIT_OK
