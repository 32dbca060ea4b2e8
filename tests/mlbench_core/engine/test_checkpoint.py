"""Checkpoints: atomic save, pruning, damaged files, exact resume, agreement across ranks."""

from __future__ import annotations

import json
import random
from datetime import datetime

import numpy as np
import pytest
import torch

from mlbench_core.engine import checkpoint
from mlbench_core.engine.checkpoint import CheckpointError
from tests.support.rank_group import Group
from tests.support.suite_ranks import damage


def _build(seed: int):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(8, 1)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    return model, optimizer, scheduler


def _step(model, optimizer, scheduler) -> None:
    """One training step drawing from all three generators (data, dropout, weights)."""
    model.train()
    x = torch.randn(16, 4)
    y = torch.full((16,), float(np.random.rand()))
    weight = random.random()
    loss = ((model(x).squeeze(-1) - y) ** 2).mean() * weight
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _draws() -> tuple:
    return (torch.rand(3).tolist(), random.random(), float(np.random.rand()))


def _save(directory, epoch, model, optimizer, scheduler=None, **kw):
    return checkpoint.save(
        directory,
        rank=0,
        epoch=epoch,
        step=epoch * 10,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        **kw,
    )


def test_resume_continues_the_same_run(tmp_path):
    # Uninterrupted: 4 steps.
    _seed(7)
    straight = _build(1)
    for _ in range(4):
        _step(*straight)
    straight_draws = _draws()

    # Interrupted: 2 steps, save, the process "dies" (state scrambled), new objects, load, 2.
    _seed(7)
    first = _build(1)
    for _ in range(2):
        _step(*first)
    file = checkpoint.save(
        tmp_path,
        rank=0,
        epoch=2,
        step=2,
        model=first[0],
        optimizer=first[1],
        scheduler=first[2],
        extra={"elapsed_s": 1.5, "reached": False, "totals": {"compute": 0.25}},
    )
    assert file == tmp_path / "rank-0" / "epoch-00002.pt"
    _seed(12345)
    _draws()
    again = _build(99)
    state = checkpoint.load(file, model=again[0], optimizer=again[1], scheduler=again[2])
    assert (state.epoch, state.step, state.path) == (2, 2, file)
    assert state.extra == {"elapsed_s": 1.5, "reached": False, "totals": {"compute": 0.25}}
    assert again[2].last_epoch == 2
    for _ in range(2):
        _step(*again)

    for a, b in zip(straight[0].parameters(), again[0].parameters(), strict=True):
        assert torch.equal(a, b)
    assert straight[1].state_dict()["state"][0]["step"] == again[1].state_dict()["state"][0]["step"]
    assert straight[2].get_last_lr() == again[2].get_last_lr()
    assert _draws() == straight_draws


def test_the_file_loads_without_unpickling_code(tmp_path):
    model, optimizer, scheduler = _build(0)
    _step(model, optimizer, scheduler)
    extra = {"t": torch.arange(3), "pair": (1, "a"), "blob": b"\x00", "none": None}
    file = _save(tmp_path, 1, model, optimizer, scheduler, extra=extra)
    payload = torch.load(file, weights_only=True)  # raises for anything but plain data
    assert payload["epoch"] == 1 and payload["step"] == 10
    assert set(payload["rng"]) == {"torch", "python", "numpy", "cuda"}
    back = checkpoint.load(file, model=model, optimizer=optimizer, scheduler=scheduler).extra
    assert torch.equal(back["t"], torch.arange(3))
    assert back["pair"] == (1, "a") and back["blob"] == b"\x00" and back["none"] is None


def test_extra_must_be_plain_data(tmp_path):
    model, optimizer, _ = _build(0)
    with pytest.raises(TypeError, match=r"extra\['when'\] is a datetime"):
        _save(tmp_path, 1, model, optimizer, extra={"when": datetime.now()})
    with pytest.raises(TypeError, match="Path"):
        _save(tmp_path, 1, model, optimizer, extra={"nested": [{"p": tmp_path}]})
    assert not (tmp_path / "rank-0").exists()  # checked before anything is written


def test_keeps_the_newest_and_drops_an_abandoned_future(tmp_path):
    model, optimizer, _ = _build(0)
    for epoch in range(1, 6):
        _save(tmp_path, epoch, model, optimizer, keep=2)
    assert checkpoint.epochs(tmp_path, 0) == [4, 5]
    _save(tmp_path, 3, model, optimizer, keep=3)  # resumed from an older common epoch
    assert checkpoint.epochs(tmp_path, 0) == [3]
    _save(tmp_path, 4, model, optimizer, keep=3)
    assert checkpoint.epochs(tmp_path, 0) == [3, 4]
    with pytest.raises(ValueError, match="keep"):
        _save(tmp_path, 5, model, optimizer, keep=0)
    # Ranks keep their own folders.
    checkpoint.save(tmp_path, rank=1, epoch=9, step=0, model=model, optimizer=optimizer)
    assert checkpoint.epochs(tmp_path, 0) == [3, 4]
    assert checkpoint.latest(tmp_path, 1) == tmp_path / "rank-1" / "epoch-00009.pt"


def test_partial_and_foreign_files_are_never_picked(tmp_path):
    model, optimizer, _ = _build(0)
    _save(tmp_path, 1, model, optimizer)
    good = _save(tmp_path, 2, model, optimizer, keep=5)
    folder = tmp_path / "rank-0"
    # An interrupted save leaves a temporary file; a truncated copy; a file of garbage.
    (folder / ".tmp-epoch-00003.pt.abc").write_bytes(good.read_bytes()[:100])
    (folder / "epoch-00003.pt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (folder / "epoch-00004.pt").write_text("not a checkpoint")
    (folder / "epoch-x.pt").write_bytes(good.read_bytes())
    assert checkpoint.latest(tmp_path, 0) == good
    assert checkpoint.epochs(tmp_path, 0) == [1, 2]
    assert checkpoint.latest(tmp_path, 7) is None
    with pytest.raises(CheckpointError, match="cannot read"):
        checkpoint.load(folder / "epoch-00003.pt", model=model, optimizer=optimizer)
    # The next save clears the temporary file and replaces the broken ones.
    _save(tmp_path, 3, model, optimizer, keep=5)
    assert not list(folder.glob(".tmp-*"))
    assert checkpoint.epochs(tmp_path, 0) == [1, 2, 3]
    assert not (folder / "epoch-00004.pt").exists()  # a "later" epoch: abandoned


def test_damaged_files_restore_nothing(tmp_path):
    model, optimizer, scheduler = _build(0)
    file = _save(tmp_path, 1, model, optimizer)
    damage(file)
    assert checkpoint.latest(tmp_path, 0) == file  # the cheap check cannot tell...
    other, other_opt, _ = _build(5)
    before = [p.clone() for p in other.parameters()]
    with pytest.raises(CheckpointError, match="checksum"):  # ...the full one can
        checkpoint.load(file, model=other, optimizer=other_opt)
    assert all(torch.equal(a, b) for a, b in zip(before, other.parameters(), strict=True))

    with pytest.raises(CheckpointError, match="no checkpoint"):
        checkpoint.load(tmp_path / "missing.pt", model=model, optimizer=optimizer)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.ones(2)}, foreign)
    with pytest.raises(CheckpointError, match="not an mlbench checkpoint"):
        checkpoint.load(foreign, model=model, optimizer=optimizer)
    plain = _save(tmp_path, 2, model, optimizer)  # saved without a scheduler
    with pytest.raises(CheckpointError, match="no scheduler state"):
        checkpoint.load(plain, model=model, optimizer=optimizer, scheduler=scheduler)


def test_agreement_is_trivial_alone(tmp_path):
    assert checkpoint.agree(3) == 3
    assert checkpoint.agree(None) is None
    assert checkpoint.newest_common([2, 5, 3]) == 5
    assert checkpoint.newest_common([]) is None
    with pytest.raises(ValueError):
        checkpoint.agree(-1)
    model, optimizer, _ = _build(0)
    assert checkpoint.resume(tmp_path, rank=0, model=model, optimizer=optimizer) is None
    _save(tmp_path, 1, model, optimizer)
    last = _save(tmp_path, 2, model, optimizer)
    damage(last)
    resumed = checkpoint.resume(tmp_path, rank=0, model=model, optimizer=optimizer)
    assert resumed is not None and resumed.epoch == 1  # the damaged newest one is passed over


def test_ranks_agree_on_the_newest_common_epoch(tmp_path):
    with Group(["-m", "tests.support.suite_ranks", "agree", str(tmp_path)], 2, tmp_path) as group:
        assert group.wait(60) == [0, 0], group.output()
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    # Rank 1's epoch 3 is truncated: its latest is 2, and both agree on 2.
    assert (rank0["latest"], rank1["latest"]) == (3, 2)
    assert rank0["agreed"] == rank1["agreed"] == 2
    assert rank0["common"] == rank1["common"] == 2
    assert rank0["nobody"] is None and rank1["nobody"] is None
    assert rank0["disjoint"] is None and rank1["disjoint"] is None
    # Rank 1's epoch 2 is damaged inside: both ranks resume from epoch 1, each its own file.
    assert rank0["resumed_epoch"] == rank1["resumed_epoch"] == 1
    assert rank0["resumed_extra"] == rank1["resumed_extra"] == {"epoch_seen": 1}
    assert (rank0["resumed_weight"], rank1["resumed_weight"]) == (1.0, 11.0)
