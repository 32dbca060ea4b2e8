"""The New run form offers every field of a run (RunCreate), bounded as the API bounds it."""

from __future__ import annotations

import pytest
from dash import dcc, html

from dashboard.pages import runs
from mlbench_core.run_fields import FORM_FIELDS, bounds_text, form_schema

SCHEMA = form_schema()


def walk(node):  # noqa: ANN001, ANN201
    """``node`` and every component under it."""
    yield node
    children = getattr(node, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            yield from walk(child)


def controls(node) -> dict:  # noqa: ANN001
    """Every component with an id under ``node``."""
    return {n.id: n for n in walk(node) if isinstance(getattr(n, "id", None), str)}


def controls_of_type(node, kind) -> list:  # noqa: ANN001
    return [n for n in walk(node) if isinstance(n, kind)]


FORM = controls(runs.new_run_form())


def test_every_run_field_has_an_input_and_an_error_slot():
    assert list(runs.FIELDS) == list(FORM_FIELDS)
    for suffix in runs.FIELDS.values():
        assert f"runs-new-{suffix}" in FORM and f"runs-new-{suffix}-error" in FORM


@pytest.mark.parametrize("field", [f for f in FORM_FIELDS if "integer" in str(SCHEMA[f]["type"])
                                   or "number" in str(SCHEMA[f]["type"])])  # fmt: skip
def test_number_inputs_state_runcreates_bounds(field):
    control = FORM[f"runs-new-{runs.FIELDS[field]}"]
    assert isinstance(control, dcc.Input) and control.type == "number"
    schema = SCHEMA[field]
    hints = {n.children for n in controls_of_type(runs.new_run_form(), html.Small)}
    assert schema["description"] + bounds_text(schema) in hints
    if "integer" in str(schema["type"]):
        assert control.step == 1


def test_choices_labels_and_sections_come_from_the_schema():
    assert FORM["runs-new-backend"].options == [
        {"label": " gloo", "value": "gloo"},
        {"label": " nccl", "value": "nccl"},
    ]
    assert isinstance(FORM["runs-new-aggregation"], dcc.Dropdown)
    assert FORM["runs-new-name"].maxLength == 63
    labels = {n.htmlFor: n.children for n in controls_of_type(runs.new_run_form(), html.Label)}
    for field, suffix in runs.FIELDS.items():
        assert labels[f"runs-new-{suffix}"] == SCHEMA[field]["title"]
    assert {"runs-new-section-image", "runs-new-section-advanced"} <= set(FORM)


def test_form_values_become_run_fields():
    values = {field: None for field in FORM_FIELDS}
    values.update(
        name=" short ", num_workers=2, synthetic=["yes"], light_target=[], epochs=1,
        settings="lr=0.05\nbatch_size = 64\n", aggregation="ddp", image_name="",
    )  # fmt: skip
    fields = runs.form_values(values)
    assert fields["name"] == "short" and fields["synthetic"] is True
    assert fields["light_target"] is False and fields["image_name"] is None
    assert fields["settings"] == {"lr": 0.05, "batch_size": 64}  # typed as the benchmark's
    assert runs.parse_settings("lr=1, momentum=0") == {"lr": "1", "momentum": "0"}
    with pytest.raises(ValueError, match="needs KEY=VALUE, got 'lr'"):
        runs.parse_settings("lr")
