"""Gradient averaging across ranks: one all-reduce of one flattened buffer."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import nullcontext

import torch
import torch.distributed as dist
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from mlbench_core.worker.distributed import collective
from mlbench_core.worker.tracker import PhaseTracker

__all__ = ["all_reduce_sum", "average_gradients", "broadcast_parameters"]


def average_gradients(
    parameters: Iterable[torch.nn.Parameter],
    tracker: PhaseTracker | None = None,
    extra: Sequence[float] = (),
) -> list[float]:
    """Replace each gradient by its mean over all ranks (timed as ``communication``).

    Parameters without a gradient count as zero, so every rank reduces the same buffer.
    ``extra`` numbers ride in the same all-reduce and come back summed over the ranks (the
    training loop sends its loss this way instead of with a collective of its own).
    """
    params = [p for p in parameters if p.requires_grad]
    world_size = dist.get_world_size()
    if world_size == 1 or not params:
        return list(extra)
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params]
    tensors = grads + ([torch.tensor(extra, dtype=grads[0].dtype)] if extra else [])
    flat = _flatten_dense_tensors(tensors)
    with tracker.phase("communication") if tracker else nullcontext(), collective():
        dist.all_reduce(flat)
    summed = flat[flat.numel() - len(extra) :].tolist() if extra else []
    flat.div_(world_size)
    for grad, synced in zip(grads, _unflatten_dense_tensors(flat, tensors), strict=False):
        grad.copy_(synced)
    return summed


def all_reduce_sum(values: list[float], device: torch.device | None = None) -> list[float]:
    """The element-wise sums of ``values`` over all ranks (float64)."""
    buffer = torch.tensor(values, dtype=torch.float64, device=device)
    if dist.get_world_size() > 1:
        with collective():
            dist.all_reduce(buffer)
    return buffer.tolist()


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers."""
    if dist.get_world_size() == 1:
        return
    with collective():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)
