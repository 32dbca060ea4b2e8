"""The original mlbench-core 3.0.0 client (its ``api.py`` from PyPI, unchanged, in its own
environment) against our API over real HTTP with ``MLBENCH_AUTH=none``: every official
image, backends, custom images (their command rendered on the pods), text results, the
tail of a run's output."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlsplit

import pytest

from mlbench_core.api import ApiClient
from mlbench_core.benchmarks import REGISTRY
from mlbench_core.launch import kubernetes as k8s
from mlbench_core.settings import Settings
from tests.mlbench_core.launch.test_kubernetes import render
from tests.plugins.mlbench_api.test_archive import as_read, read_results
from tests.support.original import run_original

pytestmark = pytest.mark.usefixtures("original_client")

PRELUDE = """
import json, sys
from mlbench_core.api import MLBENCH_IMAGES, ApiClient
client = ApiClient(in_cluster=False, url=sys.argv[1], load_config=False)
def answer(future):
    response = future.result()
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return {"status": response.status_code, "body": body}
"""


def original(code: str, url: str) -> object:
    """What ``code`` (run after :data:`PRELUDE` in the original's environment) prints as
    its last line of JSON."""
    done = run_original(["-c", PRELUDE + code, url])
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def ours(url, live_server) -> ApiClient:  # noqa: ANN001
    """Our own client of the same API (no token: MLBENCH_AUTH=none)."""
    return ApiClient(f"{live_server}/mlbench")


@pytest.fixture
def url(live_server, store, settings_env) -> str:  # noqa: ANN001
    """The URL an original client is given (``-u``): host:port and the API's root path."""
    settings_env.setenv("MLBENCH_AUTH", "none")
    settings_env.setenv("MLBENCH_CPU_CAPACITY", "64")
    return urlsplit(live_server).netloc + "/mlbench"


def test_create_run_of_each_official_image(url, ours):
    answers = original(
        """
out = {}
for i, (title, entry) in enumerate(MLBENCH_IMAGES.items()):
    out[entry[0]] = answer(client.create_run(f"image-{i}", 2, num_cpus=1, image=title,
                                             backend="GLOO"))
print(json.dumps(out))
""",
        url,
    )
    assert len(answers) == 8
    created = {image: a["body"] for image, a in answers.items() if a["status"] == 201}
    refused = {image: a["body"]["message"] for image, a in answers.items() if a["status"] != 201}
    assert "TensorFlow images are not supported" in refused.pop(
        "mlbench/tensorflow-cifar10-resnet:latest"
    )
    for image, message in refused.items():  # GNMT and Transformer until they are built
        assert "which this mlbench does not have yet" in message, (image, message)
        assert ("4a" in message) or ("4b" in message)
    expected = {"1a", "2a", "3a", "0a"} | ({"4a", "4b"} & set(REGISTRY))
    assert {run["benchmark"] for run in created.values()} == expected
    ddp = created["mlbench/pytorch-cifar10-resnet20-ddp:latest"]
    assert (ddp["benchmark"], ddp["aggregation"]) == ("1a", "ddp")
    for run in created.values():
        assert (run["backend"], run["num_workers"], run["num_cpus"]) == ("gloo", 2, 1.0)
        assert (run["max_bandwidth"], run["state"], run["image_name"]) == (
            1000,
            "INITIALIZED",
            None,
        )
        assert run["job_id"]  # its DAG run was triggered
    listed = ours.get_runs()
    assert {r["name"] for r in listed} == {r["name"] for r in created.values()}


def test_mpi_is_refused_naming_gloo_and_nccl(url, ours):
    got = original(
        """
print(json.dumps(answer(client.create_run("mpi", 2, num_cpus=1,
                                          image="PyTorch Cifar-10 ResNet-20", backend="MPI"))))
""",
        url,
    )
    assert got["status"] == 422
    assert "GLOO" in got["body"]["message"] and "NCCL" in got["body"]["message"]
    assert got["body"]["detail"][0]["loc"] == ["body", "backend"]
    assert ours.get_runs() == []


def test_a_custom_image_runs_its_template_filled_on_each_pod(url, ours, settings_env):
    settings_env.setenv("MLBENCH_BACKEND", "kubernetes")
    command = "/conda/bin/python /codes/main.py --run_id {run_id} --rank {rank} --hosts {hosts} --backend {backend}"  # noqa: E501
    got = original(
        f"""
print(json.dumps(answer(client.create_run("custom-3", 3, num_cpus=1, light_target=True,
    custom_image_name="me/bench:2", custom_image_command={command!r},
    custom_backend="GLOO", run_all_nodes=True))))
""",
        url,
    )
    assert got["status"] == 201, got
    run = ours.get_run(got["body"]["id"])
    assert (run["image_name"], run["original_command"], run["backend"]) == (
        "me/bench:2",
        True,
        "gloo",
    )
    pods = render(run, Settings(backend="kubernetes"))
    service = k8s.service_name(run)
    hosts = ",".join(f"custom-3-w{rank}.{service}" for rank in range(3))
    for rank, pod in enumerate(pods):
        container = pod["spec"]["containers"][0]
        assert container["image"] == "me/bench:2"
        assert container["command"] + container["args"] == [
            "/conda/bin/python", "/codes/main.py", "--run_id", str(run["id"]), "--rank",
            str(rank), "--hosts", hosts, "--backend", "gloo", "--light",
        ]  # fmt: skip


def test_a_text_result_becomes_the_runs_result(url, ours):
    run = ours.create_run("textual", 1, benchmark="1a")
    sentence = "80% Top 1 Validation Accuracy reached in 1234.567 seconds"
    got = original(
        f"""
print(json.dumps([answer(client.post_metric({run["id"]}, "TaskResult @ 0", {sentence!r})),
                  answer(client.post_metric({run["id"]}, "val_top1 @ 0", 80.5)),
                  answer(client.post_metric({run["id"]}, "val_top1 @ 0", "high"))]))
""",
        url,
    )
    # a text value under another name is still refused: values are numbers
    assert [g["status"] for g in got] == [201, 201, 422], got
    assert (got[0]["body"]["value"], got[0]["body"]["id"]) == (sentence, None)
    result = ours.get_run(run["id"])["result"]
    assert (result["text"], result["reached"], result["time_to_target_s"]) == (
        sentence,
        True,
        1234.567,
    )
    assert (result["metric"], result["target"], result["rank"]) == ("val_top1", 80.0, 0)
    series = ours.get_run_metrics(run["id"])
    assert list(series) == ["val_top1 @ 0"] and series["val_top1 @ 0"][0]["value"] == 80.5


def test_a_run_carries_the_tail_of_its_output(url, ours):
    run = ours.create_run("talky", 2, benchmark="1a")
    lines = [{"rank": n % 2, "stream": "stdout", "line": f"out {n}"} for n in range(150)]
    lines.append({"rank": 1, "stream": "stderr", "line": "Traceback (most recent call last):"})
    ours.post_logs(run["id"], lines)
    got = original(f"print(json.dumps(answer(client.get_run({run['id']}))))", url)
    metadata = got["body"]["job_metadata"]
    assert metadata["stdout"] == [f"out {n}" for n in range(50, 150)]
    assert metadata["stderr"] == ["Traceback (most recent call last):"]
    # derived, never stored: a PATCH carrying them back changes nothing
    ours.update_run(run["id"], job_metadata={"stdout": ["forged"], "note_of_dag": 1})
    again = ours.get_run(run["id"])
    assert again["job_metadata"]["stdout"][-1] == "out 149"
    assert again["job_metadata"]["note_of_dag"] == 1


# Two ranks of an original worker: its Tracker and LogMetrics, unchanged, as inside a pod
# (LogMetrics.in_cluster; its api: what the in-cluster discovery gives, which tests/helm
# checks against the rendered chart), reaching the original task-1 goal.
ORIGINAL_WORKER = """
import sys
from mlbench_core.api import ApiClient
from mlbench_core.evaluation.goals import task1_time_to_accuracy_goal
from mlbench_core.utils import LogMetrics, Tracker

run_id, rank, url = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
LogMetrics.in_cluster = True
LogMetrics.api = ApiClient(in_cluster=False, url=url, load_config=False)


class Top1:
    name = "Prec@1"


tracker = Tracker([Top1()], run_id, rank, goal=task1_time_to_accuracy_goal())
tracker.start()
for epoch, accuracy in enumerate((50, 70, 85)):
    tracker.train()
    for step in range(4):
        tracker.batch_start()
        for record in (tracker.record_batch_load, tracker.record_batch_fwd_pass,
                       tracker.record_batch_comp_loss, tracker.record_batch_backprop,
                       tracker.record_batch_agg, tracker.record_batch_opt_step):
            record()
        tracker.batch_end()
        tracker.record_loss(2.0 - epoch / 2 - step / 10, log_to_api=True)
    tracker.validation()
    tracker.record_stat("global_Prec@1", accuracy, log_to_api=True)
    tracker.epoch_end()
LogMetrics.api.executor.shutdown(wait=True)
print("goal reached" if tracker.goal_reached else "goal missed")
"""
# the timed steps (the tracker names a step by the mark that ends it)
STEPS = ("batch_load", "fwd_pass", "comp_loss", "backprop", "agg", "opt_step", "end")


def test_two_ranks_of_an_original_worker_store_every_series_and_the_result(url, ours):
    import concurrent.futures

    run = ours.create_run("original-worker", 2, benchmark="1a", job_id="ext")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        ranks = list(
            pool.map(
                lambda rank: run_original(["-c", ORIGINAL_WORKER, str(run["id"]), str(rank), url]),
                (0, 1),
            )
        )
    for done in ranks:
        assert done.returncode == 0 and "goal reached" in done.stdout, done.stdout + done.stderr
    series = ours.get_run_metrics(run["id"])
    epoch_metrics = ("CumulativeTrainTimeEpoch", *STEPS)
    per_rank = {"train_loss": 12, "val_global_Prec@1": 3, **dict.fromkeys(epoch_metrics, 3)}
    expected = {f"{name} @ {rank}": n for name, n in per_rank.items() for rank in (0, 1)}
    expected["TotalCumulativeTrainTime @ 0"] = 1
    expected |= {f"global_cum_{name} @ 0": 1 for name in epoch_metrics}
    assert {name: len(points) for name, points in series.items()} == expected
    assert [p["value"] for p in series["val_global_Prec@1 @ 1"]] == [50, 70, 85]
    assert series["train_loss @ 0"][0]["value"] == 2.0
    result = ours.get_run(run["id"])["result"]
    assert result["text"].startswith("80% Top 1 Validation Accuracy reached in ")
    assert (result["reached"], result["metric"], result["target"], result["rank"]) == (
        True,
        "val_top1",
        80.0,
        0,
    )
    total = series["TotalCumulativeTrainTime @ 0"][0]["value"]
    assert result["time_to_target_s"] == pytest.approx(total, abs=1e-3)

    # the original client reads them back: every run's series, and the run's archive in the
    # mlbench-results layout, read as mlbench-results reads it
    ours.update_run(run["id"], state="STARTED")
    ours.update_run(run["id"], state="FINISHED")
    got = original(
        f"""
import base64
everything = client.get_all_metrics().result().json()
archive = client.download_run_metrics({run["id"]}).result()
print(json.dumps({{"run_metrics": everything["run_metrics"]["original-worker"],
                  "disposition": archive.headers["content-disposition"],
                  "zip": base64.b64encode(archive.content).decode()}}))
""",
        url,
    )
    assert got["run_metrics"] == series
    assert got["disposition"] == "attachment; filename=metrics_original-worker.zip"
    run_series, _, official = read_results(base64.b64decode(got["zip"]), [])
    assert run_series == as_read(series)
    assert official == result["text"]
