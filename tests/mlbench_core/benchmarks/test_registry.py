"""The benchmark registry."""

from __future__ import annotations

import pytest

from mlbench_core.benchmarks import DEFAULT_BENCHMARK, REGISTRY, get_benchmark


def test_ids_are_unique_keys_and_default_exists():
    assert all(key == spec.id for key, spec in REGISTRY.items())
    assert DEFAULT_BENCHMARK in REGISTRY


def test_goals_light_is_easier_than_full():
    for spec in REGISTRY.values():
        if spec.goal is None:
            continue
        full, light = spec.goal, spec.light_goal
        assert light is not None and light.metric == full.metric
        easier = light.target < full.target if full.higher_is_better else light.target > full.target
        assert easier, spec.id


def test_unknown_id_names_the_valid_ones():
    with pytest.raises(KeyError, match="0a, 1a, 2a, 3a"):
        get_benchmark("nope")
