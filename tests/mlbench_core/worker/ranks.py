"""Scenarios run by each rank of a real process group (started by the tests, one process per
rank): ``python -m tests.mlbench_core.worker.ranks SCENARIO OUTDIR``. Each rank writes what it
saw to ``OUTDIR/rank<R>.pt`` or ``.json``."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import torch

from mlbench_core.benchmarks import digits
from mlbench_core.benchmarks.registry import Goal
from mlbench_core.worker import distributed
from mlbench_core.worker.aggregation import average_gradients
from mlbench_core.worker.tracker import PhaseTracker
from mlbench_core.worker.trainer import TaskContext, train


def aggregate(ctx: distributed.DistContext, out: Path) -> None:
    """Rank-specific gradients, then one averaging; one parameter never gets a gradient."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Linear(4, 3))
    unused = torch.nn.Parameter(torch.ones(2))
    params = [*model.parameters(), unused]
    generator = torch.Generator().manual_seed(1000 + ctx.rank)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=generator)
    before = [p.grad.clone() for p in model.parameters()]
    tracker = PhaseTracker()
    average_gradients(params, tracker)
    torch.save(
        {
            "before": before,
            "after": [p.grad for p in params],
            "communication": tracker.totals["communication"],
        },
        out / f"rank{ctx.rank}.pt",
    )


def stop_by_rank0(ctx: distributed.DistContext, out: Path, variant: str) -> None:
    """Ranks disagree on goal and epochs: rank 0's decision must stop every rank."""
    task = digits.build(TaskContext(rank=ctx.rank, world_size=ctx.world_size, epochs=6))
    if variant == "goal":  # only rank 0 has a (trivial) goal
        goal = Goal(metric="val_accuracy", target=0.0) if ctx.rank == 0 else None
        task = dataclasses.replace(task, goal=goal)
    else:  # "epochs": no goal; rank 0 allows fewer epochs
        task = dataclasses.replace(task, goal=None, epochs=2 if ctx.rank == 0 else 6)
    result = train(task, ctx, echo=lambda line: None)
    (out / f"rank{ctx.rank}.json").write_text(json.dumps(result))


def main() -> None:
    scenario, out = sys.argv[1], Path(sys.argv[2])
    ctx = distributed.init(timeout=30)
    try:
        if scenario == "aggregate":
            aggregate(ctx, out)
        else:
            stop_by_rank0(ctx, out, scenario.removeprefix("stop-"))
    finally:
        distributed.destroy()


if __name__ == "__main__":
    main()
