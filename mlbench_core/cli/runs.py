"""``mlbench run | status | download | delete | benchmarks``: runs through the REST API."""

from __future__ import annotations

import argparse
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlbench_core import run_fields
from mlbench_core.api.schemas import RunCreate, RunState
from mlbench_core.benchmarks.allreduce_report import is_report, report
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
from mlbench_core.cli.follow import follow, notices
from mlbench_core.cli.results import failure, print_result, show_outcome
from mlbench_core.launch import limits
from mlbench_core.launch.backend import Capabilities
from mlbench_core.settings import Settings

# -- mlbench run -----------------------------------------------------------------------------


# How the CLI spells each field of a run a person sets (run_fields.FORM_FIELDS but the
# name, which is positional); types, choices, bounds and help come from RunCreate.
FLAGS: dict[str, tuple[str, ...]] = {
    "benchmark": ("--benchmark", "-b"),
    "num_workers": ("--workers", "-w"),
    "num_cpus": ("--cpus", "-c"),
    "max_bandwidth": ("--bandwidth",),
    "image_name": ("--image",),
    "custom_image_command": ("--command",),
    "backend": ("--backend",),
    "gpu_enabled": ("--gpu",),
    "light_target": ("--light",),
    "aggregation": ("--aggregation",),
    "synthetic": ("--synthetic",),
    "epochs": ("--epochs",),
    "steps_per_epoch": ("--steps",),
    "seed": ("--seed",),
    "settings": ("--set",),
    "oversubscribe": ("--oversubscribe",),
    "tags": ("--tag",),
    "note": ("--note",),
}
_TYPES = {"integer": int, "number": float, "string": str}


def _add_field(parser: argparse.ArgumentParser, field: str, schema: dict[str, Any]) -> None:
    """One option of ``mlbench run``, as RunCreate declares the field."""
    flags = FLAGS[field]
    text = schema.get("description", "").replace("%", "%%")
    kind = run_fields.field_kind(schema)
    if kind == "boolean":
        parser.add_argument(*flags, dest=field, action="store_true", help=text)
    elif kind == "array":
        parser.add_argument(
            *flags, dest=field, action="append", default=[], metavar=flags[0].lstrip("-").upper(),
            help=f"{text}; repeatable",
        )  # fmt: skip
    elif kind == "object":
        parser.add_argument(
            *flags, dest=field, action="append", default=[], metavar="KEY=VALUE",
            help=f"{text}; repeatable",
        )  # fmt: skip
    else:
        # Optional choices (benchmark, aggregation) are judged as the API judges them, with
        # the valid ones named; a required one (backend) by argparse.
        enum = schema.get("enum", ())
        choices = list(enum) if enum and None not in enum else None
        parser.add_argument(
            *flags, dest=field, type=_TYPES[kind], choices=choices,
            required=RunCreate.model_fields[field].is_required(),
            metavar=None if choices else flags[0].lstrip("-").upper(),
            help=text + run_fields.bounds_text(schema),
        )  # fmt: skip


def add_run(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "run",
        help="start a run of a benchmark",
        description="Create a run through the API (its DAG run starts the workers).",
    )
    parser.add_argument("name", help="run name: a lower-case DNS label (a-z, 0-9, '-')")
    for field, schema in run_fields.form_schema().items():
        if field != "name":
            _add_field(parser, field, schema)
    parser.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="show progress until the run ends; exit 0 if it FINISHED, 1 otherwise",
    )
    parser.set_defaults(handler=cmd_run)


def run_request(args: argparse.Namespace) -> dict[str, Any]:
    """The fields of ``mlbench run``'s command line, checked as the API checks them (so a
    bad value is one line naming its option, before anything is sent)."""
    fields = {field: getattr(args, field) for field in FLAGS}
    pairs = {}
    for item in fields["settings"]:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--set: needs KEY=VALUE, got {item!r}", EXIT_USAGE)
        pairs[key.strip()] = value.strip()
    fields["settings"] = pairs
    fields = {k: v for k, v in fields.items() if v is not None}
    try:
        run = RunCreate.model_validate(
            {"name": args.name, **fields}, context=run_fields.validation_context()
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        where = FLAGS[field][0] if field in FLAGS else "name" if field == "name" else "run"
        message = first["msg"].removeprefix("Value error, ")
        raise CliError(f"{where}: {message}", EXIT_USAGE) from None
    if run.settings:
        fields["settings"] = run.settings  # typed as the benchmark's settings
    return fields


def check_limits(capabilities: Capabilities, fields: dict[str, Any], out: Console) -> None:
    """Refuse in one line what the backend cannot give; say what is only requested."""
    bandwidth = capabilities.bandwidth
    cap = fields.get("max_bandwidth")
    if cap is not None and bandwidth.status == "unavailable":
        raise CliError(
            f"--bandwidth: the {capabilities.backend} backend cannot cap bandwidth here "
            f"({bandwidth.by}); run without it",
            EXIT_USAGE,
        )
    if cap is not None and bandwidth.status == "requested":
        out.print(f"note: the bandwidth cap is requested, not verified: {escape(bandwidth.by)}")
    cpus = float(fields.get("num_cpus", 1.0))
    if not capabilities.fractional_cpus and not cpus.is_integer():
        raise CliError(
            f"--cpus {cpus:g}: the {capabilities.backend} backend gives whole CPUs only "
            f"here ({capabilities.cpu.by})",
            EXIT_USAGE,
        )


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    out = console()
    fields = run_request(args)
    with connect(settings) as client:
        check_limits(Capabilities.model_validate(client.get_backend()), fields, out)
        run = client.create_run(args.name, **fields)
        out.print(f"created run [bold]{run['name']}[/] (id {run['id']})")
        if not args.follow:
            out.print(run_table(run))
            out.print(f"follow it with: mlbench status {run['name']}")
            return EXIT_OK
        run = follow(client, run, out)
    return outcome(run, out)


def outcome(run: dict[str, Any], out: Console) -> int:
    """Print how the followed run ended; 0 if it FINISHED, else the CLI's error."""
    print_result(run, out)
    if run["state"] == "FINISHED":
        return EXIT_OK
    reason = failure(run)
    raise CliError(f"run {run['name']} ended {run['state']}{': ' + reason if reason else ''}")


# -- mlbench follow --------------------------------------------------------------------------


def add_follow(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "follow",
        help="follow a run until it ends",
        description="Show a run's progress (phase, epochs, ETA, latest metrics) until it "
        "ends; exit 0 if it FINISHED, 1 otherwise. Ctrl-C stops following, not the run.",
    )
    parser.add_argument("name", help="the run")
    parser.set_defaults(handler=cmd_follow)


def cmd_follow(args: argparse.Namespace, settings: Settings) -> int:
    out = console()
    with connect(settings) as client:
        run = follow(client, find_run(client, args.name), out)
    return outcome(run, out)


# -- mlbench status --------------------------------------------------------------------------


def add_status(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "status", help="list the runs, or show one", description="List the runs, or show one."
    )
    parser.add_argument("name", nargs="?", help="the run to show in detail")
    parser.add_argument("--state", type=str.upper, choices=[s.value for s in RunState],
                        help="list only the runs in this state")  # fmt: skip
    parser.add_argument("--benchmark", "-b", help="list only the runs of this benchmark")
    parser.add_argument("--tag", "-t", action="append", default=[], metavar="TAG",
                        help="list only the runs with this tag; repeatable (all)")  # fmt: skip
    parser.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="with NAME: its result as tables (default), as JSON, or (an all-reduce run) its "
        "report as CSV, one row per data type and size",
    )
    parser.set_defaults(handler=cmd_status)


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    out = console()
    with connect(settings) as client:
        if args.name:
            run = find_run(client, args.name)
            if args.format != "table":
                print(result_text(run, args.format), end="")
                return EXIT_OK
            out.print(run_table(run))
            show_outcome(run, out)
            return EXIT_OK
        runs = client.get_runs(state=args.state, benchmark=args.benchmark, tags=args.tag)
    if not runs:
        if args.state or args.benchmark or args.tag:
            out.print("no runs match")
        else:
            out.print("no runs yet: start one with `mlbench run NAME --benchmark 1a --workers 2`")
        return EXIT_OK
    table = Table(title="runs", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in (
        "id",
        "name",
        "benchmark",
        "workers",
        "limits",
        "state",
        "created (UTC)",
        "duration",
        "tags",
    ):
        table.add_column(column, no_wrap=column in ("name", "state", "created (UTC)"))
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
            escape(", ".join(run.get("tags") or [])),
        )
    out.print(table)
    return EXIT_OK


def result_text(run: dict[str, Any], form: str) -> str:
    """``--format json|csv``: the result (an all-reduce run's report) as text."""
    result = run.get("result")
    if form == "csv":
        if not is_report(result):
            raise CliError(f"--format csv: run {run['name']} has no all-reduce report", EXIT_USAGE)
        return report(result).to_csv()
    shown = report(result).as_dict() | {"result": result} if is_report(result) else result
    return json.dumps(shown, indent=2) + "\n"


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
        ("goal", run_fields.goal_label(run)),
        *((label, escape(text)) for label, text in run_fields.choices(run)),
        ("backend", f"{run['backend']}{' (GPU)' if run.get('gpu_enabled') else ''}"),
        ("created (UTC)", show_date(run.get("created_at"))),
        ("started (UTC)", show_date(run.get("started_at"))),
        ("finished (UTC)", show_date(run.get("finished_at"))),
        ("duration", show_seconds(run_duration(run))),
        ("DAG run", run.get("job_id") or "-"),
        ("tags", escape(", ".join(run.get("tags") or [])) or "-"),
    ]
    if run.get("note"):
        rows.append(("note", escape(run["note"])))
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
    table.add_column("settings (--set)")
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
            ", ".join(sorted(spec.get("settings") or {})) or "-",
        )
    out.print(table)
    return EXIT_OK
