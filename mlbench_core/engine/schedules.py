"""Learning-rate schedules, stepped once per iteration (call ``step()`` after each
``optimizer.step()``).

Each schedule is a ``torch.optim.lr_scheduler.LambdaLR`` whose factor of the optimiser's
base learning rate comes from a small picklable object, so ``state_dict()`` and
``load_state_dict()`` carry both the position and the schedule's parameters through a
checkpoint. Milestones and warm-up are given in epochs and turned into iterations with
``steps_per_epoch``.

The reference ResNet-20/CIFAR-10 schedule, from the original mlbench 1a config: the single
worker learning rate ``eta`` scaled linearly with the number of workers ``k`` (Goyal et al.,
"Accurate, Large Minibatch SGD", 2017) by a linear warm-up from ``eta`` to ``k * eta`` over the
first 5 epochs, then divided by 10 after epochs 82 and 109 of 164.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

__all__ = [
    "RESNET20_EPOCHS",
    "RESNET20_MILESTONES",
    "RESNET20_WARMUP_EPOCHS",
    "SCHEDULES",
    "WarmupMultiStep",
    "build",
    "constant",
    "resnet20_schedule",
    "unscheduled",
    "warmup_multistep",
]

RESNET20_EPOCHS = 164
RESNET20_WARMUP_EPOCHS = 5
RESNET20_MILESTONES = (82, 109)
RESNET20_GAMMA = 0.1


class WarmupMultiStep:
    """The factor of the base learning rate at iteration ``step`` (0 before the first update).

    It rises linearly from 1 at step 0 to ``scale`` at the end of ``warmup_epochs``, stays at
    ``scale``, and is multiplied by ``gamma`` from the start of each epoch in ``milestones``
    (epoch counts: 82 means after 82 whole epochs). ``warmup_epochs=0`` starts at ``scale``.
    """

    def __init__(
        self,
        steps_per_epoch: int,
        *,
        scale: float = 1.0,
        warmup_epochs: float = 0.0,
        milestones: Sequence[float] = (),
        gamma: float = 0.1,
    ) -> None:
        if steps_per_epoch < 1:
            raise ValueError("steps_per_epoch must be at least 1")
        if scale <= 0 or gamma <= 0:
            raise ValueError("scale and gamma must be positive")
        if warmup_epochs < 0 or any(m < 0 for m in milestones):
            raise ValueError("warm-up and milestones cannot be negative")
        self.scale = float(scale)
        self.gamma = float(gamma)
        self.warmup_steps = round(warmup_epochs * steps_per_epoch)
        self.milestone_steps = tuple(sorted(round(m * steps_per_epoch) for m in milestones))

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            factor = 1.0 + (self.scale - 1.0) * step / self.warmup_steps
        else:
            factor = self.scale
        decays = sum(1 for m in self.milestone_steps if step >= m)
        return factor * self.gamma**decays


def warmup_multistep(
    optimizer: Optimizer,
    *,
    steps_per_epoch: int,
    scale: float = 1.0,
    warmup_epochs: float = RESNET20_WARMUP_EPOCHS,
    milestones: Sequence[float] = RESNET20_MILESTONES,
    gamma: float = RESNET20_GAMMA,
) -> LambdaLR:
    """Linear warm-up from the base rate to ``scale`` times it, then step decay by ``gamma``."""
    return LambdaLR(
        optimizer,
        WarmupMultiStep(
            steps_per_epoch,
            scale=scale,
            warmup_epochs=warmup_epochs,
            milestones=milestones,
            gamma=gamma,
        ),
    )


def constant(optimizer: Optimizer, *, scale: float = 1.0) -> LambdaLR:
    """``scale`` times the base rate throughout (the scaling rule without warm-up)."""
    return LambdaLR(optimizer, WarmupMultiStep(1, scale=scale))


def unscheduled(optimizer: Optimizer) -> LambdaLR:
    """The optimiser's own learning rate, unchanged (the "none" schedule)."""
    return LambdaLR(optimizer, WarmupMultiStep(1))


def resnet20_schedule(optimizer: Optimizer, *, steps_per_epoch: int, world_size: int) -> LambdaLR:
    """The original mlbench 1a schedule for ResNet-20 on CIFAR-10 with ``world_size`` workers:
    5 warm-up epochs to ``world_size`` times the base rate, x0.1 after epochs 82 and 109."""
    return warmup_multistep(optimizer, steps_per_epoch=steps_per_epoch, scale=world_size)


SCHEDULES = ("warmup-multistep", "constant", "none")


def build(
    name: str,
    optimizer: Optimizer,
    *,
    steps_per_epoch: int = 1,
    scale: float = 1.0,
    warmup_epochs: float = RESNET20_WARMUP_EPOCHS,
    milestones: Sequence[float] = RESNET20_MILESTONES,
    gamma: float = RESNET20_GAMMA,
) -> LambdaLR:
    """The schedule called ``name`` (one of ``SCHEDULES``); arguments it does not use are
    ignored."""
    if name == "warmup-multistep":
        return warmup_multistep(
            optimizer,
            steps_per_epoch=steps_per_epoch,
            scale=scale,
            warmup_epochs=warmup_epochs,
            milestones=milestones,
            gamma=gamma,
        )
    if name == "constant":
        return constant(optimizer, scale=scale)
    if name == "none":
        return unscheduled(optimizer)
    raise ValueError(f"unknown schedule {name!r}; known: {', '.join(SCHEDULES)}")
