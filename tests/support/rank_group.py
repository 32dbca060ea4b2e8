"""Start real worker processes (``python -m ...``) with torchrun-style environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.environment import REPO
from harness.server import free_port

_CLEARED = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK")
_CLEARED_PREFIX = ("MLBENCH_API_", "MLBENCH_POD_")


@dataclass
class Proc:
    rank: int
    process: subprocess.Popen
    out: Path
    err: Path

    @property
    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err.read_text(errors="replace")


def base_env(**extra: str) -> dict[str, str]:
    """This process's environment without rank or API variables, with one thread each."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _CLEARED and not k.startswith(_CLEARED_PREFIX)
    }
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env


class Group:
    """``world_size`` processes of one command, one per rank; all ended on exit."""

    def __init__(
        self,
        args: list[str],
        world_size: int,
        tmp: Path,
        *,
        env: dict[str, str] | None = None,
        rank_env: dict[int, dict[str, str]] | None = None,
    ) -> None:
        port = str(free_port())
        self.procs: list[Proc] = []
        for rank in range(world_size):
            penv = base_env(**(env or {}))
            if world_size > 1:
                penv.update(
                    RANK=str(rank),
                    WORLD_SIZE=str(world_size),
                    MASTER_ADDR="127.0.0.1",
                    MASTER_PORT=port,
                )
            penv.update((rank_env or {}).get(rank, {}))
            out, err = tmp / f"rank{rank}.out", tmp / f"rank{rank}.err"
            with open(out, "wb") as stdout, open(err, "wb") as stderr:
                process = subprocess.Popen(
                    [sys.executable, *args],
                    cwd=REPO,
                    env=penv,
                    stdout=stdout,
                    stderr=stderr,
                    start_new_session=True,
                )
            self.procs.append(Proc(rank, process, out, err))

    def wait(self, timeout: float) -> list[int]:
        """Every exit code; ``TimeoutError`` (with the output) if one is still going."""
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            try:
                proc.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise TimeoutError(f"rank {proc.rank} still running\n{self.output()}") from None
        return [proc.process.returncode for proc in self.procs]

    def output(self) -> str:
        return "\n".join(
            f"--- rank {p.rank} stdout\n{p.stdout}--- rank {p.rank} stderr\n{p.stderr}"
            for p in self.procs
        )

    def __enter__(self) -> Group:
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            if proc.process.poll() is None:
                os.killpg(proc.process.pid, signal.SIGKILL)
                proc.process.wait()


def worker_args(run_id: int, benchmark: str, *extra: str) -> list[str]:
    return ["-m", "mlbench_core.worker", "--run-id", str(run_id), "--benchmark", benchmark, *extra]
