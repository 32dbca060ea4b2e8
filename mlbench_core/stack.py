"""The embedded stack: Airflow's api-server (with the mlbench plugin), scheduler,
dag-processor and triggerer, each a process of its own under ``MLBENCH_HOME``.

``Stack(settings).up()`` starts them (or reuses those already running) and waits until
Airflow is healthy, the ``mlbench_run`` DAG is registered and the mlbench API answers;
``down()`` stops every process of the stack, including task processes that left their
parent's process group. Files: see :mod:`mlbench_core.stack_env`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any

import psutil
import requests

from mlbench_core.api.client import ApiClient
from mlbench_core.api.errors import ApiError, ApiUnavailable
from mlbench_core.launch.sandbox import sweep
from mlbench_core.settings import Settings, get_settings
from mlbench_core.stack_env import (
    ADMIN_USER,
    Credentials,
    StackPaths,
    api_root,
    ensure_credentials,
    stack_environment,
)

__all__ = ["PROCESSES", "PortInUse", "Stack", "StackError"]

# name -> arguments of ``airflow``; the api-server's host and port are added at start.
PROCESSES: dict[str, tuple[str, ...]] = {
    "api-server": ("api-server",),
    "scheduler": ("scheduler",),
    "dag-processor": ("dag-processor",),
    "triggerer": ("triggerer",),
}
_POLL_S = 0.5
_GRACE_S = 5.0  # after the first SIGTERM, before the second (see Stack._stop)
_TAIL_LINES = 40
_HEADER = "=== mlbench:"  # starts the line written to a log at each start


class StackError(RuntimeError):
    """The stack could not be started or stopped. ``summary`` is one line; ``str()`` adds
    the tail of the failing process's log."""

    def __init__(self, summary: str, *, process: str | None = None, log: Path | None = None):
        self.summary = summary
        self.process = process
        self.log = log
        self.tail = _tail(log) if log is not None else ""
        if _HEADER in self.tail:  # only what this start wrote
            self.tail = self.tail[self.tail.rindex(_HEADER) :]
        text = summary if not self.tail else f"{summary}\n--- last lines of {log} ---\n{self.tail}"
        super().__init__(text)

    @property
    def last_line(self) -> str:
        """The last non-empty line of the failing process's log ('' if none)."""
        lines = [line.strip() for line in self.tail.splitlines()]
        lines = [line for line in lines if line and not line.startswith(_HEADER)]
        return lines[-1] if lines else ""


class PortInUse(StackError):
    """The stack's port is taken by a program that is not this stack."""


def _tail(path: Path, lines: int = _TAIL_LINES) -> str:
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - 64 * 1024))
            text = file.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _airflow_executable() -> str:
    beside = Path(sys.executable).parent / "airflow"
    if beside.exists():
        return str(beside)
    found = shutil.which("airflow")
    if found is None:
        raise StackError("the `airflow` command is not installed (pip install -e .)")
    return found


def _airflow_version() -> str:
    try:
        return version("apache-airflow")
    except PackageNotFoundError:
        return "unknown"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _process(entry: dict[str, Any]) -> psutil.Process | None:
    """The running process of a stack.json entry (same pid and start time), or None."""
    try:
        process = psutil.Process(int(entry["pid"]))
        if abs(process.create_time() - float(entry["create_time"])) > 1.0:
            return None  # the pid was reused by another program
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process
    except (psutil.Error, KeyError, TypeError, ValueError):
        return None


def _port_holder(port: int) -> str:
    """' (pid N: name)' of the program listening on ``port``, when it can be found."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
                if conn.pid:
                    return f" (pid {conn.pid}: {psutil.Process(conn.pid).name()})"
    except (psutil.Error, OSError):
        pass
    return ""


class Stack:
    """The embedded stack of ``settings.home`` on ``settings.port``."""

    def __init__(self, settings: Settings | None = None) -> None:
        settings = settings or get_settings()
        folders = {
            name: Path(getattr(settings, name)).expanduser().resolve()
            for name in ("home", "dags_folder", "plugins_folder")
        }
        self.settings = settings.model_copy(update=folders)
        self.paths = StackPaths(self.settings.home)
        self._children: dict[int, subprocess.Popen] = {}
        self.ended_strays = 0  # processes of a killed stack that the last down() ended
        self._lock_depth = 0
        self._lock_file: IO[bytes] | None = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One ``up``/``down`` at a time per home (a second ``up`` waits, then reuses)."""
        if self._lock_depth == 0:
            self.paths.home.mkdir(parents=True, exist_ok=True)
            self._lock_file = open(self.paths.home / ".stack.lock", "ab")  # noqa: SIM115
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        self._lock_depth += 1
        try:
            yield
        finally:
            self._lock_depth -= 1
            if self._lock_depth == 0 and self._lock_file is not None:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
                self._lock_file.close()
                self._lock_file = None

    # -- state ------------------------------------------------------------------------------

    def read_state(self) -> dict[str, Any] | None:
        """The content of stack.json, or None."""
        try:
            state = json.loads(self.paths.state.read_text())
        except (OSError, ValueError):
            return None
        return state if isinstance(state, dict) and "processes" in state else None

    def _write_state(self, state: dict[str, Any]) -> None:
        tmp = self.paths.state.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, self.paths.state)

    def _running(self, state: dict[str, Any] | None) -> dict[str, psutil.Process]:
        if not state:
            return {}
        found = {}
        for name, entry in state.get("processes", {}).items():
            process = _process(entry)
            if process is not None:
                found[name] = process
        return found

    def is_up(self) -> bool:
        """Whether every process of the stack is running (it may still be starting)."""
        state = self.read_state()
        return bool(state) and set(self._running(state)) == set(PROCESSES)

    def status(self) -> dict[str, Any]:
        """``up``, ``port``, ``urls``, each process (pid, running, log) and Airflow's health
        report (None when the api-server does not answer)."""
        state = self.read_state()
        running = self._running(state)
        entries = (state or {}).get("processes", {})
        processes = {
            name: {
                "pid": entries.get(name, {}).get("pid"),
                "running": name in running,
                "log": str(self.paths.log(name)),
            }
            for name in PROCESSES
        }
        health = None
        if state and running:
            try:
                answer = requests.get(f"{state['root']}/api/v2/monitor/health", timeout=5)
                if answer.ok:
                    health = answer.json()
            except (requests.RequestException, ValueError):
                pass
        return {
            "up": bool(state) and set(running) == set(PROCESSES),
            "home": str(self.paths.home),
            "port": (state or {}).get("port", self.settings.port),
            "urls": (state or {}).get("urls", self._urls(api_root(self.settings))),
            "processes": processes,
            "health": health,
        }

    @staticmethod
    def _urls(root: str) -> dict[str, str]:
        return {
            "airflow": f"{root}/",
            "api": f"{root}/mlbench/api/",
            "dashboard": f"{root}/mlbench/",
        }

    # -- up ---------------------------------------------------------------------------------

    def up(self, timeout: float = 180) -> dict[str, Any]:
        """Start the stack, or reuse the one running; returns stack.json's content with
        ``reused`` (bool). Raises :class:`StackError` (everything started is stopped)."""
        with self._locked():
            return self._up(timeout)

    def _up(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        state = self.read_state()
        running = self._running(state)
        if state and set(running) == set(PROCESSES):
            credentials = ensure_credentials(self.paths)
            self._wait_ready(state, credentials, deadline, timeout)
            return {**state, "reused": True}
        if state and running:
            return self._restart_missing(state, running, deadline, timeout)
        if state or self.paths.state.exists() or self._strays():
            self._down(20)  # a partial stack, or what a killed one left: end it, start afresh
        sweep(self.settings)  # sandboxes of runs killed with an earlier stack
        self._check_port()
        self.paths.logs.mkdir(parents=True, exist_ok=True)
        credentials = ensure_credentials(self.paths)
        env = stack_environment(self.settings, credentials)
        airflow = _airflow_executable()
        self._migrate(airflow, env, deadline)
        root = api_root(self.settings)
        state = {
            "home": str(self.paths.home),
            "airflow_home": str(self.paths.airflow_home),
            "port": self.settings.port,
            "root": root,
            "api_url": f"{root}/mlbench",
            "urls": self._urls(root),
            "started_at": _now(),
            "processes": {},
        }
        try:
            for name in PROCESSES:
                state["processes"][name] = self._start(name, self._argv(airflow, name), env)
                self._write_state(state)
            self._wait_ready(state, credentials, deadline, timeout)
        except BaseException:
            self.down()
            raise
        return {**state, "reused": False}

    def _restart_missing(
        self,
        state: dict[str, Any],
        running: dict[str, psutil.Process],
        deadline: float,
        timeout: float,
    ) -> dict[str, Any]:
        """Start again the stack's processes that died (an api-server killed, a scheduler
        lost), leaving the others and their tasks running; what the dead ones left in their
        process groups (executor workers, task processes) is ended first."""
        missing = [name for name in PROCESSES if name not in running]
        dead_groups = {
            int(state["processes"][name]["pid"])
            for name in missing
            if str((state["processes"].get(name) or {}).get("pid", "")).isdigit()
        }
        left = []
        for process in self._strays():
            with contextlib.suppress(OSError, psutil.Error):
                if os.getpgid(process.pid) in dead_groups:
                    left.append(process)
        self._signal([], left, signal.SIGTERM)
        _, alive = psutil.wait_procs(left, timeout=_GRACE_S)
        for process in alive:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(alive, timeout=5)
        self.ended_strays = len(left)
        sweep(self.settings)  # sandboxes of the ranks of tasks that died with them
        if "api-server" in missing:
            self._check_port()
        credentials = ensure_credentials(self.paths)
        env = stack_environment(self.settings, credentials)
        airflow = _airflow_executable()
        for name in missing:
            state["processes"][name] = self._start(name, self._argv(airflow, name), env)
            self._write_state(state)
        self._wait_ready(state, credentials, deadline, timeout)
        return {**state, "reused": False, "restarted": missing}

    def _argv(self, airflow: str, name: str) -> list[str]:
        """The command line of stack process ``name``."""
        argv = [airflow, *PROCESSES[name]]
        if name == "api-server":
            argv += ["--host", "127.0.0.1", "--port", str(self.settings.port)]
        return argv

    def _check_port(self) -> None:
        port = self.settings.port
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                raise PortInUse(
                    f"port {port} is in use by another program{_port_holder(port)}: "
                    "stop it or choose another port with MLBENCH_PORT"
                ) from None

    def _migrate(self, airflow: str, env: dict[str, str], deadline: float) -> None:
        """``airflow db migrate``, unless this Airflow version migrated the DB already."""
        marker = self.paths.airflow_home / ".mlbench-migrated"
        wanted = _airflow_version()
        db = self.paths.airflow_home / "airflow.db"
        if db.exists() and marker.exists() and marker.read_text().strip() == wanted:
            return
        log = self.paths.log("db-migrate")
        with open(log, "ab") as out:
            out.write(f"{_HEADER} airflow db migrate, {_now()} ===\n".encode())
            out.flush()
            try:
                result = subprocess.run(
                    [airflow, "db", "migrate"],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=max(1.0, deadline - time.monotonic()),
                    start_new_session=True,
                )
            except subprocess.TimeoutExpired:
                raise StackError("`airflow db migrate` timed out", log=log) from None
        if result.returncode != 0:
            raise StackError(
                f"`airflow db migrate` failed with exit code {result.returncode}", log=log
            )
        marker.write_text(wanted + "\n")

    def _start(self, name: str, argv: list[str], env: dict[str, str]) -> dict[str, Any]:
        log = self.paths.log(name)
        with open(log, "ab") as out:
            out.write(f"{_HEADER} {' '.join(argv[1:])}, {_now()} ===\n".encode())
            out.flush()
            child = subprocess.Popen(
                argv,
                env=env,
                cwd=self.paths.home,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._children[child.pid] = child
        try:
            created = psutil.Process(child.pid).create_time()
        except psutil.Error:
            created = time.time()
        return {"pid": child.pid, "create_time": created, "log": str(log)}

    def _wait_ready(
        self, state: dict[str, Any], credentials: Credentials, deadline: float, timeout: float
    ) -> None:
        root = state["root"]
        session = requests.Session()
        try:
            while True:
                for name, entry in state["processes"].items():
                    if _process(entry) is None:
                        child = self._children.get(int(entry["pid"]))
                        code = child.poll() if child is not None else None
                        how = f" with exit code {code}" if code is not None else ""
                        raise StackError(
                            f"the {name} stopped{how} while the stack was starting",
                            process=name,
                            log=self.paths.log(name),
                        )
                waiting_for = self._not_ready(session, root, credentials)
                if waiting_for is None:
                    return
                if time.monotonic() >= deadline:
                    process, what = waiting_for
                    raise StackError(
                        f"{what} after {timeout:g} s", process=process, log=self.paths.log(process)
                    )
                time.sleep(_POLL_S)
        finally:
            session.close()

    def _not_ready(
        self, session: requests.Session, root: str, credentials: Credentials
    ) -> tuple[str, str] | None:
        """None when the stack is ready; else (the process to blame, what is missing)."""
        try:
            answer = session.get(f"{root}/api/v2/monitor/health", timeout=5)
            if answer.status_code != 200:
                return "api-server", f"Airflow's health check answered {answer.status_code}"
            health = answer.json()
            if health.get("metadatabase", {}).get("status") != "healthy":
                return "api-server", "Airflow's metadata database is not healthy"
            if health.get("scheduler", {}).get("status") != "healthy":
                return "scheduler", "the scheduler is not healthy"
            try:
                with ApiClient.login(
                    f"{root}/mlbench", ADMIN_USER, credentials.admin_password, timeout=10
                ) as admin:
                    token = admin.token
            except ApiUnavailable:
                return "api-server", "the api-server does not answer"
            except ApiError as exc:
                return "api-server", f"the admin login failed ({exc.status})"
            headers = {"Authorization": f"Bearer {token}"}
            dag_id = self.settings.dag_id
            dag = session.get(f"{root}/api/v2/dags/{dag_id}", headers=headers, timeout=10)
            if dag.status_code != 200:
                return "dag-processor", f"the DAG {dag_id} is not registered"
            api = session.get(f"{root}/mlbench/api/benchmarks", headers=headers, timeout=10)
            if api.status_code != 200:
                return "api-server", f"the mlbench API answered {api.status_code}"
        except (requests.RequestException, ValueError, KeyError):
            return "api-server", "the api-server does not answer"
        return None

    # -- down -------------------------------------------------------------------------------

    def down(self, timeout: float = 20) -> list[str]:
        """Stop every process of the stack and remove stack.json; returns the names of the
        stack processes that were running.

        The scheduler, dag-processor and triggerer go first (SIGTERM to each process group
        and to their task processes, which have groups of their own), the api-server last,
        because tasks report their end to its execution API. Each step sends SIGKILL to
        what is left after ``timeout`` seconds. Then any process still carrying this
        stack's AIRFLOW_HOME is killed.
        """
        with self._locked():
            return self._down(timeout)

    def _down(self, timeout: float) -> list[str]:
        state = self.read_state()
        running = self._running(state)
        family = {p.pid for p in running.values()}
        for leader in running.values():
            with contextlib.suppress(psutil.Error):
                family |= {child.pid for child in leader.children(recursive=True)}
        strays = self._strays()
        # Left behind by a stack that was killed (not children of the processes running).
        self.ended_strays = len([p for p in strays if p.pid not in family])
        last = {"api-server"}
        first = {name: p for name, p in running.items() if name not in last}
        self._stop(first, timeout, strays=strays)
        self._stop({name: p for name, p in running.items() if name in last}, timeout)
        strays = self._strays()
        for process in strays:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(strays, timeout=5)
        for child in self._children.values():
            with contextlib.suppress(Exception):
                child.wait(timeout=1)
        self._children.clear()
        sweep(self.settings)  # the sandboxes of runs whose tasks were just killed
        self.paths.state.unlink(missing_ok=True)
        return sorted(running)

    def _stop(
        self,
        leaders: dict[str, psutil.Process],
        timeout: float,
        *,
        strays: Sequence[psutil.Process] = (),
    ) -> None:
        """SIGTERM the leaders' groups and descendants (and ``strays``, processes of this
        stack outside them, but not the api-server's), again after a grace period; SIGKILL
        what is left after ``timeout``."""
        victims: dict[int, psutil.Process] = {}
        for process in leaders.values():
            victims[process.pid] = process
            with contextlib.suppress(psutil.Error):
                for child in process.children(recursive=True):
                    victims[child.pid] = child
        if strays:
            spared = self._api_server_tree()
            for process in strays:
                if process.pid not in spared:
                    victims.setdefault(process.pid, process)
        if not victims:
            return
        deadline = time.monotonic() + timeout
        self._signal(leaders.values(), victims.values(), signal.SIGTERM)
        _, alive = psutil.wait_procs(list(victims.values()), timeout=min(_GRACE_S, timeout))
        if alive and timeout > _GRACE_S:
            # Some children outlive the first SIGTERM: LocalExecutor workers ignore it (their
            # scheduler joins them, waiting), the triggerer gives its runner 10 s. After the
            # grace period children are killed and the leaders are told once more.
            leader_pids = {leader.pid for leader in leaders.values()}
            for process in alive:
                if process.pid not in leader_pids:
                    with contextlib.suppress(psutil.Error):
                        process.kill()
            leaders_left = [process for process in alive if process.pid in leader_pids]
            self._signal(leaders_left, leaders_left, signal.SIGTERM)
            _, alive = psutil.wait_procs(alive, timeout=max(0.0, deadline - time.monotonic()))
        if alive:
            self._signal(leaders.values(), alive, signal.SIGKILL)
            psutil.wait_procs(alive, timeout=5)

    def _api_server_tree(self) -> set[int]:
        entry = ((self.read_state() or {}).get("processes") or {}).get("api-server")
        process = _process(entry) if entry else None
        if process is None:
            return set()
        with contextlib.suppress(psutil.Error):
            return {process.pid} | {child.pid for child in process.children(recursive=True)}
        return {process.pid}

    @staticmethod
    def _signal(
        leaders: Iterable[psutil.Process],
        processes: Iterable[psutil.Process],
        signum: signal.Signals,
    ) -> None:
        """``signum`` to the process group of each leader, and to each other process once
        (a second SIGTERM makes some Airflow processes skip their clean shutdown)."""
        groups = set()
        for leader in leaders:
            with contextlib.suppress(OSError, psutil.Error):
                if os.getpgid(leader.pid) == leader.pid:
                    os.killpg(leader.pid, signum)
                    groups.add(leader.pid)
        for process in processes:
            with contextlib.suppress(OSError, psutil.Error):
                if os.getpgid(process.pid) not in groups:
                    process.send_signal(signum)

    def _strays(self) -> list[psutil.Process]:
        """Processes of this user, other than this one, of this stack: their environment or
        command line names its AIRFLOW_HOME; or they are in the process group of one of
        its processes (stack.json's pids: each was started in a session of its own, so the
        scheduler's LocalExecutor workers, which blank their environment and outlive a
        killed scheduler, stay in its group); or they run Airflow or mlbench code in the
        stack's home folder, where every stack process starts."""
        airflow_home, home = str(self.paths.airflow_home), str(self.paths.home)
        state = self.read_state() or {}
        groups = {
            int(entry["pid"])
            for entry in (state.get("processes") or {}).values()
            if isinstance(entry, dict) and str(entry.get("pid", "")).isdigit()
        }
        me, mine = os.getpid(), os.getpgid(0)
        uid = os.getuid()
        found = []
        for process in psutil.process_iter(["pid", "uids", "cmdline", "environ", "cwd"]):
            info = process.info
            if info["pid"] == me or not info["uids"] or info["uids"].real != uid:
                continue
            environ = info["environ"] or {}
            cmdline = info["cmdline"] or []
            try:
                group = os.getpgid(info["pid"])
            except OSError:
                continue
            ours = (
                environ.get("AIRFLOW_HOME") == airflow_home
                or any(airflow_home in arg for arg in cmdline)
                or (group in groups and group != mine)
                or (
                    info["cwd"] == home
                    and any(word in " ".join(cmdline) for word in ("airflow", "mlbench_core"))
                )
            )
            if ours:
                found.append(process)
        return found
