"""``torch.distributed`` set-up from torchrun-style environment, and tear-down.

``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` are torch's own contract (read by
``init_method="env://"``), not mlbench configuration. Without them the worker runs alone
(world size 1) on an in-memory store.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from mlbench_core.engine import WorkerError

__all__ = ["DEFAULT_TIMEOUT", "DistContext", "choose_backend", "collective", "destroy", "init"]

DEFAULT_TIMEOUT = 300.0  # seconds a rendezvous or collective may wait for the other ranks
_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistContext:
    """This process's place in the process group."""

    rank: int
    world_size: int
    backend: str
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def choose_backend(requested: str | None = None) -> str:
    """gloo unless nccl is requested (which needs CUDA); ``WorkerError`` otherwise."""
    backend = (requested or "gloo").lower()
    if backend == "gloo":
        return backend
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise WorkerError("backend nccl needs a CUDA device, and none is available")
        return backend
    raise WorkerError(f"unknown backend {requested!r}; valid: gloo, nccl")


def init(backend: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> DistContext:
    """Join the process group (or create a group of one); returns this rank's context."""
    name = choose_backend(backend)
    wait = timedelta(seconds=timeout)
    present = [var for var in _TORCHRUN_VARS if var in os.environ]
    if not present:
        dist.init_process_group(name, store=dist.HashStore(), rank=0, world_size=1, timeout=wait)
    elif len(present) < len(_TORCHRUN_VARS):
        missing = sorted(set(_TORCHRUN_VARS) - set(present))
        raise WorkerError(f"incomplete torchrun environment: {', '.join(missing)} not set")
    else:
        try:
            dist.init_process_group(name, init_method="env://", timeout=wait)
        except ValueError as exc:  # e.g. RANK=abc
            raise WorkerError(f"bad torchrun environment: {exc}") from None
        except RuntimeError as exc:  # DistStoreError, DistNetworkError: no rendezvous
            first = (str(exc).strip() or type(exc).__name__).splitlines()[0]
            raise WorkerError(f"cannot join the process group: {first}", 1) from exc
    rank, world_size = dist.get_rank(), dist.get_world_size()
    device = torch.device("cpu")
    if name == "nccl":
        local = int(os.environ.get("LOCAL_RANK", rank % torch.cuda.device_count()))
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    return DistContext(rank=rank, world_size=world_size, backend=name, device=device)


def destroy() -> None:
    """Leave the process group, if joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def collective() -> Iterator[None]:
    """Around collective calls: their failure (a rank crashed, or did not answer within the
    timeout) becomes a one-line ``WorkerError`` with exit code 1."""
    try:
        yield
    except RuntimeError as exc:  # DistError and gloo's plain RuntimeErrors
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        raise WorkerError(f"a collective operation failed (a rank gone?): {first}", 1) from exc
