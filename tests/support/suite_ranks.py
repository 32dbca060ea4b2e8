"""Scenarios for checkpoint agreement and the all-reduce benchmark, run by each rank of a real
process group: ``python -m tests.support.suite_ranks SCENARIO OUTDIR``. Each rank
writes what it saw to ``OUTDIR/rank<R>.json``."""

from __future__ import annotations

import json
import struct
import sys
import zipfile
from pathlib import Path

import torch

from mlbench_core.benchmarks import allreduce
from mlbench_core.engine import checkpoint, distributed


def damage(file: Path) -> None:
    """Flip the first bytes of the file's largest tensor, leaving the zip structure intact."""
    with zipfile.ZipFile(file) as archive:
        member = max(
            (i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size
        )
    data = bytearray(file.read_bytes())
    start = member.header_offset
    name_len, extra_len = struct.unpack("<HH", data[start + 26 : start + 30])
    begin = start + 30 + name_len + extra_len
    data[begin : begin + 8] = bytes(b ^ 0xFF for b in data[begin : begin + 8])
    file.write_bytes(bytes(data))


def _objects(seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def agree(ctx: distributed.DistContext, out: Path) -> dict:
    """Rank 0 saved epochs 1-3; rank 1 only 1-2 and a truncated 3, and its epoch 2 file is
    damaged in the middle (its zip directory intact): they agree on 2, resume from 1."""
    directory = out / "checkpoints"
    model, optimizer = _objects(ctx.rank)
    for epoch in (1, 2, 3):
        with torch.no_grad():
            model.weight.fill_(10 * ctx.rank + epoch)
        checkpoint.save(
            directory,
            rank=ctx.rank,
            epoch=epoch,
            step=epoch * 5,
            model=model,
            optimizer=optimizer,
            extra={"epoch_seen": epoch},
            keep=3,
        )
    mine = checkpoint.path(directory, ctx.rank, 3)
    if ctx.rank == 1:
        with open(mine, "r+b") as handle:  # a crash while copying: the end is missing
            handle.truncate(mine.stat().st_size // 2)
    latest = checkpoint.latest(directory, ctx.rank)
    latest_epoch = int(latest.stem.split("-")[1]) if latest else None
    agreed = checkpoint.agree(latest_epoch)
    common = checkpoint.newest_common(checkpoint.epochs(directory, ctx.rank))
    nobody = checkpoint.agree(None if ctx.rank == 1 else 4)
    disjoint = checkpoint.newest_common([5] if ctx.rank == 0 else [6])

    if ctx.rank == 1:  # flip bytes inside the epoch-2 tensors: only the checksums tell
        damage(checkpoint.path(directory, 1, 2))
    fresh, fresh_opt = _objects(100)
    resumed = checkpoint.resume(directory, rank=ctx.rank, model=fresh, optimizer=fresh_opt)
    return {
        "latest": latest_epoch,
        "agreed": agreed,
        "common": common,
        "nobody": nobody,
        "disjoint": disjoint,
        "resumed_epoch": resumed.epoch if resumed else None,
        "resumed_extra": resumed.extra if resumed else None,
        "resumed_weight": float(fresh.weight[0, 0]),
    }


def bench(ctx: distributed.DistContext, out: Path) -> dict:
    """Three sizes, float32, float16 and a type gloo rejects; then a budget rank 1 lowers."""
    seen: list[dict] = []
    rows = allreduce.run(
        ctx.rank,
        ctx.world_size,
        sizes=[1, 1000, 100000],
        dtypes=(torch.float32, torch.float16, torch.uint16),
        warmup=1,
        repeats=3,
        on_row=seen.append,
    )
    budgeted = allreduce.run(
        ctx.rank,
        ctx.world_size,
        sizes=[1, 1000, 100000],
        dtypes=(torch.float32,),
        warmup=0,
        repeats=2,
        memory_budget=10**9 if ctx.rank == 0 else 4000,
    )
    return {"rows": rows, "seen": len(seen), "budgeted": budgeted}


def main() -> None:
    scenario, out = sys.argv[1], Path(sys.argv[2])
    ctx = distributed.init(timeout=30)
    try:
        result = {"agree": agree, "bench": bench}[scenario](ctx, out)
        (out / f"rank{ctx.rank}.json").write_text(json.dumps(result))
    finally:
        distributed.destroy()


if __name__ == "__main__":
    main()
