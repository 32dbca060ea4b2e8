"""``mlbench run --tag``, ``mlbench tag`` and ``mlbench status --tag`` against the live API."""

from __future__ import annotations

import pytest

from mlbench_core.api import ApiClient


@pytest.fixture
def client(live_server, admin_token, cli_env):
    with ApiClient(f"{live_server}/mlbench", token=admin_token) as api:
        yield api


def listed(result) -> list[str]:  # noqa: ANN001
    assert result.code == 0, result.err
    return [name for name in ("alpha", "beta", "gamma") if name in result.out]


def test_tags_set_from_the_cli_are_stored_and_filter_the_list(mlbench, client):
    made = mlbench("run", "alpha", "--benchmark", "1a", "--workers", "1",
                   "--tag", "baseline", "--tag", "pr-7", "--note", "the reference")  # fmt: skip
    assert made.code == 0, made.err
    [alpha] = client.get_runs()
    assert alpha["tags"] == ["baseline", "pr-7"] and alpha["note"] == "the reference"
    client.create_run("beta", 1, benchmark="3a", tags=["pr-7"])
    client.create_run("gamma", 1, benchmark="1a")
    assert listed(mlbench("status", "--tag", "pr-7")) == ["alpha", "beta"]
    assert listed(mlbench("status", "--tag", "pr-7", "--tag", "baseline")) == ["alpha"]
    assert listed(mlbench("status", "--benchmark", "1a")) == ["alpha", "gamma"]
    assert listed(mlbench("status", "--state", "finished")) == []
    assert "no runs match" in mlbench("status", "--tag", "none-such").out

    tagged = mlbench("tag", "gamma", "pr-7", "slow", "--note", "why so slow?")
    assert tagged.code == 0, tagged.err
    assert "gamma: tags pr-7, slow" in tagged.out and "note: why so slow?" in tagged.out
    assert listed(mlbench("status", "--tag", "pr-7")) == ["alpha", "beta", "gamma"]
    removed = mlbench("tag", "alpha", "--remove", "pr-7", "--note", "")
    assert removed.code == 0, removed.err
    [alpha] = client.get_runs(tags=["baseline"])
    assert (alpha["name"], alpha["tags"], alpha["note"]) == ("alpha", ["baseline"], None)
    shown = mlbench("status", "alpha")
    assert "baseline" in shown.out
    assert mlbench("tag", "beta").out.strip() == "beta: tags pr-7"  # no change: shows them


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tag", "alpha", "two words"), "TAG:"),
        (("tag", "alpha", "x" * 41), "TAG:"),
        (("tag", "nobody", "x"), "no run named 'nobody'"),
        (("run", "delta", "--workers", "1", "--tag", "a,b"), "--tag:"),
    ],
)
def test_bad_tags_are_one_line_and_change_nothing(mlbench, client, args, message):
    client.create_run("alpha", 1, benchmark="1a", tags=["kept"])
    result = mlbench(*args)
    assert result.code != 0
    [line] = result.err.splitlines()
    assert message in line, line
    assert [(r["name"], r["tags"]) for r in client.get_runs()] == [("alpha", ["kept"])]
