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


JSON = {"wire": "json"}


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (PodIn, {"rank": False}, "rank"),
        (PodIn, {"run_id": "1"}, "run_id"),
        (PodIn, {"labels": '{"a": "b"}'}, "labels"),
        (MetricIn, {"run_id": True, "name": "a", "value": 1}, "run_id"),
        (MetricIn, {"run_id": 1, "name": "a", "value": 1, "cumulative": 0}, "cumulative"),
        (MetricIn, {"run_id": 1, "name": "a", "value": " 1.5"}, "value"),
        (MetricIn, {"run_id": 1, "name": "a", "value": "1e999"}, "value"),
        (MetricIn, {"run_id": 1, "name": "   ", "value": 1}, "name"),
        (RunCreate, {"name": "a", "num_workers": "1"}, "num_workers"),
        (RunCreate, {"name": "a", "num_workers": 1, "oversubscribe": 1}, "oversubscribe"),
        (RunCreate, {"name": "a", "num_workers": 1, "epochs": ""}, "epochs"),
    ],
)
def test_a_json_bodys_values_are_taken_as_typed(model, body, field):
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body, context={**CONTEXT, **JSON})
    assert field in caught.value.errors()[0]["loc"]


def test_forms_keep_their_lenient_readings():
    pod = PodIn.model_validate({"rank": "0", "run_id": "1", "ip": "", "labels": '{"a": "b"}'})
    assert (pod.rank, pod.run_id, pod.ip, pod.labels) == (0, 1, None, {"a": "b"})
    run = RunCreate.model_validate(
        {"name": "a", "num_workers": "1", "oversubscribe": "true", "epochs": ""}, context=CONTEXT
    )
    assert (run.num_workers, run.oversubscribe, run.epochs) == (1, True, None)


def test_json_integers_may_be_written_as_integral_floats_and_values_as_decimal_text():
    metric = MetricIn.model_validate({"run_id": 3.0, "name": "a", "value": "0.7845"}, context=JSON)
    assert (metric.run_id, metric.value) == (3, 0.7845)  # the original API's example
    with pytest.raises(ValidationError, match="run_id"):
        MetricIn.model_validate({"run_id": 3.5, "name": "a", "value": 1}, context=JSON)


def test_free_form_objects_are_stored_as_given_even_with_nul_but_text_fields_refuse_it():
    from mlbench_core.api.schemas import RunRecord

    assert RunRecord.model_validate({"record": {"a\x00": ["b\x00"]}}, context=JSON).record == {
        "a\x00": ["b\x00"]
    }
    with pytest.raises(ValidationError, match="pattern"):
        PodIn.model_validate({"node": "n\x00"}, context=JSON)
    with pytest.raises(ValidationError, match="finite"):
        RunRecord.model_validate({"record": {"a": [float("nan")]}}, context=JSON)
