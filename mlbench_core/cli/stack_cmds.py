"""``mlbench up`` and ``mlbench down``: the embedded stack."""

from __future__ import annotations

import argparse
import time

from rich.markup import escape
from rich.table import Table

from mlbench_core.cli.common import EXIT_OK, CliError, console
from mlbench_core.launch.facilities import detect
from mlbench_core.settings import Settings
from mlbench_core.stack import PortInUse, Stack, StackError
from mlbench_core.stack_env import ADMIN_USER, load_credentials


def add_up(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "up",
        help="start the embedded stack (or reuse the running one)",
        description="Start Airflow (api-server with the mlbench API, scheduler, dag-processor, "
        "triggerer) under MLBENCH_HOME on MLBENCH_PORT, or reuse the stack already running.",
    )
    parser.add_argument(
        "--timeout", type=float, default=180, help="seconds to wait for it (default 180)"
    )
    parser.set_defaults(handler=cmd_up)


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    out = console()
    stack = Stack(settings)
    started = time.monotonic()
    if not stack.is_up():
        out.print(f"starting the mlbench stack in {stack.paths.home} (port {settings.port})...")
    try:
        with out.status("waiting for Airflow and the mlbench API..."):
            state = stack.up(timeout=args.timeout)
    except PortInUse as exc:
        raise CliError(exc.summary) from None
    except StackError as exc:
        where = f" (log: {exc.log})" if exc.log else ""
        last = f"; last log line: {exc.last_line}" if exc.last_line else ""
        raise CliError(f"{exc.summary}{where}{last}") from None
    elapsed = time.monotonic() - started
    how = "was already running" if state["reused"] else f"started in {elapsed:.0f} s"
    if state.get("restarted"):
        how = f"was partly running: restarted {', '.join(state['restarted'])} in {elapsed:.0f} s"
    if stack.ended_strays:
        out.print(f"ended {stack.ended_strays} leftover processes of an earlier stack")
    try:
        credentials = load_credentials(stack.paths.home)
    except ValueError:
        credentials = None
    urls = state["urls"]
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_row("Airflow UI", urls["airflow"])
    table.add_row("API", urls["api"])
    table.add_row("dashboard", f"{urls['dashboard']}  (log in through the Airflow UI)")
    password = escape(credentials.admin_password) if credentials else "(see credentials.json)"
    table.add_row("log in", f"user {ADMIN_USER}, password {password}")
    table.add_row("credentials", str(stack.paths.credentials))
    table.add_row("logs", str(stack.paths.logs))
    for line in detect(settings).lines():
        table.add_row("limits", line)
    out.print(f"[green]the mlbench stack {how}[/]")
    out.print(table)
    out.print("stop it with: mlbench down")
    return EXIT_OK


def add_down(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "down",
        help="stop the embedded stack",
        description="Stop every process of the embedded stack (runs in progress are killed).",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=20,
        help="seconds before SIGTERM becomes SIGKILL (default 20)",
    )
    parser.set_defaults(handler=cmd_down)


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    out = console()
    stack = Stack(settings)
    try:
        with out.status("stopping the mlbench stack..."):
            stopped = stack.down(timeout=args.timeout)
    except StackError as exc:
        raise CliError(exc.summary) from None
    if stopped:
        out.print(f"stopped the mlbench stack ({', '.join(stopped)})")
    else:
        out.print("the mlbench stack was not running")
    if stack.ended_strays:
        out.print(f"ended {stack.ended_strays} leftover processes of an earlier stack")
    return EXIT_OK
