"""The metric archives (``GET /api/metrics/{id}?format=zip``): the original mlbench server's
layout (mlbench-results'), read as mlbench-results' plotting scripts read it, and ours."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlbench_api.archive import django_date, mlbench_zip, official_result
from mlbench_api.store import Run

T0 = datetime(2026, 3, 3, 16, 0, 6, 956_123, tzinfo=UTC)
RUN_ZIP = {"metric_type": "run", "format": "zip"}


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def at(seconds: float) -> str:
    return iso(T0 + timedelta(seconds=seconds))


def read_results(content: bytes, pods: list[str]) -> tuple[dict, dict, str | None]:
    """A zip read as mlbench-results' scripts read one: ``result_<series>.json`` are the run's
    series (the name is the file's without prefix and suffix), ``<pod>_<series>.json`` a
    pod's, each a list of ``{date, value, cumulative}`` whose value is text for ``float``;
    ``official_result.txt`` the result sentence."""
    archive = zipfile.ZipFile(io.BytesIO(content))
    run_series: dict[str, list] = {}
    pod_series: dict[str, dict[str, list]] = {pod: {} for pod in pods}
    for file in archive.namelist():
        if not file.endswith(".json"):
            continue
        points = [
            (p["date"], float(p["value"]), p["cumulative"]) for p in json.loads(archive.read(file))
        ]
        stem = file[: -len(".json")]
        if stem.startswith("result_"):
            run_series[stem[len("result_") :]] = points
            continue
        pod = next(p for p in pods if stem.startswith(f"{p}_"))
        pod_series[pod][stem[len(pod) + 1 :]] = points
    names = archive.namelist()
    official = (
        archive.read("official_result.txt").decode() if "official_result.txt" in names else None
    )
    return run_series, pod_series, official


def as_read(series: dict) -> dict:
    """The API's JSON series as the reader above gives them (dates as the original wrote)."""
    return {
        name: [
            (django_date(datetime.fromisoformat(p["date"])), p["value"], p["cumulative"])
            for p in points
        ]
        for name, points in series.items()
    }


def set_lifetime(store, run_id: int, start: datetime, end: datetime | None) -> None:  # noqa: ANN001
    with store.session() as session:
        run = session.get(Run, run_id)
        run.created_at, run.finished_at = start, end


@pytest.fixture
def benchmark_run(api, make_run, store) -> dict:
    """A finished run (T0 to T0 + 60 s) with three series, two pods with their own series,
    and a text result as an original worker posts it; points before and after its lifetime
    too."""
    run = make_run("resnet-2w")
    for rank in (0, 1):
        api.put(f"/api/pods/resnet-2w-w{rank}", json={"run_id": run["id"], "rank": rank})
    rid = run["id"]
    loss = [{"name": "train_loss @ 0", "date": at(s), "value": 2.5 - s / 10} for s in range(1, 11)]
    prec = [{"name": "val_Prec@1 @ 0", "date": at(s), "value": s * 7.25} for s in (5, 10)]
    metrics = [
        *({"run_id": rid, **m} for m in loss + prec),
        {"run_id": rid, "name": "global_cum_fwd_pass @ 1", "date": at(59), "value": 12.0625,
         "cumulative": True},
        {"run_id": rid, "name": "train_loss @ 0", "date": at(-1), "value": 99},  # before the run
        {"run_id": rid, "name": "train_loss @ 0", "date": at(61), "value": 99},  # after it
        {"run_id": rid, "name": "late", "date": at(3600), "value": 1},  # only after it
        *(
            {"pod_name": f"resnet-2w-w{rank}", "name": name, "date": at(s), "value": rank + s / 4,
             "cumulative": name == "network_in"}
            for rank in (0, 1)
            for name in ("cpu", "network_in")
            for s in (0, 30, 60)
        ),
        {"pod_name": "resnet-2w-w1", "name": "cpu", "date": at(-30), "value": 5},  # before
    ]  # fmt: skip
    assert api.post("/api/metrics/batch", json=metrics).status_code == 201
    text = "89% Top 1 Validation Accuracy reached in 89.531 seconds"
    assert (
        api.put(f"/api/runs/{rid}/result", json={"result": {"text": text, "s": 89.531}}).status_code
        == 200
    )
    set_lifetime(store, rid, T0, T0 + timedelta(seconds=60))
    return run


def test_the_mlbench_results_layout_reads_back_as_the_apis_series(api, benchmark_run):
    rid = benchmark_run["id"]
    response = api.get(f"/api/metrics/{rid}", params=RUN_ZIP)
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == "attachment; filename=metrics_resnet-2w.zip"
    pods = ["resnet-2w-w0", "resnet-2w-w1"]
    run_series, pod_series, official = read_results(response.content, pods)

    def lifetime(series: dict) -> dict:
        """The API's series, the points within the run's lifetime (what the archive holds)."""
        end = T0 + timedelta(seconds=60)
        kept = {
            name: [p for p in points if T0 <= datetime.fromisoformat(p["date"]) <= end]
            for name, points in series.items()
        }
        return {name: points for name, points in kept.items() if points}

    expected = lifetime(api.get(f"/api/metrics/{rid}", params={"metric_type": "run"}).json())
    assert set(expected) == {"train_loss @ 0", "val_Prec@1 @ 0", "global_cum_fwd_pass @ 1"}
    assert run_series == as_read(expected)
    assert [v for _, v, _ in run_series["train_loss @ 0"]] == [2.5 - s / 10 for s in range(1, 11)]
    assert run_series["global_cum_fwd_pass @ 1"] == [
        (django_date(T0 + timedelta(seconds=59)), 12.0625, True)
    ]
    for pod in pods:
        assert pod_series[pod] == as_read(lifetime(api.get(f"/api/metrics/{pod}").json()))
        assert set(pod_series[pod]) == {"cpu", "network_in"}
        assert [c for _, _, c in pod_series[pod]["network_in"]] == [True] * 3
    assert official == "89% Top 1 Validation Accuracy reached in 89.531 seconds"


def test_files_are_written_as_the_original_wrote_them(api, benchmark_run):
    rid = benchmark_run["id"]
    archive = zipfile.ZipFile(io.BytesIO(api.get(f"/api/metrics/{rid}", params=RUN_ZIP).content))
    assert archive.namelist() == [
        "result_global_cum_fwd_pass @ 1.json",
        "result_train_loss @ 0.json",
        "result_val_Prec@1 @ 0.json",
        "official_result.txt",
        "resnet-2w-w0_cpu.json",
        "resnet-2w-w0_network_in.json",
        "resnet-2w-w1_cpu.json",
        "resnet-2w-w1_network_in.json",
    ]
    text = archive.read("result_val_Prec@1 @ 0.json").decode()
    # Django's JSON encoder: milliseconds (truncated) and Z; the value as text; indent 4.
    assert text == (
        "[\n"
        '    {\n        "date": "2026-03-03T16:00:11.956Z",\n        "value": "36.25",\n'
        '        "cumulative": false\n    },\n'
        '    {\n        "date": "2026-03-03T16:00:16.956Z",\n        "value": "72.5",\n'
        '        "cumulative": false\n    }\n'
        "]"
    )


def test_the_archive_keeps_the_points_of_the_runs_lifetime(api, benchmark_run, store):
    rid = benchmark_run["id"]
    pods = ["resnet-2w-w0", "resnet-2w-w1"]
    run_series, pod_series, _ = read_results(
        api.get(f"/api/metrics/{rid}", params=RUN_ZIP).content, pods
    )
    assert 99.0 not in [v for _, v, _ in run_series["train_loss @ 0"]]  # before and after
    assert "late" not in run_series
    assert [v for _, v, _ in pod_series["resnet-2w-w1"]["cpu"]] == [1.0, 8.5, 16.0]  # not 5
    # both ends included
    ends = [d for d, _, _ in pod_series["resnet-2w-w0"]["cpu"]]
    assert ends[0] == django_date(T0) and ends[-1] == django_date(T0 + timedelta(seconds=60))
    # a run still going: up to now
    set_lifetime(store, rid, T0, None)
    run_series, _, _ = read_results(api.get(f"/api/metrics/{rid}", params=RUN_ZIP).content, pods)
    assert run_series["train_loss @ 0"][-1][1] == 99.0 and "late" in run_series
    # since, metric_filter, last_n and summarize apply within it
    params = {**RUN_ZIP, "metric_filter": "train_loss @ 0", "last_n": 4, "summarize": 2}
    set_lifetime(store, rid, T0, T0 + timedelta(seconds=60))
    archive = zipfile.ZipFile(io.BytesIO(api.get(f"/api/metrics/{rid}", params=params).content))
    assert archive.namelist() == ["result_train_loss @ 0.json", "official_result.txt"]
    values = [float(p["value"]) for p in json.loads(archive.read("result_train_loss @ 0.json"))]
    assert values == pytest.approx([1.75, 1.55])  # (1.8, 1.7), (1.6, 1.5)
    since = {**RUN_ZIP, "since": at(9)}
    archive = zipfile.ZipFile(io.BytesIO(api.get(f"/api/metrics/{rid}", params=since).content))
    assert [float(p["value"]) for p in json.loads(archive.read("result_train_loss @ 0.json"))] == [
        1.5
    ]


def test_official_result_text_is_there_only_when_the_run_has_one(api, make_run):
    run = make_run("plain")
    rid = run["id"]
    api.post("/api/metrics", json={"run_id": rid, "name": "loss", "value": 1})

    def names() -> list[str]:
        return zipfile.ZipFile(
            io.BytesIO(api.get(f"/api/metrics/{rid}", params=RUN_ZIP).content)
        ).namelist()

    assert names() == ["result_loss.json"]  # no result
    api.put(f"/api/runs/{rid}/result", json={"result": {"accuracy": 0.9}})
    assert names() == ["result_loss.json"]  # a result without text
    api.put(f"/api/runs/{rid}/result", json={"result": "done in 3 s"})
    archive = zipfile.ZipFile(io.BytesIO(api.get(f"/api/metrics/{rid}", params=RUN_ZIP).content))
    assert archive.read("official_result.txt") == b"done in 3 s"
    assert official_result({"text": 3}) is None and official_result(None) is None


def test_hostile_series_names_stay_inside_the_archive(api, make_run, tmp_path):
    run = make_run("hostile")
    rid = run["id"]
    api.put("/api/pods/hostile-w0", json={"run_id": rid, "rank": 0})
    hostile = [
        "../../x",
        "a/b",
        "a_b",
        "A_B",
        "..\\..\\win",
        "/etc/passwd",
        "c:d",
        "nul\x01x",
        "é @ 0",
        "n" * 255,
    ]
    metrics = [{"run_id": rid, "name": name, "value": i} for i, name in enumerate(hostile)]
    metrics += [
        {"pod_name": "hostile-w0", "name": "../../../pod", "value": 100},
        {"run_id": rid, "name": "TaskResult @ 0", "value": 1},  # left out, as the original did
    ]
    assert api.post("/api/metrics/batch", json=metrics).status_code == 201
    content = api.get(f"/api/metrics/{rid}", params=RUN_ZIP).content
    archive = zipfile.ZipFile(io.BytesIO(content))
    names = archive.namelist()
    assert len(names) == len(set(n.casefold() for n in names)) == len(hostile) + 1
    for name in names:
        assert "/" not in name and "\\" not in name and not name.startswith(".")
        assert len(name.encode()) <= 255 and name.endswith(".json")
        assert not any(ord(c) < 32 for c in name)
    assert "result_.._.._x.json" in names and "result__etc_passwd.json" in names
    # names that need no change keep them (unique regardless of case, the first in order)
    assert json.loads(archive.read("result_A_B.json"))[0]["value"] == "3.0"  # A_B
    assert json.loads(archive.read("result_a_b-2.json"))[0]["value"] == "2.0"  # a_b
    assert json.loads(archive.read("result_a_b-3.json"))[0]["value"] == "1.0"  # a/b
    assert "result_é @ 0.json" in names  # kept as it is: the scripts split names on blanks
    assert "hostile-w0_.._.._.._pod.json" in names
    target = tmp_path / "out"
    archive.extractall(target)
    assert sorted(p.name for p in target.iterdir()) == sorted(names)
    assert all(p.is_file() and p.parent == target for p in target.rglob("*"))
    # every series is in one file, each with its own values
    values = sorted(float(json.loads(archive.read(n))[0]["value"]) for n in names)
    assert values == [*map(float, range(len(hostile))), 100.0]
    assert not any(Path(n).is_absolute() for n in names)


def test_a_pods_archive_is_the_originals(api, make_run):
    run = make_run("one")
    api.put("/api/pods/one-w0", json={"run_id": run["id"], "rank": 0})
    api.post(
        "/api/metrics", json={"pod_name": "one-w0", "name": "cpu", "value": 0.25, "date": iso(T0)}
    )
    response = api.get("/api/metrics/one-w0", params={"format": "zip"})
    assert response.headers["content-disposition"] == "attachment; filename=metrics_one-w0.zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.namelist() == ["result_cpu.json"]  # the original's prefix for a pod too
    assert json.loads(archive.read("result_cpu.json")) == [
        {"date": "2026-03-03T16:00:06.956Z", "value": "0.25", "cumulative": False}
    ]


def test_the_mlbench2_layout_is_unchanged(api, benchmark_run):
    rid = benchmark_run["id"]
    response = api.get(f"/api/metrics/{rid}", params={**RUN_ZIP, "layout": "mlbench2"})
    assert (
        response.headers["content-disposition"] == f'attachment; filename="run-{rid}-metrics.zip"'
    )
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == [
        "global_cum_fwd_pass_1.json",
        "late.json",
        "result.json",
        "train_loss_0.json",
        "val_Prec_1_0.json",
    ]
    loss = json.loads(archive.read("train_loss_0.json"))
    assert loss["name"] == "train_loss @ 0" and len(loss["points"]) == 12  # every point
    assert loss["points"][0] == {"date": at(-1), "value": 99.0, "cumulative": False}
    assert json.loads(archive.read("result.json"))["text"].startswith("89% Top 1")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2020, 3, 3, 16, 0, 6, 956_999, tzinfo=UTC), "2020-03-03T16:00:06.956Z"),
        (datetime(2020, 3, 3, 15, 57, 24, tzinfo=UTC), "2020-03-03T15:57:24Z"),
        (datetime(2020, 3, 3, 15, 57, 24, 1000), "2020-03-03T15:57:24.001Z"),  # naive = UTC
    ],
)
def test_dates_as_djangos_json_encoder_wrote_them(value, text):
    assert django_date(value) == text


def test_names_stay_unique_when_sanitised_names_meet():
    point = {"date": T0, "value": 1.0, "cumulative": False}
    content = mlbench_zip({"a/b": [point], "a_b": [point]}, [("result", {"a:b": [point]})], "x")
    names = zipfile.ZipFile(io.BytesIO(content)).namelist()
    # a_b keeps its name; a/b and the "pod" result's a:b come after it
    assert names == [
        "result_a_b-2.json",
        "result_a_b.json",
        "official_result.txt",
        "result_a_b-3.json",
    ]
    only_result = mlbench_zip({"TaskResult @ 0": [point]}, [("w-0", {"x": [point]})], "text")
    assert zipfile.ZipFile(io.BytesIO(only_result)).namelist() == [
        "official_result.txt",
        "w-0_x.json",
    ]
