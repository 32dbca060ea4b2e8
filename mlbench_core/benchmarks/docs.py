"""The benchmark table of the docs, generated from the registry.

``python -m mlbench_core.benchmarks.docs > docs/benchmarks.md`` (a test checks that the file is
up to date).
"""

from __future__ import annotations

from mlbench_core.benchmarks.registry import REGISTRY, BenchmarkSpec
from mlbench_core.engine.goals import Goal

__all__ = ["render"]


def _goal(goal: Goal | None) -> str:
    if goal is None:
        return "-"
    sign = ">=" if goal.higher_is_better else "<="
    return f"{goal.metric} {sign} {goal.target:g}"


def _optimizer(spec: BenchmarkSpec) -> str:
    opt = spec.optimizer
    if opt is None:
        return "-"
    parts = [f"{opt.name.upper()} lr {opt.lr:g}"]
    if opt.momentum:
        parts.append(f"{'Nesterov ' if opt.nesterov else ''}momentum {opt.momentum:g}")
    if opt.weight_decay:
        parts.append(f"weight decay {opt.weight_decay:g}")
    return ", ".join(parts)


def _schedule(spec: BenchmarkSpec) -> str:
    if spec.optimizer is None:
        return "-"
    s = spec.schedule
    parts = []
    if s.scale_with_workers:
        parts.append("lr x workers")
    if s.warmup_epochs:
        parts.append(f"{s.warmup_epochs:g}-epoch warm-up")
    if s.milestones:
        epochs = ", ".join(str(m) for m in s.milestones)
        parts.append(f"x{s.gamma:g} at epochs {epochs}")
    return "; ".join(parts) or "constant"


def render() -> str:
    """Markdown: one table of all benchmarks, then each benchmark's hyperparameters and notes."""
    lines = [
        "# Benchmarks",
        "",
        "Generated from `mlbench_core/benchmarks/registry.py` by "
        "`python -m mlbench_core.benchmarks.docs`; do not edit by hand.",
        "",
        "| id | benchmark | model | dataset | goal | light goal | batch / worker | epochs "
        "| optimizer | schedule | aggregation | backends |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for spec in REGISTRY.values():
        aggregations = ", ".join(
            f"**{a}**" if a == spec.aggregation else a for a in spec.aggregations
        )
        lines.append(
            f"| `{spec.id}` | {spec.title} | {spec.model} | {spec.dataset} "
            f"| {_goal(spec.goal)} | {_goal(spec.light_goal)} | {spec.batch_size or '-'} "
            f"| {spec.epochs or '-'} | {_optimizer(spec)} | {_schedule(spec)} "
            f"| {aggregations or '-'} | {', '.join(spec.backends)} |"
        )
    for spec in REGISTRY.values():
        lines += ["", f"## `{spec.id}`: {spec.title}", ""]
        if spec.hyperparameters:
            pairs = ", ".join(f"{k} = {v}" for k, v in spec.hyperparameters.items())
            lines += [f"Hyperparameters: {pairs}. Seed {spec.seed}. Image `{spec.image}`.", ""]
        lines += [f"- {note}" for note in spec.notes]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
