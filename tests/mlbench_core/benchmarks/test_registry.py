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


def test_every_training_benchmark_has_a_builder_and_a_full_spec():
    from mlbench_core.engine.aggregation import AGGREGATORS

    for spec in REGISTRY.values():
        if spec.kind == "communication":
            assert spec.goal is None and spec.optimizer is None
            continue
        assert callable(spec.load()), spec.id
        assert spec.optimizer is not None and spec.batch_size and spec.epochs, spec.id
        assert spec.goal is not None and spec.goal.metric == f"val_{spec.metric}", spec.id
        assert spec.aggregation in spec.aggregations, spec.id
        assert set(spec.aggregations) <= set(AGGREGATORS), spec.id
        assert spec.notes, spec.id


def test_the_docs_table_is_generated_from_the_registry():
    from pathlib import Path

    from mlbench_core.benchmarks.docs import render

    docs = Path(__file__).resolve().parents[3] / "docs" / "benchmarks.md"
    assert docs.read_text() == render(), "run: python -m mlbench_core.benchmarks.docs > " + str(
        docs
    )
    for spec in REGISTRY.values():
        assert f"`{spec.id}`" in docs.read_text()
