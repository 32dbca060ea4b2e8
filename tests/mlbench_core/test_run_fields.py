"""One declaration of a run's fields: every entry point offers the same fields with the
same types, bounds and choices (the DAG's Params: tests/dags; the dashboard's form:
tests/dashboard/test_run_form.py)."""

from __future__ import annotations

import argparse

import jsonschema
import pytest
from pydantic import ValidationError

from mlbench_core.api.schemas import JSON_BODY, RunCreate
from mlbench_core.cli import build_parser
from mlbench_core.cli.runs import FLAGS
from mlbench_core.launch.workers import ELSEWHERE, WORKER_OPTIONS, worker_command
from mlbench_core.nightly.suite import NOT_IN_ENTRIES, RUN_FIELDS, SuiteEntry
from mlbench_core.run_fields import (
    FORM_FIELDS,
    INTERNAL_FIELDS,
    choices,
    dag_conf,
    field_kind,
    form_schema,
    goal_label,
    request_schema,
    typed_settings,
    validation_context,
)
from mlbench_core.worker.__main__ import parse as parse_worker

SCHEMA = form_schema()


def kind(field: str) -> str:
    return field_kind(SCHEMA[field])


def test_the_form_fields_are_runcreate_less_what_the_system_sets():
    assert list(SCHEMA) == list(FORM_FIELDS)
    assert set(FORM_FIELDS) | set(INTERNAL_FIELDS) == set(RunCreate.model_fields)
    for field in FORM_FIELDS:
        assert SCHEMA[field]["title"] and SCHEMA[field]["description"], field
    assert SCHEMA["num_workers"]["minimum"] == 1 and SCHEMA["seed"]["maximum"] == 2**32 - 1
    assert SCHEMA["benchmark"]["enum"][0] is None and "1a" in SCHEMA["benchmark"]["enum"]
    assert "null" not in SCHEMA["name"]["type"]  # required


def _run_parser() -> argparse.ArgumentParser:
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices["run"]


def test_cli_options_are_the_run_fields_with_their_types_choices_and_help():
    actions = {a.dest: a for a in _run_parser()._actions}
    assert set(FLAGS) == set(FORM_FIELDS) - {"name"}
    for field in FLAGS:
        action, schema = actions[field], SCHEMA[field]
        assert list(action.option_strings[:1]) == list(FLAGS[field][:1]), field
        assert schema["description"].split(";")[0] in action.help, field
        if kind(field) == "boolean":
            assert isinstance(action, argparse._StoreTrueAction), field
        elif kind(field) in ("object", "array"):
            assert isinstance(action, argparse._AppendAction), field
        else:
            assert action.type is {"integer": int, "number": float, "string": str}[kind(field)]
            assert action.required == RunCreate.model_fields[field].is_required(), field
            enum = schema.get("enum")
            assert action.choices == (enum if enum and None not in enum else None), field


def test_suite_entries_take_the_run_fields_with_runcreates_bounds():
    assert set(RUN_FIELDS) | set(NOT_IN_ENTRIES) == set(FORM_FIELDS)
    entry = SuiteEntry.model_json_schema()["properties"]
    for field in RUN_FIELDS:
        if field in ("benchmark", "light_target"):  # required there; light by default
            continue
        ours = {k: v for k, v in entry[field].items() if k != "default"}
        theirs = {k: v for k, v in RunCreate.model_json_schema()["properties"][field].items()
                  if k != "default"}  # fmt: skip
        assert ours == theirs, field


FULL_RUN = {
    "id": 9,
    "name": "every-field",
    "benchmark": "1a",
    "num_workers": 2,
    "num_cpus": 1.0,
    "light_target": True,
    "aggregation": "ddp",
    "synthetic": True,
    "backend": "gloo",
    "epochs": 1,
    "steps_per_epoch": 20,
    "seed": 3,
    "settings": {"lr": 0.05, "batch_size": 64},
}


def test_every_field_reaches_the_worker_one_way_or_another():
    assert set(WORKER_OPTIONS) | set(ELSEWHERE) == set(FORM_FIELDS) | {"original_command"}
    assert not set(WORKER_OPTIONS) & set(ELSEWHERE)
    args = parse_worker(worker_command(FULL_RUN)[3:])  # after python -m mlbench_core.worker
    assert (args.run_id, args.benchmark, args.light, args.aggregation) == (9, "1a", True, "ddp")
    assert (args.synthetic, args.epochs, args.steps, args.seed) == (True, 1, 20, 3)
    assert args.overrides == {"lr": "0.05", "batch_size": "64"}
    nccl = parse_worker(worker_command({**FULL_RUN, "backend": "nccl"})[3:])
    assert nccl.backend == "nccl"


def test_the_dag_conf_of_a_run_carries_its_id_and_every_form_field():
    conf = dag_conf(FULL_RUN)
    assert conf["run_id"] == 9 and list(conf)[1:] == list(FORM_FIELDS)
    RunCreate.model_validate(
        {k: v for k, v in conf.items() if k != "run_id"}, context=validation_context()
    )


@pytest.mark.parametrize(
    ("run", "label"),
    [
        ({"synthetic": True, "light_target": True}, "throughput only"),
        ({"light_target": True}, "light goal"),
        ({}, "full goal"),
    ],
)
def test_goal_label_follows_the_data(run, label):
    assert goal_label(run) == label


def test_choices_show_what_departs_from_the_reference():
    assert choices(FULL_RUN) == [
        ("aggregation", "ddp"),
        ("epochs (at most)", "1"),
        ("steps per epoch (at most)", "20"),
        ("seed", "3"),
        ("settings", "batch_size=64, lr=0.05"),
    ]
    assert choices({"name": "plain"}) == []


def test_the_client_takes_every_run_field_and_refuses_others_before_sending():
    from mlbench_core.api import ApiClient

    client = ApiClient("http://127.0.0.1:9/mlbench")  # nothing listens: nothing is sent
    with pytest.raises(TypeError, match="RunCreate lacks: colour"):
        client.create_run("x", 1, colour="red")
    client.close()


def test_field_kind_drops_the_null():
    assert field_kind({"type": ["null", "integer"]}) == "integer"
    assert field_kind({"type": "object"}) == "object"


# Bodies on both sides of each rule between a run's fields.
_BODIES = [
    {"name": "a", "num_workers": 2},
    {"name": "a", "num_workers": 17},
    {"name": "a", "num_workers": 2, "benchmark": "2a", "aggregation": "ddp"},
    {"name": "a", "num_workers": 2, "benchmark": "2a", "aggregation": "gossip"},
    {"name": "a", "num_workers": 2, "benchmark": "0a", "aggregation": "ddp"},
    {"name": "a", "num_workers": 2, "benchmark": "0a", "aggregation": None},
    {"name": "a", "num_workers": 2, "aggregation": "gossip"},  # the default benchmark's
    {"name": "a", "num_workers": 2, "benchmark": "9z"},
    {"name": "a", "num_workers": 2, "benchmark": ""},
    {
        "name": "a",
        "num_workers": 2,
        "benchmark": "1a",
        "image_name": "x/y",
        "custom_image_command": "run",
    },  # fmt: skip
    {"name": "a", "num_workers": 2, "image_name": "x/y", "custom_image_command": "run"},
    {"name": "a", "num_workers": 2, "image_name": "x/y"},
    {"name": "a", "num_workers": 2, "image_name": "x y", "custom_image_command": "run"},
    {
        "name": "a",
        "num_workers": 2,
        "image_name": "x/y",
        "custom_image_command": "r",
        "synthetic": True,
    },  # fmt: skip
    {
        "name": "a",
        "num_workers": 2,
        "image_name": "x/y",
        "custom_image_command": "r",
        "settings": {"lr": 1},
    },  # fmt: skip
    {"name": "a", "num_workers": 2, "backend": "nccl"},
    {"name": "a", "num_workers": 2, "backend": "nccl", "gpu_enabled": True},
    {"name": "a", "num_workers": 2, "benchmark": "1a", "settings": {"lr": 0.5, "batch_size": 64}},
    {"name": "a", "num_workers": 2, "benchmark": "1a", "settings": {"batch_size": 6.5}},
    {"name": "a", "num_workers": 2, "benchmark": "1a", "settings": {"lr": "0.5"}},
    {"name": "a", "num_workers": 2, "benchmark": "1a", "settings": {"features": 10}},
    {"name": "a", "num_workers": 2, "benchmark": "2a", "settings": {"features": 10}},
    {"name": "a", "num_workers": 2, "benchmark": "0a", "settings": {"dtypes": "float32"}},
    {"name": "a", "num_workers": 2, "benchmark": "0a", "settings": {"dtypes": "f\x00"}},
    {"name": "Bad", "num_workers": 2},
    {"name": "a", "num_workers": True},
]


@pytest.mark.parametrize("body", _BODIES)
def test_the_served_schema_accepts_exactly_what_the_api_accepts(body):
    """``request_schema`` states every rule RunCreate checks against the registry, so a
    client validating with the document learns what the API would answer."""
    schema = request_schema(max_workers=16)
    by_schema = jsonschema.Draft202012Validator(schema).is_valid(body)
    try:
        RunCreate.model_validate(body, context={**validation_context(16), **JSON_BODY})
        by_api = True
    except ValidationError:
        by_api = False
    assert by_schema == by_api


def test_typed_settings_cast_what_they_can_and_leave_the_rest_for_the_api():
    typed = typed_settings("1a", {"lr": "0.5", "batch_size": "64", "nope": "1", "momentum": "x"})
    assert typed == {"lr": 0.5, "batch_size": 64, "nope": "1", "momentum": "x"}
