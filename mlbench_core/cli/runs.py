"""``mlbench run | status | download | delete | benchmarks``: runs through the REST API."""

from __future__ import annotations

import argparse
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlbench_core.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    connect,
    console,
    find_run,
    run_duration,
    show_date,
    show_number,
    show_seconds,
    show_state,
)
from mlbench_core.cli.follow import failure, follow, notices, print_result, result_table
from mlbench_core.launch import limits
from mlbench_core.launch.backend import Capabilities
from mlbench_core.settings import Settings

# -- mlbench run -----------------------------------------------------------------------------


def add_run(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "run",
        help="start a run of a benchmark",
        description="Create a run through the API (its DAG run starts the workers).",
    )
    parser.add_argument("name", help="run name: a lower-case DNS label (a-z, 0-9, '-')")
    parser.add_argument(
        "--benchmark", "-b", required=True, help="benchmark id (see `mlbench benchmarks`)"
    )
    parser.add_argument("--workers", "-w", type=int, required=True, help="number of workers")
    parser.add_argument("--cpus", "-c", type=float, default=1.0, help="CPUs per worker (default 1)")
    parser.add_argument(
        "--bandwidth", type=float, metavar="MBPS", help="bandwidth cap per worker in Mbit/s"
    )
    parser.add_argument("--light", action="store_true", help="aim for the light goal")
    parser.add_argument("--aggregation", help="allreduce, ddp or gossip (default: the benchmark's)")
    parser.add_argument(
        "--synthetic", action="store_true", help="random data: throughput only, no goal"
    )
    parser.add_argument(
        "--oversubscribe",
        action="store_true",
        help="run even if the workers ask for more CPUs than the machine has (they get less)",
    )
    parser.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="show progress until the run ends; exit 0 if it FINISHED, 1 otherwise",
    )
    parser.set_defaults(handler=cmd_run)


def check_limits(capabilities: Capabilities, args: argparse.Namespace, out: Console) -> None:
    """Refuse in one line what the backend cannot give; say what is only requested."""
    bandwidth = capabilities.bandwidth
    if args.bandwidth is not None and bandwidth.status == "unavailable":
        raise CliError(
            f"--bandwidth: the {capabilities.backend} backend cannot cap bandwidth here "
            f"({bandwidth.by}); run without it",
            EXIT_USAGE,
        )
    if args.bandwidth is not None and bandwidth.status == "requested":
        out.print(f"note: the bandwidth cap is requested, not verified: {escape(bandwidth.by)}")
    if not capabilities.fractional_cpus and not float(args.cpus).is_integer():
        raise CliError(
            f"--cpus {args.cpus:g}: the {capabilities.backend} backend gives whole CPUs only "
            f"here ({capabilities.cpu.by})",
            EXIT_USAGE,
        )


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    out = console()
    with connect(settings) as client:
        check_limits(Capabilities.model_validate(client.get_backend()), args, out)
        run = client.create_run(
            args.name,
            args.workers,
            benchmark=args.benchmark,
            num_cpus=args.cpus,
            max_bandwidth=args.bandwidth,
            light_target=args.light,
            aggregation=args.aggregation,
            synthetic=args.synthetic,
            oversubscribe=args.oversubscribe,
        )
        out.print(f"created run [bold]{run['name']}[/] (id {run['id']})")
        if not args.follow:
            out.print(run_table(run))
            out.print(f"follow it with: mlbench status {run['name']}")
            return EXIT_OK
        run = follow(client, run, out)
    print_result(run, out)
    if run["state"] == "FINISHED":
        return EXIT_OK
    reason = failure(run)
    raise CliError(f"run {run['name']} ended {run['state']}{': ' + reason if reason else ''}")


# -- mlbench status --------------------------------------------------------------------------


def add_status(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "status", help="list the runs, or show one", description="List the runs, or show one."
    )
    parser.add_argument("name", nargs="?", help="the run to show in detail")
    parser.set_defaults(handler=cmd_status)


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    out = console()
    with connect(settings) as client:
        if args.name:
            run = find_run(client, args.name)
            out.print(run_table(run))
            if reason := failure(run):
                out.print(f"failure: {escape(reason)}")
            if run.get("result") is not None:
                out.print(result_table(run["result"]))
            return EXIT_OK
        runs = client.get_runs()
    if not runs:
        out.print("no runs yet: start one with `mlbench run NAME --benchmark 1a --workers 2`")
        return EXIT_OK
    table = Table(title="runs", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("id", "name", "benchmark", "workers", "limits", "state", "created", "duration"):
        table.add_column(column, no_wrap=column in ("name", "state", "created"))
    for run in runs:
        table.add_row(
            str(run["id"]),
            run["name"],
            what_runs(run),
            str(run["num_workers"]),
            escape(limits.short(run)),
            show_state(run["state"]),
            show_date(run.get("created_at")),
            show_seconds(run_duration(run)),
        )
    out.print(table)
    return EXIT_OK


def what_runs(run: dict[str, Any]) -> str:
    return escape(run.get("benchmark") or run.get("image_name") or "-")


def run_table(run: dict[str, Any]) -> Table:
    """One run in detail."""
    table = Table(title=f"run {run['name']}", show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value")
    rows = [
        ("id", str(run["id"])),
        ("name", run["name"]),
        ("state", show_state(run["state"])),
        ("benchmark", what_runs(run)),
        ("workers", str(run["num_workers"])),
        *((label, escape(text)) for label, text in limits.rows(run)),
        ("goal", "light" if run.get("light_target") else "full"),
        ("backend", f"{run['backend']}{' (GPU)' if run.get('gpu_enabled') else ''}"),
        ("created", show_date(run.get("created_at"))),
        ("started", show_date(run.get("started_at"))),
        ("finished", show_date(run.get("finished_at"))),
        ("duration", show_seconds(run_duration(run))),
        ("DAG run", run.get("job_id") or "-"),
    ]
    if run.get("image_name"):
        rows.insert(4, ("command", escape(run.get("custom_image_command") or "-")))
    rows += [(label, f"[yellow]{escape(text)}[/]") for label, text in notices(run)]
    for field, value in rows:
        table.add_row(field, value)
    return table


# -- mlbench download ------------------------------------------------------------------------


def add_download(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "download",
        help="download a run's metrics as a zip",
        description="Download a run's metrics: one JSON file per series, and result.json.",
    )
    parser.add_argument("name", help="the run")
    parser.add_argument("-o", "--output", metavar="FILE", help="where to write (default NAME.zip)")
    parser.set_defaults(handler=cmd_download)


def cmd_download(args: argparse.Namespace, settings: Settings) -> int:
    target = Path(args.output or f"{args.name}.zip")
    with connect(settings) as client:
        run = find_run(client, args.name)
        content = client.download_run_metrics(run["id"])
    try:
        names = zipfile.ZipFile(io.BytesIO(content)).namelist()
    except zipfile.BadZipFile:
        raise CliError("the API answered something that is not a zip file") from None
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(content)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CliError(f"cannot write {target}: {exc.strerror or exc}") from None
    series = [n for n in names if n != "result.json"]
    console().print(f"wrote {target} ({len(content):,} bytes, {len(series)} series)")
    return EXIT_OK


# -- mlbench delete --------------------------------------------------------------------------


def add_delete(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "delete",
        help="delete a run with its metrics",
        description="Stop the run if it is going, then delete it with its metrics and pods.",
    )
    parser.add_argument("name", help="the run")
    parser.set_defaults(handler=cmd_delete)


def cmd_delete(args: argparse.Namespace, settings: Settings) -> int:
    with connect(settings) as client:
        run = find_run(client, args.name)
        client.delete_run(run["id"])
    console().print(f"deleted run {run['name']} (id {run['id']})")
    return EXIT_OK


# -- mlbench benchmarks ----------------------------------------------------------------------


def add_benchmarks(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "benchmarks", help="list the benchmarks", description="The benchmark registry."
    )
    parser.add_argument("--json", action="store_true", help="print the registry as JSON")
    parser.set_defaults(handler=cmd_benchmarks)


def add_backend(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "backend",
        help="what the launch backend enforces",
        description="Which launch backend runs the workers and what it enforces here.",
    )
    parser.add_argument("--json", action="store_true", help="print it as JSON")
    parser.set_defaults(handler=cmd_backend)


def cmd_backend(args: argparse.Namespace, settings: Settings) -> int:
    with connect(settings) as client:
        answer = client.get_backend()
    out = console()
    if args.json:
        out.print_json(json.dumps(answer))
        return EXIT_OK
    for line in Capabilities.model_validate(answer).lines():
        out.print(escape(line))
    return EXIT_OK


def show_goal(goal: dict[str, Any] | None) -> str:
    if not goal:
        return "-"
    sign = ">=" if goal.get("higher_is_better", True) else "<="
    return f"{goal['metric']} {sign} {show_number(goal['target'])}"


def cmd_benchmarks(args: argparse.Namespace, settings: Settings) -> int:
    with connect(settings) as client:
        benchmarks = client.get_benchmarks()
    out = console()
    if args.json:
        out.print_json(json.dumps(benchmarks))
        return EXIT_OK
    table = Table(title="benchmarks", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("id", no_wrap=True)
    table.add_column("title")
    table.add_column("goal")
    table.add_column("light goal")
    table.add_column("batch/worker", justify="right")
    table.add_column("epochs", justify="right")
    table.add_column("aggregation")
    for spec in benchmarks:
        goal, light = show_goal(spec.get("goal")), show_goal(spec.get("light_goal"))
        batch, epochs = spec.get("batch_size"), spec.get("epochs")
        table.add_row(
            spec["id"],
            spec["title"],
            goal,
            light,
            str(batch) if batch else "-",
            str(epochs) if epochs else "-",
            ", ".join(spec.get("aggregations") or []) or "-",
        )
    out.print(table)
    return EXIT_OK
