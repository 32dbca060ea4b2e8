"""Checkpoints through the worker: a run stopped after 2 epochs and restarted continues the
same run, ending exactly where an uninterrupted run ends."""

from __future__ import annotations

import json

from harness.server import free_port
from tests.support.rank_group import Group, worker_args

SLOW = ("--set", "lr=0.01")  # the goal stays out of reach in 4 epochs


def run_workers(tmp_path, name: str, *extra: str) -> tuple[dict, str]:
    """2 ranks of digits without an API (the result is printed instead of stored)."""
    env = {"MLBENCH_API_URL": f"http://127.0.0.1:{free_port()}/mlbench", "MLBENCH_API_WAIT": "1"}
    folder = tmp_path / name
    folder.mkdir()
    with Group(worker_args(1, "digits", *SLOW, *extra), 2, folder, env=env) as group:
        assert group.wait(120) == [0, 0], group.output()
    out = group.procs[0].stdout
    result = json.loads(out.split("result: ", 1)[1].splitlines()[0])
    return result, group.output()


def test_a_resumed_run_ends_where_an_uninterrupted_run_ends(tmp_path):
    straight, _ = run_workers(tmp_path, "straight", "--epochs", "4")
    checkpoints = tmp_path / "checkpoints"
    first, _ = run_workers(tmp_path, "first", "--epochs", "2", "--checkpoint-dir", str(checkpoints))
    assert first["epochs"] == 2
    assert sorted(p.name for p in (checkpoints / "rank-0").glob("*.pt")) == [
        "epoch-00001.pt",
        "epoch-00002.pt",
    ]
    resumed, output = run_workers(
        tmp_path, "resumed", "--epochs", "4", "--checkpoint-dir", str(checkpoints)
    )
    assert "rank 0: resumed after epoch 2" in output and "rank 1: resumed after epoch 2" in output
    assert "epoch 1/4" not in output and "epoch 3/4" in output
    assert resumed["epochs"] == straight["epochs"] == 4
    assert resumed["final"] == straight["final"]  # same weights, data order and randomness
    assert resumed["samples"] == straight["samples"]
    assert resumed["reached"] is straight["reached"] is False
