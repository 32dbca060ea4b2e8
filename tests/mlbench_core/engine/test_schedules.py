"""Learning-rate schedules: warm-up, step decay, the ResNet-20 preset, checkpoint resume."""

from __future__ import annotations

import io

import pytest
import torch

from mlbench_core.engine import schedules
from mlbench_core.engine.schedules import (
    WarmupMultiStep,
    constant,
    resnet20_schedule,
    unscheduled,
    warmup_multistep,
)

BASE = 0.1


def optimizer(lr: float = BASE) -> torch.optim.SGD:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr, momentum=0.9)


def rates(scheduler, opt, steps: int) -> list[float]:
    """The learning rate used by each of the next ``steps`` updates."""
    seen = []
    for _ in range(steps):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return seen


def test_warm_up_then_multistep_decay_per_iteration():
    opt = optimizer()
    scheduler = warmup_multistep(
        opt, steps_per_epoch=10, scale=4, warmup_epochs=5, milestones=(8, 9), gamma=0.1
    )
    lr = rates(scheduler, opt, 100)
    assert lr[0] == pytest.approx(BASE)  # warm-up starts at the base rate
    assert lr[1] == pytest.approx(BASE * (1 + 3 / 50))  # ... rises every iteration
    assert lr[25] == pytest.approx(BASE * 2.5)  # halfway: 1 + 3 * 0.5
    assert lr[50] == pytest.approx(BASE * 4)  # reaches scale x base after 5 epochs
    assert lr[79] == pytest.approx(BASE * 4)
    assert lr[80] == pytest.approx(BASE * 0.4)  # x0.1 after 8 epochs
    assert lr[89] == pytest.approx(BASE * 0.4)
    assert lr[90] == pytest.approx(BASE * 0.04)  # and again after 9
    assert lr[99] == pytest.approx(BASE * 0.04)
    assert all(a <= b for a, b in zip(lr[:50], lr[1:51], strict=True))


def test_resnet20_preset_is_the_original_mlbench_1a_schedule():
    assert schedules.RESNET20_EPOCHS == 164
    assert schedules.RESNET20_WARMUP_EPOCHS == 5
    assert schedules.RESNET20_MILESTONES == (82, 109)
    opt = optimizer()
    scheduler = resnet20_schedule(opt, steps_per_epoch=3, world_size=8)
    lr = rates(scheduler, opt, 164 * 3)
    assert lr[0] == pytest.approx(BASE)
    assert lr[15] == pytest.approx(BASE * 8)
    assert lr[82 * 3 - 1] == pytest.approx(BASE * 8)
    assert lr[82 * 3] == pytest.approx(BASE * 0.8)
    assert lr[109 * 3] == pytest.approx(BASE * 0.08)
    assert lr[-1] == pytest.approx(BASE * 0.08)


def test_one_worker_has_no_warm_up_to_do():
    factor = WarmupMultiStep(10, scale=1, warmup_epochs=5, milestones=(2,))
    assert [factor(t) for t in (0, 5, 19)] == [1.0, 1.0, 1.0]
    assert factor(20) == pytest.approx(0.1)


def test_constant_and_none():
    opt = optimizer()
    assert rates(constant(opt, scale=3), opt, 5) == pytest.approx([BASE * 3] * 5)
    opt = optimizer()
    assert rates(unscheduled(opt), opt, 5) == pytest.approx([BASE] * 5)


def test_build_by_name():
    opt = optimizer()
    scheduler = schedules.build("warmup-multistep", opt, steps_per_epoch=2, scale=2)
    assert rates(scheduler, opt, 11)[10] == pytest.approx(BASE * 2)
    assert schedules.build("constant", optimizer(), scale=2).get_last_lr() == [BASE * 2]
    assert schedules.build("none", optimizer(), scale=2).get_last_lr() == [BASE]
    with pytest.raises(ValueError, match="known"):
        schedules.build("cosine", optimizer())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"steps_per_epoch": 0},
        {"steps_per_epoch": 1, "scale": 0},
        {"steps_per_epoch": 1, "gamma": 0},
        {"steps_per_epoch": 1, "warmup_epochs": -1},
        {"steps_per_epoch": 1, "milestones": (-1,)},
    ],
)
def test_bad_parameters_are_refused(kwargs):
    steps = kwargs.pop("steps_per_epoch")
    with pytest.raises(ValueError):
        WarmupMultiStep(steps, **kwargs)


def make(opt):
    return warmup_multistep(opt, steps_per_epoch=4, scale=4, warmup_epochs=2, milestones=(5,))


def test_state_dict_round_trip_resumes_the_schedule():
    opt = optimizer()
    scheduler = make(opt)
    rates(scheduler, opt, 6)  # stop in the middle of the warm-up
    buffer = io.BytesIO()
    torch.save({"optimizer": opt.state_dict(), "scheduler": scheduler.state_dict()}, buffer)
    expected = rates(scheduler, opt, 20)  # what the uninterrupted run does next

    buffer.seek(0)
    state = torch.load(buffer)  # weights_only: the schedule's state is plain data
    resumed_opt = optimizer()
    resumed = make(resumed_opt)
    resumed_opt.load_state_dict(state["optimizer"])
    resumed.load_state_dict(state["scheduler"])
    assert resumed.last_epoch == 6
    assert rates(resumed, resumed_opt, 20) == pytest.approx(expected)
    assert expected[0] == pytest.approx(BASE * (1 + 3 * 6 / 8))
    assert expected[-1] == pytest.approx(BASE * 0.4)
