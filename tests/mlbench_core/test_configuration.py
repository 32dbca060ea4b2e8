"""A run's configuration key: what sets runs apart, and groups that never pool them."""

from __future__ import annotations

from mlbench_core.configuration import configuration, describe, differing, groups


def _run(**fields) -> dict:
    return {"benchmark": "1a", "num_workers": 2, "num_cpus": 1.0, "backend": "gloo",
            "state": "FINISHED", **fields}  # fmt: skip


def test_the_key_has_every_field_that_changes_what_numbers_mean():
    record = {"versions": {"torch": "2.13.0", "mlbench": "0.9"}}
    config = configuration(_run(max_bandwidth=100, settings={"lr": 0.2}, epochs=3, record=record))
    assert config == {
        "benchmark": "1a", "goal": "full", "workers": "2", "cpus": "1", "bandwidth": "100 Mbit/s",
        "backend": "gloo", "aggregation": "allreduce", "data": "real",
        "overrides": "epochs=3, lr=0.2", "software": "mlbench 0.9, torch 2.13.0",
    }  # fmt: skip
    assert configuration(_run(synthetic=True))["goal"] == "none"
    assert configuration(_run(light_target=True))["goal"] == "light"
    # a seed or a name only repeats a configuration
    assert configuration(_run(seed=1, name="a")) == configuration(_run(seed=2, name="b"))


def test_differing_names_exactly_the_keys_that_differ():
    runs = [_run(), _run(num_workers=4), _run(num_cpus=2.0, num_workers=4)]
    assert differing(runs) == ["workers", "cpus"]
    assert differing([_run(), _run(seed=5)]) == []


def test_groups_never_pool_other_goals_and_describe_what_sets_them_apart():
    runs = [_run(num_workers=1), _run(num_workers=2), _run(light_target=True),
            _run(synthetic=True), _run(synthetic=True, num_workers=4)]  # fmt: skip
    found = groups(runs, ["workers"])
    assert [len(g.runs) for g in found] == [2, 2, 1]
    assert [g.fixed["goal"] for g in found] == ["full", "none", "light"]
    assert describe(found[0], found) == "goal full, data real"
    assert describe(found[2], found) == "goal light, data real"
    alone = groups(runs[:2], ["workers"])
    assert describe(alone[0], alone) == "benchmark 1a"
    assert len(groups(runs, ["workers", "goal", "data"])) == 1
