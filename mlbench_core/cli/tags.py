"""``mlbench tag NAME``: a run's tags and note (what people put on runs to find them again)."""

from __future__ import annotations

import argparse

from pydantic import ValidationError

from mlbench_core.api.schemas import RunUpdate
from mlbench_core.cli.common import EXIT_OK, EXIT_USAGE, CliError, connect, console, find_run
from mlbench_core.settings import Settings


def add_tag(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "tag",
        help="add or remove a run's tags, set its note",
        description="Add tags to a run, remove some, or set its note; prints what it has then. "
        "`mlbench status --tag TAG` lists the runs with a tag.",
    )
    parser.add_argument("name", help="the run")
    parser.add_argument("tags", nargs="*", metavar="TAG", help="tags to add")
    parser.add_argument(
        "--remove", "-r", action="append", default=[], metavar="TAG", help="a tag to remove"
    )
    parser.add_argument("--note", help='the run\'s note ("" clears it)')
    parser.set_defaults(handler=cmd_tag)


def cmd_tag(args: argparse.Namespace, settings: Settings) -> int:
    out = console()
    with connect(settings) as client:
        run = find_run(client, args.name)
        removed = set(args.remove)
        tags = [t for t in [*run.get("tags", []), *args.tags] if t not in removed]
        try:
            change = RunUpdate.model_validate({"tags": tags, "note": args.note})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = "--note" if first["loc"][0] == "note" else "TAG"
            raise CliError(f"{where}: {first['msg']}", EXIT_USAGE) from None
        if args.tags or removed or args.note is not None:
            run = client.update_run(run["id"], tags=change.tags, note=change.note)
    out.print(f"{run['name']}: tags {', '.join(run.get('tags') or []) or 'none'}", markup=False)
    if run.get("note"):
        out.print(f"note: {run['note']}", markup=False)
    return EXIT_OK
