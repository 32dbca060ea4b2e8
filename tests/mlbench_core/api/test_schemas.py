"""Wire schemas: what the server accepts, and how form strings are read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from mlbench_core.api.schemas import MetricIn, PodIn, RunCreate

CONTEXT = {"max_workers": 8, "benchmarks": {"1a", "2a"}, "default_benchmark": "1a"}


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("True", True), ("false", False), ("False", False)]
)
def test_form_booleans(text, value):
    assert (
        MetricIn.model_validate(
            {"run_id": "1", "name": "a", "value": "2", "cumulative": text}
        ).cumulative
        is value
    )


def test_dates_are_utc():
    offset = MetricIn(
        run_id=1,
        name="a",
        value=1,
        date=datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))),
    )
    naive = MetricIn(run_id=1, name="a", value=1, date=datetime(2026, 1, 1))
    assert offset.date == naive.date == datetime(2026, 1, 1, tzinfo=UTC)
    assert offset.date.tzinfo is UTC


def test_metadata_objects_become_json_text_and_empty_text_none():
    assert (
        MetricIn(run_id=1, name="a", value=1, metadata={"b": 1, "a": 2}).metadata
        == '{"a": 2, "b": 1}'
    )
    assert MetricIn(run_id=1, name="a", value=1, metadata="").metadata is None


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", float("nan"), "1,5", True])
def test_non_finite_or_non_numeric_values_are_refused(value):
    with pytest.raises(ValidationError):
        MetricIn.model_validate({"run_id": 1, "name": "a", "value": value})


def test_run_context_rules():
    run = RunCreate.model_validate({"name": "a", "num_workers": 8}, context=CONTEXT)
    assert run.benchmark == "1a"
    with pytest.raises(ValidationError, match="at most 8"):
        RunCreate.model_validate({"name": "a", "num_workers": 9}, context=CONTEXT)
    with pytest.raises(ValidationError, match="valid: 1a, 2a"):
        RunCreate.model_validate(
            {"name": "a", "num_workers": 1, "benchmark": "3a"}, context=CONTEXT
        )
    with pytest.raises(ValidationError, match="benchmark or image_name"):
        RunCreate.model_validate({"name": "a", "num_workers": 1})


def test_empty_form_fields_mean_absent():
    run = RunCreate.model_validate(
        {"name": "a", "num_workers": "1", "max_bandwidth": "", "benchmark": "1a", "image_name": ""},
        context=CONTEXT,
    )
    assert run.max_bandwidth is None and run.image_name is None


def test_pod_phases_are_kubernetes_phases():
    assert PodIn(phase="Succeeded").phase == "Succeeded"
    with pytest.raises(ValidationError, match="Pending"):
        PodIn(phase="Done")
