"""The nightly suite: YAML, defaults, errors that name the field, planned run names."""

from __future__ import annotations

from datetime import date

import pytest

from mlbench_core.api.schemas import DNS_LABEL
from mlbench_core.nightly.suite import DEFAULT_SUITE, SuiteError, load_suite, plan

YAML = """
history: 5
min_history: 2
entries:
  - benchmark: digits
    workers: [2, 1, 2]
    repetitions: 2
  - benchmark: 1a
    workers: [4]
    light: false
    synthetic: true
baseline:
  digits-2w-light: [old-a, old-b]
"""


def test_yaml_suite_with_defaults_and_keys():
    suite = load_suite(YAML)
    assert (suite.history, suite.min_history) == (5, 2)
    assert suite.entries[0].workers == [1, 2]  # sorted, duplicates dropped
    assert suite.keys() == ["digits-1w-light", "digits-2w-light", "1a-4w-full-synthetic"]
    assert suite.baseline == {"digits-2w-light": ["old-a", "old-b"]}


def test_no_suite_means_the_default_and_a_file_is_read(tmp_path):
    assert load_suite(None) == DEFAULT_SUITE == load_suite("", tmp_path / "missing.yaml")
    path = tmp_path / "nightly.yaml"
    path.write_text(YAML)
    assert load_suite(None, path).history == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("entries: [{benchmark: nope, workers: [1]}]", "suite entries.0.benchmark"),
        ("entries: [{benchmark: digits, workers: [0]}]", "suite entries.0.workers"),
        ("entries: []", "suite entries"),
        ("entries: [{benchmark: digits, workers: [1], colour: red}]", "colour"),
        ("entries: [", "not valid YAML"),
        (
            "entries: [{benchmark: digits, workers: [1]}]\nbaseline: {digits-2w-light: [a]}",
            "baseline names no entry digits-2w-light",
        ),
    ],
)
def test_bad_suites_say_what_is_wrong(text, message):
    with pytest.raises(SuiteError, match=message):
        load_suite(text)


def test_planned_runs_are_unique_dns_labels_in_order():
    runs = plan(load_suite(YAML), date(2026, 11, 23), "scheduled__2026-11-23T02:00:00+00:00")
    assert [r.key for r in runs] == [
        "digits-1w-light",
        "digits-1w-light",
        "digits-2w-light",
        "digits-2w-light",
        "1a-4w-full-synthetic",
    ]
    names = [r.name for r in runs]
    assert len(set(names)) == len(names) and all(DNS_LABEL.match(n) for n in names)
    assert names[0].startswith("nightly-20261123-") and names[0].endswith("-digits-1w-light-r1")
    other = plan(load_suite(YAML), date(2026, 11, 23), "manual__2026-11-23T09:00:00+00:00")
    assert other[0].name != names[0]  # a second nightly of the day gets other names
    last = runs[-1]
    assert last.fields["synthetic"] and not last.fields["light_target"]
    assert last.num_workers == 4


def test_entries_take_any_field_of_a_run_checked_as_the_api_checks_it():
    suite = load_suite(
        "entries:\n"
        "  - {benchmark: 1a, workers: [2], synthetic: true, epochs: 1, steps_per_epoch: 20,\n"
        "     seed: 7, aggregation: ddp, settings: {lr: '0.05'}, max_bandwidth: 100,\n"
        "     tags: [nightly, ddp]}\n"
    )
    (planned,) = plan(suite, date(2026, 12, 1), "manual__x")
    assert planned.key == "1a-2w-light-ddp-synthetic"
    assert planned.fields == {
        "benchmark": "1a",
        "num_cpus": 1.0,
        "max_bandwidth": 100.0,
        "backend": "gloo",
        "gpu_enabled": False,
        "light_target": True,
        "aggregation": "ddp",
        "synthetic": True,
        "epochs": 1,
        "steps_per_epoch": 20,
        "seed": 7,
        "settings": {"lr": "0.05"},
        "oversubscribe": False,
        "tags": ["nightly", "nightly-2026-12-01", "ddp"],  # found by night in the Runs table
    }


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{benchmark: 1a, workers: [1], epochs: 0}", "epochs"),
        (
            "{benchmark: 1a, workers: [1], settings: {nope: 1}}",
            "settings: benchmark 1a has no setting 'nope'",
        ),
        (
            "{benchmark: 1a, workers: [1], settings: {lr: fast}}",
            "setting lr: 'fast' is not a valid float",
        ),
        ("{benchmark: 2a, workers: [1], aggregation: gossip}", "not offered by benchmark 2a"),
        ("{benchmark: 1a, workers: [1], image_name: x}", "image_name"),
    ],
)
def test_bad_run_fields_of_an_entry_are_named(entry, message):
    with pytest.raises(SuiteError, match=message):
        load_suite(f"entries: [{entry}]")


def test_entries_that_plan_the_same_runs_need_a_label():
    twice = (
        "entries: [{benchmark: digits, workers: [1]}, {benchmark: digits, workers: [1], seed: 3}]"
    )
    with pytest.raises(SuiteError, match="digits-1w-light.*give one a label"):
        load_suite(twice)
    labelled = twice.replace("seed: 3}", "seed: 3, label: seed3}")
    assert load_suite(labelled).keys() == ["digits-1w-light", "digits-1w-light-seed3"]
