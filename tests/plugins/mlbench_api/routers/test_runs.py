"""/api/runs through Airflow's real app: create, read, update, stop, delete, validation."""

from __future__ import annotations

import pytest

from mlbench_core.run_fields import dag_conf

VALID = {
    "name": "resnet-2w",
    "num_workers": 2,
    "num_cpus": 1.5,
    "max_bandwidth": 100,
    "benchmark": "1a",
}


def dag_run(airflow_api, dag_run_id: str) -> dict:
    response = airflow_api.get(f"/api/v2/dags/mlbench_run/dagRuns/{dag_run_id}")
    assert response.status_code == 200, response.text
    return response.json()


def test_create_run_stores_it_and_triggers_its_dag_run(api, airflow_api):
    response = api.post("/api/runs/", json=VALID)
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["state"] == "INITIALIZED"
    assert run["name"] == "resnet-2w" and run["num_workers"] == 2 and run["num_cpus"] == 1.5
    assert run["max_bandwidth"] == 100 and run["benchmark"] == "1a" and run["backend"] == "gloo"
    assert run["created_at"].endswith("Z")
    airflow_run = dag_run(airflow_api, run["job_id"])
    assert airflow_run["conf"] == dag_conf(run)  # validated against the DAG's Params
    assert airflow_run["conf"]["name"] == "resnet-2w"
    assert airflow_run["state"] == "queued"
    assert run["job_metadata"]["dag_id"] == "mlbench_run"
    one = api.get(f"/api/runs/{run['id']}").json()  # with the tail of its (no) output
    assert one == {**run, "job_metadata": {**run["job_metadata"], "stdout": [], "stderr": []}}
    assert api.get("/api/runs").json() == [run]


def test_the_length_seed_and_settings_of_a_run_are_stored_cast_and_sent_to_its_dag_run(
    api, airflow_api
):
    body = {
        **VALID,
        "epochs": 2,
        "steps_per_epoch": 20,
        "seed": 7,
        "synthetic": True,
        "aggregation": "ddp",
        "settings": {"lr": 0.05, "batch_size": 64.0},
    }
    response = api.post("/api/runs/", json=body)
    assert response.status_code == 201, response.text
    run = response.json()
    assert (run["epochs"], run["steps_per_epoch"], run["seed"]) == (2, 20, 7)
    assert run["settings"] == {"lr": 0.05, "batch_size": 64}  # the benchmark's types
    assert run["synthetic"] is True and run["aggregation"] == "ddp"
    conf = dag_run(airflow_api, run["job_id"])["conf"]
    assert conf["settings"] == {"lr": 0.05, "batch_size": 64} and conf["steps_per_epoch"] == 20


def test_settings_errors_name_the_setting_and_the_valid_ones(api):
    answer = api.post("/api/runs/", json={**VALID, "settings": {"nope": 1}}).json()
    assert "benchmark 1a has no setting 'nope'" in answer["message"]
    assert "lr" in answer["message"] and "batch_size" in answer["message"]
    answer = api.post("/api/runs/", json={**VALID, "settings": {"lr": "fast"}}).json()
    assert "setting lr: 'fast' is not a valid float" in answer["message"]


def test_a_deleted_runs_id_is_never_given_to_another(api):
    first = api.post("/api/runs/", json={**VALID, "name": "first"}).json()
    newest = api.post("/api/runs/", json={**VALID, "name": "newest"}).json()
    assert api.delete(f"/api/runs/{newest['id']}").status_code in (200, 204)
    again = api.post("/api/runs/", json={**VALID, "name": "again"}).json()
    assert again["id"] == newest["id"] + 1 > first["id"]
    assert api.get(f"/api/runs/{newest['id']}").status_code == 404


def test_create_run_from_form_fields_with_every_boolean_spelling(api):
    for i, (text, value) in enumerate(
        [("true", True), ("True", True), ("false", False), ("False", False)]
    ):
        response = api.post(
            "/api/runs",
            data={
                "name": f"form-{i}",
                "num_workers": "2",
                "num_cpus": "1",
                "max_bandwidth": "1000",
                "benchmark": "1a",
                "light_target": text,
            },
        )
        assert response.status_code == 201, response.text
        assert response.json()["light_target"] is value


def test_seed_style_run_without_benchmark_gets_the_default(api):
    response = api.post(
        "/api/runs/", json={"name": "seed", "num_workers": 1, "num_cpus": 1, "max_bandwidth": 10}
    )
    assert response.status_code == 201, response.text
    assert response.json()["benchmark"] == "1a"


def test_custom_image_run(api):
    body = {
        "name": "custom",
        "num_workers": 1,
        "image_name": "me/img:1",
        "custom_image_command": "python x.py",
    }
    run = api.post("/api/runs/", json=body).json()
    assert (run["image_name"], run["custom_image_command"], run["benchmark"]) == (
        "me/img:1",
        "python x.py",
        None,
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "Bad_Name"}, "name"),
        ({"name": "-leading"}, "name"),
        ({"name": "a" * 64}, "name"),
        ({"name": ""}, "name"),
        ({"num_workers": 0}, "num_workers"),
        ({"num_workers": 17}, "num_workers"),
        ({"num_workers": "two"}, "num_workers"),
        ({"num_cpus": 0}, "num_cpus"),
        ({"num_cpus": -1}, "num_cpus"),
        ({"max_bandwidth": 0}, "max_bandwidth"),
        ({"benchmark": "9z"}, "benchmark"),
        ({"backend": "mpi"}, "backend"),
        ({"surprise": 1}, "surprise"),
        ({"epochs": 0}, "epochs"),
        ({"steps_per_epoch": 0}, "steps_per_epoch"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**32}, "seed"),
        ({"settings": {"nope": 1}}, "settings"),
        ({"settings": {"lr": "fast"}}, "settings"),
        ({"settings": {"batch_size": 1.5}}, "settings"),
        ({"settings": "lr"}, "settings"),
        # a JSON body's values are taken as typed, as the OpenAPI documents them
        ({"num_workers": True}, "num_workers"),
        ({"num_workers": "2"}, "num_workers"),
        ({"oversubscribe": 0}, "oversubscribe"),
        ({"synthetic": "yes"}, "synthetic"),
        ({"settings": {"lr": "0.05"}}, "settings"),
        ({"settings": '{"lr": 0.05}'}, "settings"),
        ({"benchmark": ""}, "benchmark"),
        ({"name": " digits-run"}, "name"),
    ],
)
def test_bad_run_is_rejected_naming_the_field_and_stores_nothing(api, airflow_api, change, field):
    before = airflow_api.get("/api/v2/dags/mlbench_run/dagRuns").json()["total_entries"]
    response = api.post("/api/runs/", json={**VALID, **change})
    assert response.status_code == 422, response.text
    body = response.json()
    assert any(error["loc"][-1] == field for error in body["detail"]), body
    assert field in body["message"]
    assert api.get("/api/runs/").json() == []
    assert airflow_api.get("/api/v2/dags/mlbench_run/dagRuns").json()["total_entries"] == before


def test_unknown_benchmark_error_lists_the_valid_ones(api):
    message = api.post("/api/runs/", json={**VALID, "benchmark": "9z"}).json()["message"]
    assert "benchmark" in message and "1a" in message and "3a" in message


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"image_name": "x/y", "custom_image_command": "run"}, "mutually exclusive"),
        ({"benchmark": None, "image_name": "x/y"}, "custom_image_command"),
        ({"backend": "nccl"}, "gpu_enabled"),
        ({"aggregation": "ring"}, "aggregation 'ring' is not offered by benchmark 1a"),
        ({"benchmark": "2a", "aggregation": "gossip"}, "valid: allreduce, ddp"),
        (
            {
                "benchmark": None,
                "image_name": "x/y",
                "custom_image_command": "r",
                "synthetic": True,
            },
            "synthetic needs a benchmark",
        ),
    ],
)
def test_inconsistent_run_is_rejected(api, change, text):
    response = api.post("/api/runs/", json={**VALID, **change})
    assert response.status_code == 422
    assert text in response.json()["message"]


def test_aggregation_and_synthetic_are_part_of_the_run(api, airflow_api):
    body = {**VALID, "name": "resnet-ddp", "aggregation": "ddp", "synthetic": True}
    response = api.post("/api/runs/", json=body)
    assert response.status_code == 201, response.text
    run = api.get(f"/api/runs/{response.json()['id']}").json()
    assert (run["aggregation"], run["synthetic"]) == ("ddp", True)
    plain = api.post("/api/runs/", json={**VALID, "name": "resnet-default"}).json()
    assert (plain["aggregation"], plain["synthetic"]) == (None, False)


def test_max_workers_comes_from_the_settings(api, settings_env):
    settings_env.setenv("MLBENCH_MAX_WORKERS", "64")
    assert api.post("/api/runs/", json={**VALID, "num_workers": 40}).status_code == 201


def test_bad_json_and_wrong_content_type_are_4xx(api):
    response = api.post(
        "/api/runs/", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    response = api.post("/api/runs/", content=b"name=x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    response = api.post("/api/runs/", json=[1, 2])
    assert response.status_code == 422
    assert api.get("/api/runs/").json() == []


def test_duplicate_name_is_a_conflict_and_keeps_the_first(api, make_run):
    first = make_run("same")
    response = api.post("/api/runs/", json={**VALID, "name": "same", "num_workers": 1})
    assert response.status_code == 409
    assert response.json()["detail"][0]["loc"] == ["body", "name"]
    assert api.get("/api/runs/").json() == [first]


def test_trigger_failure_stores_no_run(api, settings_env):
    settings_env.setenv("MLBENCH_DAG_ID", "no_such_dag")
    response = api.post("/api/runs/", json=VALID)
    assert response.status_code == 503
    assert "no_such_dag" in response.json()["detail"]
    assert api.get("/api/runs/").json() == []


@pytest.mark.parametrize("path", ["/api/runs/999", "/api/runs/999/"])
def test_unknown_run_is_404(api, path):
    assert api.get(path).status_code == 404
    assert api.delete(path).status_code == 404
    assert api.patch(path, json={"state": "STARTED"}).status_code == 404


@pytest.mark.parametrize("run_id", ["abc", "0", "-1", str(2**40)])
def test_bad_run_id_is_422(api, run_id):
    response = api.get(f"/api/runs/{run_id}")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "run_id"]


def test_state_moves_forward_only_and_stamps_times(api, make_run):
    run = make_run()
    started = api.patch(f"/api/runs/{run['id']}/", json={"state": "STARTED"}).json()
    assert started["state"] == "STARTED" and started["started_at"] is not None
    finished = api.patch(
        f"/api/runs/{run['id']}",
        json={"state": "FINISHED", "result": {"time_to_target_s": 12.5}, "job_metadata": {"a": 1}},
    ).json()
    assert finished["state"] == "FINISHED" and finished["finished_at"] >= finished["started_at"]
    assert finished["result"] == {"time_to_target_s": 12.5}
    assert (
        finished["job_metadata"]["a"] == 1 and finished["job_metadata"]["dag_id"] == "mlbench_run"
    )
    response = api.patch(f"/api/runs/{run['id']}", json={"state": "STARTED"})
    assert response.status_code == 409
    assert api.get(f"/api/runs/{run['id']}").json()["state"] == "FINISHED"
    bad = api.patch(f"/api/runs/{run['id']}", json={"state": "DONE"})
    assert bad.status_code == 422 and "state" in bad.json()["message"]


def test_stop_marks_the_dag_run_failed_and_the_run_cancelled(api, airflow_api, make_run):
    run = make_run()
    stopped = api.post(f"/api/runs/{run['id']}/stop")
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["state"] == "CANCELLED"
    assert dag_run(airflow_api, run["job_id"])["state"] == "failed"
    # Stopping again is harmless.
    assert api.post(f"/api/runs/{run['id']}/stop").json()["state"] == "CANCELLED"


def test_delete_stops_the_run_and_removes_its_data_only(api, airflow_api, make_run):
    doomed, kept = make_run("doomed"), make_run("kept")
    for run in (doomed, kept):
        rid = run["id"]
        assert api.put(f"/api/pods/w-{rid}", json={"run_id": rid, "rank": 0}).status_code == 200
        api.post("/api/metrics/", json={"run_id": rid, "name": "loss", "value": 1})
        api.post("/api/metrics/", json={"pod_name": f"w-{rid}", "name": "cpu", "value": 1})
    assert api.delete(f"/api/runs/{doomed['id']}/").status_code == 204
    assert dag_run(airflow_api, doomed["job_id"])["state"] == "failed"
    assert dag_run(airflow_api, kept["job_id"])["state"] == "queued"
    assert [r["name"] for r in api.get("/api/runs/").json()] == ["kept"]
    assert [p["name"] for p in api.get("/api/pods/").json()] == [f"w-{kept['id']}"]
    assert api.get(f"/api/metrics/{doomed['id']}?metric_type=run").status_code == 404
    assert api.get(f"/api/metrics/w-{doomed['id']}").status_code == 404
    assert api.get(f"/api/metrics/{kept['id']}?metric_type=run").json()["loss"][0]["value"] == 1
    assert api.get(f"/api/metrics/w-{kept['id']}").json()["cpu"][0]["value"] == 1


def test_benchmarks_lists_the_registry(api):
    from mlbench_core.benchmarks import REGISTRY

    benchmarks = api.get("/api/benchmarks/").json()
    assert [b["id"] for b in benchmarks] == list(REGISTRY)
    assert {"0a", "1a", "2a", "3a", "digits"} <= set(REGISTRY)
    digits = next(b for b in benchmarks if b["id"] == "digits")
    assert digits["goal"] == {"metric": "val_accuracy", "target": 95.0, "higher_is_better": True}


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "inf", "num_workers": 1, "num_cpus": Infinity}',
        '{"name": "nan", "num_workers": 1, "max_bandwidth": NaN}',
        '{"name": "nul", "num_workers": 1, "image_name": "a\\u0000", "custom_image_command": "x"}',
    ],
)
def test_unstorable_run_values_are_422(api, body):
    response = api.post("/api/runs/", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert api.get("/api/runs/").json() == []


def test_unstorable_result_is_422(api, make_run):
    run = make_run()
    body = '{"result": {"time": NaN}}'
    response = api.patch(
        f"/api/runs/{run['id']}", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert api.get(f"/api/runs/{run['id']}").json()["result"] is None


def test_run_of_an_existing_dag_run_triggers_nothing(api, airflow_api):
    before = airflow_api.get("/api/v2/dags/mlbench_run/dagRuns").json()["total_entries"]
    response = api.post("/api/runs/", json={**VALID, "job_id": "manual__from_the_ui"})
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["job_id"] == "manual__from_the_ui"
    assert run["job_metadata"]["triggered_from"] == "airflow"
    assert airflow_api.get("/api/v2/dags/mlbench_run/dagRuns").json()["total_entries"] == before


def test_tags_and_note_are_set_at_creation_edited_later_and_filter_the_list(
    api, airflow_api, make_run
):
    body = {**VALID, "tags": ["baseline", "pr-12", "baseline"], "note": "first try\nof 1a"}
    response = api.post("/api/runs/", json=body)
    assert response.status_code == 201, response.text
    tagged = response.json()
    assert tagged["tags"] == ["baseline", "pr-12"] and tagged["note"] == "first try\nof 1a"
    assert dag_run(airflow_api, tagged["job_id"])["conf"]["tags"] == ["baseline", "pr-12"]
    other = make_run("other")
    assert other["tags"] == [] and other["note"] is None
    edited = api.patch(f"/api/runs/{other['id']}", json={"tags": ["pr-12"], "note": "see #3"})
    assert edited.status_code == 200, edited.text
    assert (edited.json()["tags"], edited.json()["note"]) == (["pr-12"], "see #3")
    assert edited.json()["state"] == other["state"]  # a label change moves nothing else

    def names(**params) -> list[str]:
        response = api.get("/api/runs", params=params)
        assert response.status_code == 200, response.text
        return [run["name"] for run in response.json()]

    assert names(tag="pr-12") == ["other", "resnet-2w"]
    assert names(tag=["pr-12", "baseline"]) == ["resnet-2w"]
    assert names(tag="nope") == []
    assert api.patch(f"/api/runs/{other['id']}", json={"state": "STARTED"}).status_code == 200
    assert names(benchmark="1a", state="INITIALIZED") == ["resnet-2w"]
    assert names(benchmark="1a") == ["other", "resnet-2w"] and names(benchmark="0a") == []
    cleared = api.patch(f"/api/runs/{tagged['id']}", json={"tags": [], "note": ""}).json()
    assert (cleared["tags"], cleared["note"]) == ([], None)
    assert names(tag="baseline") == []


def test_form_bodies_send_tags_as_one_text(api):
    data = {"name": "form-tags", "num_workers": "1", "benchmark": "1a", "tags": "a, b c"}
    response = api.post("/api/runs", data=data)
    assert response.status_code == 201, response.text
    assert response.json()["tags"] == ["a", "b", "c"]


@pytest.mark.parametrize(
    "tags",
    [["two words"], ["a,b"], ["x" * 41], [""], [f"t{i}" for i in range(21)], "baseline", [3],
     ["5\x85k"], ["c1\x9f"]],  # C1 controls too (U+0085 is a blank to pydantic alone)
)  # fmt: skip
def test_bad_tags_are_422_naming_tags_and_change_nothing(api, make_run, tags):
    assert api.post("/api/runs/", json={**VALID, "tags": tags}).status_code == 422
    assert api.get("/api/runs").json() == []
    run = make_run("kept", tags=["old"])
    response = api.patch(f"/api/runs/{run['id']}", json={"tags": tags})
    assert response.status_code == 422, response.text
    assert "tags" in response.json()["message"]
    assert any("tags" in error["loc"] for error in response.json()["detail"])
    assert api.get(f"/api/runs/{run['id']}").json()["tags"] == ["old"]
    assert [r["name"] for r in api.get("/api/runs").json()] == ["kept"]


def test_bad_filters_are_422_naming_the_parameter(api):
    response = api.get("/api/runs", params={"state": "DONE"})
    assert response.status_code == 422
    assert "state" in response.json()["message"]


def test_a_tag_with_a_control_character_is_422_not_a_failed_trigger(api, airflow_api):
    # Python's \s (Airflow's Params) counts \x1d as a blank, pydantic's does not: both refuse
    response = api.post("/api/runs/", json={**VALID, "tags": ["a\x1db"]})
    assert response.status_code == 422, response.text
    assert "tags" in response.json()["message"]
