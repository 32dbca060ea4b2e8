"""/api/metrics: posting single metrics and batches, reading series back, zip download."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

import pytest

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture
def run(make_run) -> dict:
    return make_run()


@pytest.fixture
def pod(api, run) -> str:
    assert api.put("/api/pods/w-0", json={"run_id": run["id"], "rank": 0}).status_code == 200
    return "w-0"


def series(api, owner, **params) -> dict:
    response = api.get(f"/api/metrics/{owner}/", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_post_metric_as_in_the_seed_stores_a_number(api, pod):
    body = {
        "pod_name": pod,
        "name": "accuracy",
        "date": "2018-08-03T09:21:44.331823Z",
        "value": "0.7845",
        "cumulative": False,
        "metadata": "some additional data",
    }
    response = api.post("/api/metrics", json=body)
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["value"] == 0.7845 and isinstance(stored["value"], float)
    assert {k: stored[k] for k in ("pod_name", "name", "date", "cumulative", "metadata")} == {
        **{k: body[k] for k in ("pod_name", "name", "date", "metadata")},
        "cumulative": False,
    }
    point = {"date": body["date"], "value": 0.7845, "cumulative": False}
    assert series(api, pod) == {"accuracy": [point]}


def test_post_metric_as_form_fields(api, run):
    for cumulative in ("True", "false"):
        response = api.post(
            "/api/metrics/",
            data={
                "run_id": str(run["id"]),
                "name": "loss",
                "value": "1.5",
                "cumulative": cumulative,
            },
        )
        assert response.status_code == 201, response.text
        assert response.json()["cumulative"] is (cumulative == "True")


def test_metric_without_date_is_dated_now(api, run):
    before = datetime.now(UTC)
    stored = api.post("/api/metrics", json={"run_id": run["id"], "name": "x", "value": 1}).json()
    when = datetime.fromisoformat(stored["date"])
    assert before - timedelta(seconds=1) <= when <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"value": "abc"}, "value"),
        ({"value": "nan"}, "value"),
        ({"value": "inf"}, "value"),
        ({"value": None}, "value"),
        ({"value": [1]}, "value"),
        ({"name": ""}, "name"),
        ({"name": "n" * 256}, "name"),
        ({"date": "yesterday"}, "date"),
        ({"cumulative": "maybe"}, "cumulative"),
        ({"run_id": "one"}, "run_id"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_metric_is_422_naming_the_field(api, run, change, field):
    body = {"run_id": run["id"], "name": "loss", "value": 1.0, **change}
    response = api.post("/api/metrics", json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["message"]
    assert api.get(f"/api/metrics/{run['id']}?metric_type=run").json() == {}


@pytest.mark.parametrize("owners", [{}, {"run_id": 1, "pod_name": "w-0"}])
def test_pod_name_and_run_id_are_mutually_exclusive(api, pod, owners):
    response = api.post("/api/metrics", json={"name": "loss", "value": 1, **owners})
    assert response.status_code == 422
    assert "pod_name" in response.json()["message"] and "run_id" in response.json()["message"]


def test_metric_for_unknown_owner_is_404(api, run):
    assert api.post("/api/metrics", json={"run_id": 99, "name": "a", "value": 1}).status_code == 404
    response = api.post("/api/metrics", json={"pod_name": "ghost", "name": "a", "value": 1})
    assert response.status_code == 404 and "ghost" in response.json()["detail"]


def test_batch_of_ten_thousand_in_one_request(api, run, pod):
    metrics = [
        {"run_id": run["id"], "name": "loss", "date": iso(T0 + timedelta(seconds=i)), "value": i}
        for i in range(9_000)
    ] + [
        {
            "pod_name": pod,
            "name": "cpu",
            "date": iso(T0 + timedelta(seconds=i)),
            "value": i,
            "cumulative": True,
        }
        for i in range(1_000)
    ]
    response = api.post("/api/metrics/batch", json={"metrics": metrics})
    assert response.status_code == 201, response.text
    assert response.json() == {"created": 10_000}
    loss = series(api, run["id"], metric_type="run")["loss"]
    assert [p["value"] for p in loss] == list(range(9_000))
    assert len(series(api, pod)["cpu"]) == 1_000


def test_batch_as_a_bare_list(api, run):
    metrics = [{"run_id": run["id"], "name": "loss", "value": v} for v in (3, 2, 1)]
    assert api.post("/api/metrics/batch/", json=metrics).json() == {"created": 3}


def test_batch_over_the_limit_is_rejected(api, run):
    metrics = [{"run_id": run["id"], "name": "loss", "value": 1}] * 10_001
    response = api.post("/api/metrics/batch", json={"metrics": metrics})
    assert response.status_code == 422 and "metrics" in response.json()["message"]
    assert api.post("/api/metrics/batch", json={"metrics": []}).status_code == 422


@pytest.mark.parametrize(
    ("bad", "status"),
    [({"value": "x"}, 422), ({"run_id": 999}, 404), ({"pod_name": "ghost", "run_id": None}, 404)],
)
def test_batch_is_all_or_nothing(api, run, bad, status):
    metrics = [{"run_id": run["id"], "name": "loss", "value": i} for i in range(500)]
    metrics[250] = {**metrics[250], **bad}
    response = api.post("/api/metrics/batch", json={"metrics": metrics})
    assert response.status_code == status, response.text
    if status == 422:
        assert response.json()["detail"][0]["loc"][:3] == ["body", "metrics", 250]
    assert api.get(f"/api/metrics/{run['id']}?metric_type=run").json() == {}


def test_tricky_text_round_trips_through_batches(api, run):
    text = 'comma, "quote", new\nline, tab\t, back\\slash, unicode \u00e9\u4e2d, \\N'
    metrics = [
        {"run_id": run["id"], "name": f'odd, name "{i}"', "value": i, "metadata": text}
        for i in range(100)
    ]
    assert api.post("/api/metrics/batch", json=metrics).status_code == 201
    names = set(series(api, run["id"], metric_type="run"))
    assert names == {f'odd, name "{i}"' for i in range(100)}


@pytest.fixture
def hundred(api, run) -> int:
    """Series 'loss' of the run: values 0..99, one second apart from T0."""
    metrics = [
        {"run_id": run["id"], "name": "loss", "date": iso(T0 + timedelta(seconds=i)), "value": i}
        for i in range(100)
    ] + [{"run_id": run["id"], "name": "acc", "date": iso(T0), "value": 0.5}]
    assert api.post("/api/metrics/batch", json=metrics).status_code == 201
    return run["id"]


def test_since_keeps_strictly_newer_points(api, hundred):
    got = series(api, hundred, metric_type="run", since=iso(T0 + timedelta(seconds=97)))
    assert got == {
        "loss": [
            {"date": iso(T0 + timedelta(seconds=s)), "value": s, "cumulative": False}
            for s in (98, 99)
        ]
    }
    naive = series(api, hundred, metric_type="run", since="2026-01-01T00:01:37")
    assert naive == got


def test_metric_filter_and_last_n(api, hundred):
    assert set(series(api, hundred, metric_type="run")) == {"loss", "acc"}
    got = series(api, hundred, metric_type="run", metric_filter="loss", last_n=3)
    assert [p["value"] for p in got["loss"]] == [97, 98, 99] and set(got) == {"loss"}


def test_summarize_averages_consecutive_points(api, hundred):
    got = series(api, hundred, metric_type="run", metric_filter="loss", summarize=10)["loss"]
    assert [p["value"] for p in got] == [4.5 + 10 * k for k in range(10)]
    assert got[0]["date"] == iso(T0 + timedelta(seconds=4.5))
    # A series no longer than N comes back as it is.
    small = series(api, hundred, metric_type="run", summarize=100)
    assert len(small["loss"]) == 100
    assert small["acc"] == [{"date": iso(T0), "value": 0.5, "cumulative": False}]
    seven = series(api, hundred, metric_type="run", metric_filter="loss", summarize=7)["loss"]
    assert len(seven) <= 7
    assert sum(p["value"] for p in seven) / len(seven) == pytest.approx(49.5, abs=3)


def test_metadata_comes_back_on_request(api, run):
    metrics = [
        {
            "run_id": run["id"],
            "name": "val",
            "date": iso(T0),
            "value": 1,
            "metadata": '{"epoch": 1}',
        },
        {"run_id": run["id"], "name": "val", "date": iso(T0 + timedelta(seconds=1)), "value": 2},
    ]
    assert api.post("/api/metrics/batch", json=metrics).status_code == 201
    plain = series(api, run["id"], metric_type="run")["val"]
    assert all("metadata" not in p for p in plain)
    got = series(api, run["id"], metric_type="run", metadata="true")["val"]
    assert got[0]["metadata"] == '{"epoch": 1}' and "metadata" not in got[1]
    averaged = series(api, run["id"], metric_type="run", metadata="true", summarize=1)["val"]
    assert averaged == [
        {"date": iso(T0 + timedelta(seconds=0.5)), "value": 1.5, "cumulative": False}
    ]


def test_points_carry_cumulative_and_a_bucket_is_cumulative_when_its_first_point_is(api, run):
    metrics = [
        {
            "run_id": run["id"],
            "name": "bytes",
            "date": iso(T0 + timedelta(seconds=i)),
            "value": i,
            "cumulative": i in (2, 3, 7),
        }
        for i in range(10)
    ]
    assert api.post("/api/metrics/batch", json=metrics).status_code == 201
    raw = series(api, run["id"], metric_type="run")["bytes"]
    assert [p["cumulative"] for p in raw] == [i in (2, 3, 7) for i in range(10)]
    # Five buckets of two points: (0, 1), (2, 3), (4, 5), (6, 7), (8, 9); each as cumulative
    # as its first point (as the original server summarized): 7 is, 6 is not.
    five = series(api, run["id"], metric_type="run", summarize=5)["bytes"]
    assert [(p["value"], p["cumulative"]) for p in five] == [
        (0.5, False),
        (2.5, True),
        (4.5, False),
        (6.5, False),
        (8.5, False),
    ]
    newest = series(api, run["id"], metric_type="run", last_n=1)["bytes"]
    assert newest == [{"date": iso(T0 + timedelta(seconds=9)), "value": 9, "cumulative": False}]


def test_summarize_of_last_n(api, hundred):
    got = series(api, hundred, metric_type="run", metric_filter="loss", last_n=20, summarize=2)
    assert [p["value"] for p in got["loss"]] == [84.5, 94.5]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "not a date"}, "since"),
        ({"summarize": 0}, "summarize"),
        ({"last_n": -1}, "last_n"),
        ({"metric_type": "node"}, "metric_type"),
        ({"format": "csv"}, "format"),
        ({"format": "zip", "layout": "mlbench-results"}, "layout"),
        ({"layout": "v1"}, "layout"),
    ],
)
def test_bad_query_is_422(api, hundred, params, field):
    response = api.get(f"/api/metrics/{hundred}/", params={"metric_type": "run", **params})
    assert response.status_code == 422
    assert field in response.json()["message"]


def test_run_metrics_need_a_run_id(api, run):
    response = api.get("/api/metrics/w-0/?metric_type=run")
    assert response.status_code == 404  # names no run
    assert "by its id" in response.json()["detail"]
    assert api.get("/api/metrics/%C2%B2/?metric_type=run").status_code == 404  # "²".isdigit()
    assert api.get("/api/metrics/12345/?metric_type=run").status_code == 404
    assert api.get("/api/metrics/ghost/").status_code == 404


def test_all_pod_metrics(api, run, pod, make_run):
    api.put("/api/pods/w-1", json={"run_id": run["id"], "rank": 1})
    for name, value in (("w-0", 1.0), ("w-1", 2.0)):
        api.post(
            "/api/metrics",
            json={
                "pod_name": name,
                "name": "cpu",
                "value": value,
                "date": iso(T0),
                "cumulative": name == "w-1",
            },
        )
    api.post(
        "/api/metrics", json={"run_id": run["id"], "name": "loss", "value": 3, "date": iso(T0)}
    )
    other = make_run("run-b")
    got = api.get("/api/metrics").json()
    pods = {
        "w-0": {"cpu": [{"date": iso(T0), "value": 1.0, "cumulative": False}]},
        "w-1": {"cpu": [{"date": iso(T0), "value": 2.0, "cumulative": True}]},
    }
    # The seed's documented shape (pod name -> series), and the original code's two keys:
    # the same pods, and every run's series keyed by the run's name.
    assert got == {
        **pods,
        "pod_metrics": pods,
        "run_metrics": {
            run["name"]: {"loss": [{"date": iso(T0), "value": 3.0, "cumulative": False}]},
            other["name"]: {},
        },
    }
    assert api.get("/api/metrics", params={"pods_only": "true"}).json() == pods
    newest = api.get("/api/metrics", params={"last_n": 1, "metric_filter": "loss"}).json()
    assert newest["run_metrics"][run["name"]]["loss"][0]["value"] == 3.0
    assert newest["pod_metrics"] == {"w-0": {}, "w-1": {}}


def test_zip_has_one_file_per_series_and_the_result(api, hundred):
    api.patch(f"/api/runs/{hundred}", json={"state": "STARTED"})
    api.patch(f"/api/runs/{hundred}", json={"state": "FINISHED", "result": {"tt": 3.5}})
    mlbench2 = {"metric_type": "run", "format": "zip", "layout": "mlbench2"}
    response = api.get(f"/api/metrics/{hundred}", params=mlbench2)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert f"run-{hundred}-metrics.zip" in response.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == ["acc.json", "loss.json", "result.json"]
    loss = json.loads(archive.read("loss.json"))
    assert loss["name"] == "loss" and [p["value"] for p in loss["points"]] == list(range(100))
    assert json.loads(archive.read("result.json")) == {"tt": 3.5}
    summarized = api.get(f"/api/metrics/{hundred}", params={**mlbench2, "summarize": 5})
    small = json.loads(zipfile.ZipFile(io.BytesIO(summarized.content)).read("loss.json"))
    assert len(small["points"]) == 5


def test_zip_of_a_pod(api, pod):
    api.post("/api/metrics", json={"pod_name": pod, "name": "mem/bytes", "value": 7})
    response = api.get(f"/api/metrics/{pod}/?format=zip&layout=mlbench2")
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == ["mem_bytes.json", "result.json"]
    assert response.headers["content-disposition"] == f'attachment; filename="{pod}-metrics.zip"'
    points = json.loads(archive.read("mem_bytes.json"))["points"]
    assert [(p["value"], p["cumulative"]) for p in points] == [(7.0, False)]


@pytest.mark.parametrize(
    "change",
    [{"name": "nul\x00name"}, {"metadata": "nul\x00"}, {"metadata": {"x": float("nan")}}],
)
def test_values_no_store_can_keep_are_422(api, run, change):
    body = json.dumps({"run_id": run["id"], "name": "loss", "value": 1, **change})
    response = api.post("/api/metrics", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    batch = json.dumps([{"run_id": run["id"], "name": "loss", "value": 1, **change}] * 100)
    response = api.post(
        "/api/metrics/batch", content=batch, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert (
        api.get(f"/api/metrics/{run['id']}?metric_type=run&metric_filter=a%00b").status_code == 422
    )


def test_the_openapi_document_names_the_original_keys_and_layouts(api):
    document = api.get("/openapi.json").json()
    listing = document["paths"]["/api/metrics"]["get"]
    assert "pods_only" in {p["name"] for p in listing["parameters"]}
    example = listing["responses"]["200"]["content"]["application/json"]["example"]
    assert {"pod_metrics", "run_metrics"} <= set(example)
    assert "run_metrics" in listing["description"] and "pod_metrics" in listing["description"]
    one = document["paths"]["/api/metrics/{pod_name_or_run_id}"]["get"]
    (layout,) = [p for p in one["parameters"] if p["name"] == "layout"]
    schema = layout["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert schema["enum"] == ["mlbench", "mlbench2"] and "mlbench-results" in layout["description"]
