"""The training loop's stop decision: rank 0 decides, every rank stops at the same epoch."""

from __future__ import annotations

import json

import pytest

from tests.support.rank_group import Group


@pytest.mark.parametrize(
    ("variant", "epochs", "reached"), [("goal", 1, True), ("epochs", 2, False)]
)
def test_rank0s_decision_stops_all_ranks_at_the_same_epoch(tmp_path, variant, epochs, reached):
    args = ["-m", "tests.support.ranks", f"stop-{variant}", str(tmp_path)]
    with Group(args, 2, tmp_path) as group:
        assert group.wait(60) == [0, 0], group.output()
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["epochs"] for r in results] == [epochs, epochs]
    assert [r["reached"] for r in results] == [reached, reached]
    # Both ranks validated the same global metric.
    assert results[0]["final"] == results[1]["final"]
    assert set(results[0]["split"]) == {"data_loading_s", "compute_s", "communication_s"}
