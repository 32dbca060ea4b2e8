"""ApiClient against the real API: Airflow's app served by uvicorn (``live_server``)."""

from __future__ import annotations

import io
import json
import socket
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
import requests

from harness.environment import ADMIN
from harness.server import free_port
from mlbench_core.api import (
    ApiClient,
    ApiError,
    ApiUnavailable,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ServerError,
    Unauthorized,
    ValidationFailed,
    raise_for_response,
)

T0 = datetime(2024, 5, 1, 12, 0, 0)  # naive: UTC


def series_values(points):
    return [p["value"] for p in points]


@pytest.mark.parametrize(
    "suffix", ["/mlbench", "/mlbench/", "/mlbench/api", "/mlbench/api/", "/mlbench//"]
)
def test_url_spellings_reach_the_api(live_server, admin_token, store, suffix):
    with ApiClient(live_server + suffix, token=admin_token) as api:
        assert api.base_url == f"{live_server}/mlbench/api"
        assert api.get_runs() == []


def test_a_url_without_scheme_is_refused():
    with pytest.raises(ValueError, match="http"):
        ApiClient("127.0.0.1:8080/mlbench")


def test_run_lifecycle_round_trips(client, live_server):
    created = client.create_run(
        "run-a", 2, benchmark="1a", num_cpus=0.5, max_bandwidth=100.0, light_target=True
    )
    assert created["state"] == "INITIALIZED"
    assert (created["name"], created["num_workers"], created["benchmark"]) == ("run-a", 2, "1a")
    assert (created["num_cpus"], created["max_bandwidth"], created["light_target"]) == (
        0.5,
        100.0,
        True,
    )
    assert created["job_id"]
    run_id = created["id"]

    one = client.get_run(run_id)  # a single run's metadata has the tail of its output
    assert one["job_metadata"] == {**created["job_metadata"], "stdout": [], "stderr": []}
    assert {**one, "job_metadata": created["job_metadata"]} == created
    other = client.create_run("run-b", 1, image_name="busybox", custom_image_command="true")
    assert [r["name"] for r in client.get_runs()] == ["run-b", "run-a"]
    assert other["image_name"] == "busybox"

    started = client.update_run(run_id, state="STARTED", job_metadata={"pods": 2})
    assert started["state"] == "STARTED"
    assert started["started_at"] is not None
    assert started["job_metadata"]["pods"] == 2
    assert started["job_metadata"]["dag_run_id"] == created["job_id"]
    updated = client.update_run(run_id, result={"accuracy": 0.9})
    assert updated["result"] == {"accuracy": 0.9}
    assert updated["state"] == "STARTED"

    token = client.issue_worker_token(run_id)
    assert token.startswith("mlbw_")
    with ApiClient(f"{live_server}/mlbench", token=token) as worker:
        answer = worker.post_metric("loss", 2.0, run_id=run_id, date=T0, metadata={"epoch": 0})
        assert answer["run_id"] == run_id
        assert answer["metadata"] == json.dumps({"epoch": 0})
        batch = [
            {"name": "loss", "value": 1.5, "run_id": run_id, "date": T0 + timedelta(seconds=1)},
            {
                "name": "loss",
                "value": 1.0,
                "run_id": run_id,
                "date": (T0 + timedelta(seconds=2)).isoformat(),
            },
            {"name": "acc", "value": 0.5, "run_id": run_id, "date": T0},
        ]
        assert worker.post_metrics(batch) == {"created": 3}

    series = client.get_run_metrics(run_id)
    assert set(series) == {"loss", "acc"}
    assert series_values(series["loss"]) == [2.0, 1.5, 1.0]
    assert series["loss"][0]["date"].startswith("2024-05-01T12:00:00")
    assert client.get_run_metrics(run_id, metric_filter="acc") == {
        "acc": [{"date": "2024-05-01T12:00:00.000000Z", "value": 0.5, "cumulative": False}]
    }
    assert series_values(client.get_run_metrics(run_id, last_n=2)["loss"]) == [1.5, 1.0]
    since = client.get_run_metrics(run_id, since=T0 + timedelta(seconds=1))
    assert series_values(since["loss"]) == [1.0]
    assert "acc" not in since
    since_text = client.get_run_metrics(run_id, since="2024-05-01T14:00:01.500+02:00")
    assert series_values(since_text["loss"]) == [1.0]
    assert len(client.get_run_metrics(run_id, summarize=1)["loss"]) == 1

    archive = zipfile.ZipFile(io.BytesIO(client.download_run_metrics(run_id)))
    assert set(archive.namelist()) == {"loss.json", "acc.json", "result.json"}
    loss = json.loads(archive.read("loss.json"))
    assert loss["name"] == "loss"
    assert series_values(loss["points"]) == [2.0, 1.5, 1.0]
    assert json.loads(archive.read("result.json")) == {"accuracy": 0.9}
    recent = zipfile.ZipFile(io.BytesIO(client.download_run_metrics(run_id, since=T0)))
    assert series_values(json.loads(recent.read("loss.json"))["points"]) == [1.5, 1.0]
    # The original server's layout; the points are from before the run was created (T0).
    original = zipfile.ZipFile(io.BytesIO(client.download_run_metrics(run_id, layout="mlbench")))
    assert original.namelist() == []

    stopped = client.stop_run(run_id)
    assert stopped["state"] == "CANCELLED"
    assert stopped["finished_at"] is not None
    with pytest.raises(Unauthorized):  # stopping revokes the worker token
        ApiClient(f"{live_server}/mlbench", token=token).post_metric("x", 1, run_id=run_id)

    assert client.delete_run(run_id) is None
    with pytest.raises(NotFound):
        client.get_run(run_id)
    assert [r["name"] for r in client.get_runs()] == ["run-b"]


def test_pods_round_trip(client, run, worker):
    run_id = run["id"]
    pod = worker.put_pod(
        "worker-0", run_id=run_id, rank=0, phase="Running", labels={"app": "mlbench"}
    )
    assert pod["name"] == "worker-0"
    assert (pod["run_id"], pod["rank"], pod["phase"], pod["label_map"]) == (
        run_id,
        0,
        "Running",
        {"app": "mlbench"},
    )
    assert pod["labels"] == "{'app': 'mlbench'}"
    # Only the given fields are sent: the rest is kept.
    pod = client.put_pod("worker-0", ip="10.0.0.7", node="node-1")
    assert (pod["ip"], pod["node"], pod["rank"], pod["phase"]) == (
        "10.0.0.7",
        "node-1",
        0,
        "Running",
    )
    client.put_pod("loose", phase="Pending")

    names = [p["name"] for p in client.get_pods()]
    assert sorted(names) == ["loose", "worker-0"]
    assert [p["name"] for p in client.get_pods(run_id=run_id)] == ["worker-0"]

    worker.post_metric("cpu", 12.5, pod_name="worker-0", date=T0)
    worker.post_metric("cpu", 13.5, pod_name="worker-0", date=T0 + timedelta(seconds=1))
    assert series_values(client.get_pod_metrics("worker-0")["cpu"]) == [12.5, 13.5]
    assert series_values(client.get_pod_metrics("worker-0", last_n=1)["cpu"]) == [13.5]
    everything = client.get_all_metrics()
    assert set(everything) == {"loose", "worker-0"}
    with_runs = client.get_all_metrics(runs=True)
    assert with_runs["pod_metrics"] == everything
    assert with_runs["run_metrics"] == {run["name"]: {}}
    assert {k: v for k, v in with_runs.items() if k not in ("pod_metrics", "run_metrics")} == (
        everything
    )
    assert everything["loose"] == {}
    assert series_values(everything["worker-0"]["cpu"]) == [12.5, 13.5]
    assert client.get_all_metrics(metric_filter="mem") == {"loose": {}, "worker-0": {}}
    assert series_values(client.get_all_metrics(since=T0)["worker-0"]["cpu"]) == [13.5]

    archive = zipfile.ZipFile(io.BytesIO(client.download_pod_metrics("worker-0")))
    assert series_values(json.loads(archive.read("cpu.json"))["points"]) == [12.5, 13.5]
    assert json.loads(archive.read("result.json")) is None
    original = zipfile.ZipFile(
        io.BytesIO(client.download_pod_metrics("worker-0", layout="mlbench"))
    )
    assert [float(p["value"]) for p in json.loads(original.read("result_cpu.json"))] == [12.5, 13.5]


def test_benchmarks(client):
    benchmarks = client.get_benchmarks()
    ids = {b["id"] for b in benchmarks}
    assert "1a" in ids
    assert all({"id", "title", "goal"} <= b.keys() for b in benchmarks)


def test_post_metric_needs_exactly_one_owner(client):
    with pytest.raises(ValueError, match="exactly one"):
        client.post_metric("loss", 1.0)
    with pytest.raises(ValueError, match="exactly one"):
        client.post_metric("loss", 1.0, run_id=1, pod_name="p")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_values_are_refused_before_sending(client, run, value):
    with pytest.raises(ValueError, match="finite"):
        client.post_metric("loss", value, run_id=run["id"])
    with pytest.raises(ValueError, match="finite"):
        client.post_metrics([{"name": "loss", "value": value, "run_id": run["id"]}])
    assert client.get_run_metrics(run["id"]) == {}


def test_numpy_values_are_sent_as_numbers(client, run):
    import numpy as np

    client.post_metric("loss", np.float32(0.5), run_id=run["id"], date=T0)
    client.post_metrics([{"name": "loss", "value": np.int64(3), "run_id": run["id"]}])
    assert series_values(client.get_run_metrics(run["id"])["loss"]) == [0.5, 3.0]


def test_post_metrics_of_nothing_sends_nothing(client):
    assert client.post_metrics([]) == {"created": 0}


def test_post_metrics_splits_long_lists(client, run):
    count = 10_000 * 2 + 5
    start = datetime(2024, 1, 1, tzinfo=UTC)
    metrics = [
        {"name": "step", "value": i, "run_id": run["id"], "date": start + timedelta(seconds=i)}
        for i in range(count)
    ]
    sizes = []
    original = client.session.request

    def counting(method, url, **kwargs):
        sizes.append(len(kwargs["json"]["metrics"]))
        return original(method, url, **kwargs)

    client.session.request = counting
    assert client.post_metrics(metrics) == {"created": count}
    client.session.request = original
    assert sizes == [10_000, 10_000, 5]
    points = client.get_run_metrics(run["id"])["step"]
    assert series_values(points) == [float(i) for i in range(count)]


def test_chunks_before_a_failing_one_stay_stored(client, run):
    good = [{"name": "a", "value": i, "run_id": run["id"]} for i in range(10_000)]
    bad = [{"name": "a", "value": 1.0, "run_id": 999_999}]
    with pytest.raises(NotFound, match="run 999999 not found"):
        client.post_metrics(good + bad)
    assert len(client.get_run_metrics(run["id"])["a"]) == 10_000


def test_validation_errors_name_the_field(client):
    with pytest.raises(ValidationFailed) as caught:
        client.create_run("Not A DNS Label", 2, benchmark="1a")
    error = caught.value
    assert error.status == 422
    assert error.message.startswith("name: must be a lower-case DNS label")
    assert isinstance(error.detail, list)
    assert error.detail[0]["loc"] == ["body", "name"]
    assert "422" in str(error)
    assert "name: must be a lower-case DNS label" in str(error)

    with pytest.raises(ValidationFailed, match="benchmark: unknown benchmark 'zz'"):
        client.create_run("run-z", 2, benchmark="zz")
    with pytest.raises(ValidationFailed, match="num_workers"):
        client.create_run("run-z", 0, benchmark="1a")
    with pytest.raises(ValidationFailed, match="metrics.0.name: String should have at least"):
        client.post_metrics([{"name": "", "value": 1.0, "run_id": 1}])
    with pytest.raises(ValidationFailed, match="metrics.0.value"):
        client.post_metrics([{"name": "loss", "value": "abc", "run_id": 1}])
    with pytest.raises(ValidationFailed, match="phase: Input should be 'Pending', 'Running'"):
        client.put_pod("worker-0", phase="Exploded")
    with pytest.raises(ValidationFailed, match="summarize"):
        client.get_run_metrics(1, summarize=0)
    with pytest.raises(NotFound, match="run 'abc' not found: with metric_type=run"):
        client.get_run_metrics("abc")


def test_not_found_carries_the_servers_message(client):
    with pytest.raises(NotFound) as caught:
        client.get_run(4242)
    assert caught.value.status == 404
    assert caught.value.message == "run 4242 not found"
    assert caught.value.detail == "run 4242 not found"
    with pytest.raises(NotFound, match="pod 'nobody' not found"):
        client.get_pod_metrics("nobody")
    with pytest.raises(NotFound, match="run 4242 not found"):
        client.post_metric("loss", 1.0, run_id=4242)
    for call in (client.stop_run, client.delete_run, client.issue_worker_token):
        with pytest.raises(NotFound, match="run 4242 not found"):
            call(4242)


def test_conflicts_carry_the_servers_message(client, run):
    with pytest.raises(Conflict) as caught:
        client.create_run("run-a", 1, benchmark="1a")
    assert caught.value.status == 409
    assert caught.value.message == "name: a run named 'run-a' exists"
    assert caught.value.detail[0]["type"] == "conflict"
    with pytest.raises(Conflict, match="state: run .* is INITIALIZED: cannot become FINISHED"):
        client.update_run(run["id"], state="FINISHED")


def test_unauthorized_without_a_token(live_server, store):
    with ApiClient(f"{live_server}/mlbench") as anonymous:
        assert anonymous.token is None
        with pytest.raises(Unauthorized) as caught:
            anonymous.get_runs()
    assert caught.value.status == 401
    assert caught.value.message
    with ApiClient(f"{live_server}/mlbench", token="mlbw_1_forged") as forged:
        with pytest.raises(Unauthorized, match="unknown or revoked worker token"):
            forged.get_pods()


def test_worker_tokens_are_forbidden_on_user_routes(client, worker, run):
    for call in (worker.get_runs, worker.get_pods, worker.get_benchmarks):
        with pytest.raises(Forbidden) as caught:
            call()
        assert caught.value.status == 403
        assert caught.value.message == "a worker token may not do this"
    with pytest.raises(Forbidden):
        worker.create_run("run-w", 1, benchmark="1a")
    other = client.create_run("run-b", 1, benchmark="1a")
    with pytest.raises(Forbidden, match=f"this worker token is for run {run['id']} only"):
        worker.post_metric("loss", 1.0, run_id=other["id"])


def test_nothing_listening_is_unavailable():
    port = free_port()
    with ApiClient(f"http://127.0.0.1:{port}/mlbench", token="t", timeout=5) as api:
        with pytest.raises(ApiUnavailable) as caught:
            api.get_runs()
        with pytest.raises(ApiUnavailable):
            api.post_metrics([{"name": "loss", "value": 1.0, "run_id": 1}])
    assert caught.value.status == 0
    assert isinstance(caught.value, ApiError)
    assert caught.value.retryable
    assert f"127.0.0.1:{port}" in str(caught.value)


def test_no_answer_in_time_is_unavailable():
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/mlbench"
        with ApiClient(url, timeout=0.2) as api:
            with pytest.raises(ApiUnavailable, match="no answer in 0.2 s") as caught:
                api.get_benchmarks()
    assert caught.value.status == 0


def _response(status: int, body: bytes, content_type: str = "application/json"):
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers["Content-Type"] = content_type
    response.reason = "Reason"
    return response


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (415, BadRequest),
        (422, ValidationFailed),
        (500, ServerError),
        (503, ServerError),
        (429, ApiError),
    ],
)
def test_raise_for_response_maps_statuses(status, kind):
    with pytest.raises(kind) as caught:
        raise_for_response(_response(status, b'{"detail": "nope"}'))
    assert type(caught.value) is kind
    assert (caught.value.status, caught.value.message, caught.value.detail) == (
        status,
        "nope",
        "nope",
    )
    assert caught.value.retryable == (status >= 500 or status == 429)


def test_raise_for_response_renders_details():
    raise_for_response(_response(200, b"{}"))
    raise_for_response(_response(204, b""))
    detail = [
        {"loc": ["body", "metrics", 0, "value"], "msg": "bad"},
        {"loc": ["query", "since"], "msg": "worse"},
    ]
    with pytest.raises(ValidationFailed) as caught:
        raise_for_response(_response(422, json.dumps({"detail": detail}).encode()))
    assert caught.value.message == "metrics.0.value: bad; since: worse"
    assert caught.value.detail == detail
    with pytest.raises(ServerError) as caught:
        raise_for_response(_response(502, b"<html>Bad   gateway</html>", "text/html"))
    assert caught.value.message == "<html>Bad gateway</html>"
    with pytest.raises(ServerError) as caught:
        raise_for_response(_response(500, b""))
    assert caught.value.message == "Reason"


class _ResetsFirst:
    """A server that resets its first ``resets`` connections, then answers ``[]``."""

    def __init__(self, resets: int) -> None:
        import threading

        self.resets, self.seen = resets, 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/mlbench"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import struct

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.seen += 1
            with conn:
                conn.recv(65536)
                if self.seen <= self.resets:  # RST instead of an answer
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    continue
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 2\r\nConnection: close\r\n\r\n[]")  # fmt: skip


def test_a_reset_connection_is_tried_once_more_for_reads_only():
    server = _ResetsFirst(resets=1)
    with ApiClient(server.url) as api:
        assert api.get_benchmarks() == []
    assert server.seen == 2
    server.sock.close()
    server = _ResetsFirst(resets=1)
    with ApiClient(server.url) as api, pytest.raises(ApiUnavailable, match="cannot reach"):
        api.post_logs(1, [{"rank": 0, "line": "x"}])  # a POST is not sent twice
    assert server.seen == 1
    server.sock.close()
    server = _ResetsFirst(resets=2)
    with ApiClient(server.url) as api, pytest.raises(ApiUnavailable, match="cannot reach"):
        api.get_benchmarks()
    assert server.seen == 2
    server.sock.close()


# -- logging in, the token, the URLs, streaming ---------------------------------------------


def test_login_holds_an_airflow_token(live_server, store):
    with ApiClient.login(f"{live_server}/mlbench/", *ADMIN, timeout=20) as api:
        assert isinstance(api.token, str) and api.token.count(".") == 2  # a JWT
        assert api.timeout == 20
        assert api.get_runs() == []
        created = api.create_run("by-login", 1, benchmark="1a")
        assert created["name"] == "by-login"


def test_authenticate_logs_an_anonymous_client_in(live_server, store):
    with ApiClient(f"{live_server}/mlbench") as api:
        assert api.token is None
        with pytest.raises(Unauthorized):
            api.get_runs()
        token = api.authenticate(*ADMIN)
        assert api.token == token
        assert api.get_runs() == []


def test_a_wrong_password_is_unauthorized(live_server, store):
    with pytest.raises(Unauthorized) as caught:
        ApiClient.login(f"{live_server}/mlbench", ADMIN[0], "not-the-password")
    assert caught.value.status == 401
    assert caught.value.message
    assert not caught.value.retryable
    with ApiClient(f"{live_server}/mlbench") as api:
        with pytest.raises(Unauthorized):
            api.authenticate("nobody", ADMIN[1])
        assert api.token is None


def test_login_without_a_server_is_unavailable():
    port = free_port()
    with pytest.raises(ApiUnavailable, match=f"POST http://127.0.0.1:{port}/auth/token"):
        ApiClient.login(f"http://127.0.0.1:{port}/mlbench", *ADMIN, timeout=5)


class _TokenlessLogin:
    """A server answering every request 201 with a JSON body that has no ``access_token``."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = b'{"token_type": "bearer"}'
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_login_answer_without_a_token_is_an_error():
    fake = _TokenlessLogin()
    try:
        with pytest.raises(ApiError, match="no access_token") as caught:
            ApiClient.login(f"{fake.url}/mlbench", *ADMIN)
        assert caught.value.status == 201
        assert type(caught.value) is ApiError
    finally:
        fake.server.shutdown()
        fake.server.server_close()


@pytest.mark.parametrize(
    "suffix", ["/mlbench", "/mlbench/", "/mlbench/api", "/mlbench/api/", "/mlbench// "]
)
def test_api_url_and_root_url(suffix):
    api = ApiClient(" http://127.0.0.1:8080" + suffix + " ")
    assert api.api_url == "http://127.0.0.1:8080/mlbench"
    assert api.root_url == "http://127.0.0.1:8080"
    assert api.base_url == "http://127.0.0.1:8080/mlbench/api"
    elsewhere = ApiClient("https://example.org/tools/mlbench/api")
    assert elsewhere.api_url == "https://example.org/tools/mlbench"
    assert elsewhere.root_url == "https://example.org/tools"


def test_setting_the_token_changes_what_is_sent(client, run, live_server, admin_token):
    assert client.token == admin_token
    assert client.get_run(run["id"])["name"] == "run-a"
    client.token = None
    assert client.token is None
    with pytest.raises(Unauthorized):
        client.get_runs()
    worker_token = ApiClient(f"{live_server}/mlbench", token=admin_token).issue_worker_token(
        run["id"]
    )
    client.token = worker_token
    assert client.token == worker_token
    with pytest.raises(Forbidden, match="a worker token may not do this"):
        client.get_runs()
    assert client.post_metric("loss", 1.0, run_id=run["id"])["run_id"] == run["id"]
    client.token = admin_token
    assert [r["id"] for r in client.get_runs()] == [run["id"]]


def test_unauthorized_token_set_later(live_server, store, admin_token):
    with ApiClient(f"{live_server}/mlbench") as api:
        api.token = "mlbw_1_forged"
        with pytest.raises(Unauthorized, match="unknown or revoked worker token"):
            api.get_pods()
        api.token = admin_token
        assert api.get_pods() == []


def test_stream_reads_a_download_chunk_by_chunk(client, run):
    start = datetime(2024, 1, 1, tzinfo=UTC)
    metrics = [
        {"name": "step", "value": i, "run_id": run["id"], "date": start + timedelta(seconds=i)}
        for i in range(5000)
    ]
    client.post_metrics(metrics)
    params = {"metric_type": "run", "format": "zip", "layout": "mlbench2", "summarize": None}
    with client.stream(f"/metrics/{run['id']}", params=params) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/zip"
        chunks = list(answer.iter_content(4096))
    assert len(chunks) > 1
    body = b"".join(chunks)
    assert body == client.download_run_metrics(run["id"])
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert len(json.loads(archive.read("step.json"))["points"]) == 5000

    with client.stream(f"/metrics/{run['id']}", params={"metric_type": "run"}) as answer:
        series = json.loads(b"".join(answer.iter_content(1024)))
    assert series_values(series["step"]) == [float(i) for i in range(5000)]


def test_stream_raises_the_clients_errors(client, live_server):
    with pytest.raises(NotFound, match="run 4242 not found"):
        client.stream("/metrics/4242", params={"metric_type": "run", "format": "zip"})
    with ApiClient(f"{live_server}/mlbench") as anonymous, pytest.raises(Unauthorized):
        anonymous.stream("/metrics/1", params={"metric_type": "run"})
    with ApiClient(f"http://127.0.0.1:{free_port()}/mlbench", timeout=5) as nobody:
        with pytest.raises(ApiUnavailable, match="cannot reach the API"):
            nobody.stream("/metrics/1")
