"""Save a run at the end of an epoch and resume it later as if it had never stopped.

Layout: one folder per rank, one file per epoch, ``<directory>/rank-<r>/epoch-<eeeee>.pt``.
Every rank writes only its own folder, so no two processes ever write the same file.

A file holds the model's, optimizer's and (optional) scheduler's ``state_dict``, the epoch and
step, the caller's ``extra`` (tracker totals, time spent so far, whether the goal was already
reached, ...) and the random number generators' states (torch CPU, this rank's CUDA device
when it uses one, Python's ``random``, NumPy's global generator), so that a resumed run draws
the same random numbers (data order, dropout) as the uninterrupted run would have.

Integrity: :func:`save` writes a temporary file in the same folder, flushes it to disk and
renames it over the final name (``os.replace``, atomic on POSIX). A crash mid-write therefore
leaves only a temporary file, which is never picked (and is removed by the next save). Beyond
that, :func:`epochs` and :func:`latest` skip a file whose zip directory (``torch.save``'s
format; the directory sits at the file's end) cannot be read, which catches a truncated file
cheaply without reading it whole. :func:`load` reads it whole: it verifies every member's
CRC-32 before unpickling, so a file damaged in the middle raises :class:`CheckpointError`
instead of restoring wrong numbers (no ``.done`` marker files are needed).

Resuming across ranks: every rank must restart from the same epoch, or their gradients would
mix different models. :func:`agree` is the collective for that: an all-reduce MIN of each
rank's latest epoch, so a rank that lacks the newest checkpoint (it crashed before writing it)
makes every rank resume from an older one. A rank whose own latest is newer then loads an
older file of its own, which must still be there: keep at least two (``keep >= 2``, the
default) when ranks may be an epoch apart. :func:`newest_common` is the stricter variant used
by :func:`resume`: the newest epoch that every rank holds intact, whatever the gaps; if a
rank's file of that epoch turns out damaged, all ranks fall back to the next older one.

Serialization loads with ``torch.load(weights_only=True)``: nothing in a checkpoint runs code
on load. Hence ``extra`` may only hold plain data (None, bool, int, float, str, bytes, tensors,
and lists, tuples and dicts of them); :func:`save` checks that before writing.
"""

from __future__ import annotations

import logging
import os
import random
import re
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from mlbench_core.engine.distributed import collective

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "agree",
    "epochs",
    "get_rng_state",
    "latest",
    "load",
    "newest_common",
    "path",
    "resume",
    "save",
    "set_rng_state",
]

FORMAT = 1  # version of the file's layout; load() refuses others
_NAME = re.compile(r"epoch-(\d+)\.pt")
_TMP_PREFIX = ".tmp-"

log = logging.getLogger(__name__)


class CheckpointError(Exception):
    """A checkpoint cannot be written or read back."""


@dataclass(frozen=True)
class Checkpoint:
    """What :func:`load` restored besides the objects' states."""

    epoch: int
    step: int
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


# -- paths -------------------------------------------------------------------------------------


def _rank_dir(directory: Path | str, rank: int) -> Path:
    if rank < 0:
        raise ValueError(f"rank must be >= 0, not {rank}")
    return Path(directory) / f"rank-{rank}"


def path(directory: Path | str, rank: int, epoch: int) -> Path:
    """Where rank ``rank``'s checkpoint of epoch ``epoch`` lives (whether or not it exists)."""
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, not {epoch}")
    return _rank_dir(directory, rank) / f"epoch-{epoch:05d}.pt"


def _intact(file: Path) -> bool:
    """Cheap check: the zip directory at the file's end is readable and names the pickle."""
    try:
        with zipfile.ZipFile(file) as archive:
            return any(
                name.endswith("/data.pkl") or name == "data.pkl" for name in archive.namelist()
            )
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def _listed(directory: Path | str, rank: int) -> dict[int, Path]:
    """Every checkpoint file of ``rank`` by epoch, intact or not."""
    folder = _rank_dir(directory, rank)
    found: dict[int, Path] = {}
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return found
    for entry in entries:
        match = _NAME.fullmatch(entry.name)
        if match and entry.is_file():
            found[int(match.group(1))] = entry
    return found


def epochs(directory: Path | str, rank: int) -> list[int]:
    """The epochs of ``rank``'s intact checkpoints, oldest first."""
    return sorted(e for e, file in _listed(directory, rank).items() if _intact(file))


def latest(directory: Path | str, rank: int) -> Path | None:
    """``rank``'s newest intact checkpoint, or None."""
    for _, file in sorted(_listed(directory, rank).items(), reverse=True):
        if _intact(file):
            return file
    return None


# -- random number generators ------------------------------------------------------------------


def get_rng_state() -> dict[str, Any]:
    """The states of torch's (CPU and CUDA), Python's and NumPy's global generators, as
    tensors and plain lists (so that ``weights_only`` loading accepts them).

    CUDA: the current device's generator (one device per rank), and only once this process
    has initialised CUDA, so that a CPU run on a GPU machine never creates a CUDA context.
    """
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": [version, list(internal), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "cuda": None,
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` returned. A saved CUDA state goes to the current
    CUDA device when CUDA is available (a checkpoint moved to a CPU-only machine restores
    the rest)."""
    torch.set_rng_state(state["torch"].cpu())
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, cached))
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(cuda.cpu(), torch.cuda.current_device())


# -- save --------------------------------------------------------------------------------------

_PLAIN = (type(None), bool, int, float, str, bytes, torch.Tensor)


def _check_plain(value: Any, where: str) -> None:
    """``TypeError`` unless ``value`` is data that ``weights_only`` loading accepts."""
    if isinstance(value, _PLAIN):
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str | int):
                raise TypeError(f"{where} has a key of type {type(key).__name__}")
            _check_plain(item, f"{where}[{key!r}]")
        return
    raise TypeError(
        f"{where} is a {type(value).__name__}; a checkpoint's extra holds only None, bool, "
        "int, float, str, bytes, tensors and lists, tuples and dicts of them"
    )


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # not supported by every file system
    finally:
        os.close(fd)


def save(
    directory: Path | str,
    *,
    rank: int,
    epoch: int,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any = None,
    extra: dict[str, Any] | None = None,
    keep: int = 2,
) -> Path:
    """Write rank ``rank``'s checkpoint of ``epoch`` atomically; its path.

    Afterwards only the newest ``keep`` checkpoints of this rank remain. Checkpoints of later
    epochs than ``epoch`` are removed too: they belong to a future that a resume from an older
    common epoch abandoned. Leftover temporary files of an interrupted save are removed.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, not {keep}")
    if step < 0:
        raise ValueError(f"step must be >= 0, not {step}")
    extra = dict(extra or {})
    _check_plain(extra, "extra")
    target = path(directory, rank, epoch)
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f"{_TMP_PREFIX}*"):
        stale.unlink(missing_ok=True)
    payload = {
        "format": FORMAT,
        "rank": rank,
        "epoch": epoch,
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "extra": extra,
        "rng": get_rng_state(),
    }
    fd, tmp_name = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}{target.name}.", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)
    _prune(directory, rank, epoch, keep)
    return target


def _prune(directory: Path | str, rank: int, current: int, keep: int) -> None:
    listed = _listed(directory, rank)
    kept = sorted(e for e in listed if e <= current)[-keep:]
    for epoch, file in listed.items():
        if epoch not in kept:
            file.unlink(missing_ok=True)


# -- load --------------------------------------------------------------------------------------


def _read(file: Path, map_location: Any) -> dict[str, Any]:
    """The payload of ``file``; ``CheckpointError`` if it cannot be read, fails a checksum,
    or is not ours. Every member's CRC-32 (which ``torch.save`` writes and ``torch.load``
    does not check) is verified first, so flipped bytes in a tensor are caught too."""
    try:
        with zipfile.ZipFile(file) as archive:
            damaged = archive.testzip()
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {file}") from None
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise CheckpointError(f"cannot read checkpoint {file}: {exc}") from exc
    if damaged is not None:
        raise CheckpointError(f"checkpoint {file} is damaged: {damaged} fails its checksum")
    try:
        payload = torch.load(file, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {file}") from None
    except Exception as exc:  # zip, pickle or weights_only errors: a damaged file
        first = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        raise CheckpointError(f"cannot read checkpoint {file}: {first}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{file} is not an mlbench checkpoint of format {FORMAT}")
    return payload


def _apply(
    payload: dict[str, Any],
    file: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
) -> Checkpoint:
    if scheduler is not None and payload["scheduler"] is None:
        raise CheckpointError(f"{file} holds no scheduler state")
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(payload["scheduler"])
    set_rng_state(payload["rng"])
    return Checkpoint(
        epoch=int(payload["epoch"]), step=int(payload["step"]), extra=payload["extra"], path=file
    )


def load(
    file: Path | str,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any = None,
    map_location: Any = "cpu",
) -> Checkpoint:
    """Restore ``model``, ``optimizer``, ``scheduler`` and the random generators from
    ``file``; its epoch, step and extra. ``CheckpointError`` (with nothing restored) if it
    cannot be read, is of another format, or lacks the state that ``scheduler`` needs.

    A checkpoint saved without a scheduler restores into ``scheduler=None`` only; the
    scheduler state in a file is ignored when ``scheduler`` is None.
    """
    file = Path(file)
    return _apply(_read(file, map_location), file, model, optimizer, scheduler)


# -- agreeing across ranks ---------------------------------------------------------------------


def _world_size() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def agree(epoch: int | None, *, device: torch.device | None = None) -> int | None:
    """Collective (every rank calls it): the smallest of the ranks' ``epoch`` values, None if
    any rank has none. Pass each rank's latest checkpointed epoch; every rank then resumes
    from the result. World size 1 (or no process group): ``epoch`` itself.

    ``device``: where the reduced tensor lives (a CUDA device with nccl; CPU by default).
    """
    if epoch is not None and epoch < 0:
        raise ValueError(f"epoch must be >= 0, not {epoch}")
    if _world_size() == 1:
        return epoch
    value = torch.tensor([-1 if epoch is None else epoch], dtype=torch.int64, device=device)
    with collective():
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
    result = int(value.item())
    return None if result < 0 else result


def newest_common(available: Iterable[int], *, device: torch.device | None = None) -> int | None:
    """Collective: the newest epoch that appears in every rank's ``available``, or None.

    Two all-reduces: MAX of the ranks' newest epochs, then MIN over one presence flag per
    epoch (so the cost grows with the number of epochs, a few bytes each).
    """
    mine = sorted(set(available))
    if mine and mine[0] < 0:
        raise ValueError("epochs must be >= 0")
    if _world_size() == 1:
        return mine[-1] if mine else None
    top = torch.tensor([mine[-1] if mine else -1], dtype=torch.int64, device=device)
    with collective():
        dist.all_reduce(top, op=dist.ReduceOp.MAX)
    highest = int(top.item())
    if highest < 0:
        return None
    present = torch.zeros(highest + 1, dtype=torch.int32, device=device)
    if mine:
        present[torch.tensor(mine, dtype=torch.int64, device=device)] = 1
    with collective():
        dist.all_reduce(present, op=dist.ReduceOp.MIN)
    common = torch.nonzero(present).flatten()
    return int(common[-1].item()) if len(common) else None


def _all_true(flag: bool, device: torch.device | None) -> bool:
    if _world_size() == 1:
        return flag
    value = torch.tensor([int(flag)], dtype=torch.int64, device=device)
    with collective():
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def resume(
    directory: Path | str,
    *,
    rank: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any = None,
    map_location: Any = "cpu",
    device: torch.device | None = None,
) -> Checkpoint | None:
    """Collective: restore the newest epoch for which every rank has a readable checkpoint;
    None, with nothing changed, when there is none (start from scratch).

    Every rank reads its file of the :func:`newest_common` epoch before any rank restores
    anything; if one rank cannot read its file (damaged in the middle), all ranks try the
    next older common epoch instead, so the ranks never part ways.
    """
    candidates = epochs(directory, rank)
    while True:
        epoch = newest_common(candidates, device=device)
        if epoch is None:
            return None
        file = path(directory, rank, epoch)
        try:
            payload: dict[str, Any] | None = _read(file, map_location)
        except CheckpointError as exc:
            log.warning("rank %d: %s; trying an older checkpoint", rank, exc)
            payload = None
        if _all_true(payload is not None, device):
            assert payload is not None
            return _apply(payload, file, model, optimizer, scheduler)
        candidates = [e for e in candidates if e < epoch]
