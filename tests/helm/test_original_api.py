"""The original mlbench's clients (mlbench-core 3.0.0) find and reach this chart's API.

They look for "the master" by the labels ``app=mlbench,component=master``: in a cluster the
one pod so labelled in namespace ``default`` (then ``http://<its IP>:80/api/``), outside the
one Service so labelled (its ClusterIP and first port, or the node port of its port 80). The
chart labels the api-server pod and the Service ``<release>-mlbench-master`` so, and serves
``/api/...`` on the pod's port 80 from an nginx sidecar in front of the api-server.

Checked here: the rendered manifests (one such pod, one such Service, port 80 to the
sidecar's port 80); the rendered nginx.conf through the real nginx, ``nginx -t`` and then
running in front of a local HTTP server (only its listen and upstream ports moved to free
loopback ports); and the original client's own discovery code, run in its own environment,
against a local stand-in of the Kubernetes API that serves the rendered manifests as a
cluster would list them.
"""

from __future__ import annotations

import copy
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.helm.chart import RELEASE, find, pod_template, render, render_files
from tests.helm.test_chart import VALUE_SETS
from tests.kubeapi import (
    TOKEN,
    FakeKubeApi,
    LoopbackServer,
    recorded,
    self_signed,
    write_kubeconfig,
)
from tests.kubeapi.cluster import _selected
from tests.support.original import original_env, run_original

MASTER = {"app": "mlbench", "component": "master"}
SELECTOR = "component=master,app=mlbench"  # the original ApiClient's label_selector
ORIGINAL_NAMESPACE = "default"  # where the original looks for the master pod
API_SERVER = f"{RELEASE}-mlbench-api-server"
MASTER_SERVICE = f"{RELEASE}-mlbench-master"
NODE = "worker-a"
NODE_IP = "127.0.0.11"


def labels_of(obj: dict[str, Any]) -> dict[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def pod_templates(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(owner, pod template: metadata and spec) of every pod the chart makes."""
    out = [
        (o["metadata"]["name"], o["spec"]["template"])
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet", "Job")
    ]
    if (template := pod_template(objects)) is not None:
        out.append(("kubernetes-executor-task", template))
    return out


def api_server_pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return find(objects, "Deployment", "-api-server")["spec"]["template"]


def container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in pod["spec"]["containers"] if c["name"] == name]
    return found


def nginx_conf(objects: list[dict[str, Any]]) -> str:
    return find(objects, "ConfigMap", "-master")["data"]["nginx.conf"]


# -- the manifests ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_one_master_pod_and_one_master_service(name):
    values = VALUE_SETS[name]
    objects = render(values)
    original = values.get("originalApi", {})
    masters = [o for o, t in pod_templates(objects) if MASTER.items() <= labels_of(t).items()]
    services = [
        o for o in objects if o["kind"] == "Service" and MASTER.items() <= labels_of(o).items()
    ]
    if not original.get("enabled", True):
        assert masters == [] and services == []
        assert [c["name"] for c in api_server_pod(objects)["spec"]["containers"]] == ["api-server"]
        return
    assert masters == [API_SERVER]
    assert find(objects, "Deployment", "-api-server")["spec"]["replicas"] == 1
    (service,) = services
    assert service["metadata"]["name"] == MASTER_SERVICE
    assert service["spec"]["type"] == original.get("service", {}).get("type", "ClusterIP")
    pod = api_server_pod(objects)
    assert service["spec"]["selector"].items() <= labels_of(pod).items()
    # the original takes ports[0] (ClusterIP, LoadBalancer) or the port 80 (NodePort)
    port = service["spec"]["ports"][0]
    assert port["port"] == 80 and len(service["spec"]["ports"]) == 1
    if "nodePort" in original.get("service", {}):
        assert port["nodePort"] == original["service"]["nodePort"]
    sidecar = container(pod, "original-api")
    (target,) = [p for p in sidecar["ports"] if p["name"] == port["targetPort"]]
    assert target["containerPort"] == 80
    # our own `mlbench get-dashboard-url` still finds the api-server's Service alone
    ours = {"app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/component": "api-server"}
    assert [
        o["metadata"]["name"]
        for o in objects
        if o["kind"] == "Service" and ours.items() <= labels_of(o).items()
    ] == [API_SERVER]


def test_the_ingress_sends_api_to_the_sidecar_and_the_rest_where_it_went():
    objects = render(VALUE_SETS["ingress"])
    paths = find(objects, "Ingress")["spec"]["rules"][0]["http"]["paths"]
    routes = {p["path"]: (p["pathType"], p["backend"]["service"]) for p in paths}
    assert routes == {
        "/api/v2": ("Prefix", {"name": API_SERVER, "port": {"name": "http"}}),
        "/api": ("Prefix", {"name": MASTER_SERVICE, "port": {"name": "http"}}),
        "/": ("Prefix", {"name": API_SERVER, "port": {"name": "http"}}),
    }
    values = {**VALUE_SETS["ingress"], "originalApi": {"enabled": False}}
    (path,) = find(render(values), "Ingress")["spec"]["rules"][0]["http"]["paths"]
    assert path["path"] == "/" and path["backend"]["service"]["name"] == API_SERVER


@pytest.mark.parametrize("namespace", [ORIGINAL_NAMESPACE, "mlbench"])
def test_notes_tell_where_the_original_finds_the_master(namespace):
    def notes(values: dict[str, Any]) -> str:
        files = render_files(values, namespace=namespace)
        return next(t for p, t in files.items() if p.endswith("NOTES.txt"))

    text = notes(VALUE_SETS["ingress"])
    assert f"the Service {MASTER_SERVICE} (port 80), or `-u mlbench.example.com`" in text
    caveat = "they look in namespace `default`\n   only, not in mlbench:"
    assert (caveat in text) is (namespace != ORIGINAL_NAMESPACE)
    assert "Original mlbench clients" not in notes({"originalApi": {"enabled": False}})


def test_the_sidecar_runs_the_charts_nginx_conf_unprivileged():
    objects = render({})
    pod = api_server_pod(objects)
    sidecar = container(pod, "original-api")
    command = sidecar["command"]
    assert command[0] == "nginx" and command[-2:] == ["-g", "daemon off;"]
    prefix, config = command[command.index("-p") + 1], command[command.index("-c") + 1]
    mounts = {m["name"]: m["mountPath"] for m in sidecar["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    config_volume = next(n for n, v in volumes.items() if "configMap" in v)
    assert volumes[config_volume]["configMap"]["name"] == MASTER_SERVICE
    assert config == f"{mounts[config_volume]}/nginx.conf"
    (writable,) = [n for n, p in mounts.items() if prefix.rstrip("/") == p]
    assert "emptyDir" in volumes[writable]
    # not root, nothing added, read-only image; the pod lets it bind port 80
    security = sidecar["securityContext"]
    assert security["runAsUser"] != 0 and pod["spec"]["securityContext"]["runAsNonRoot"]
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    assert security["capabilities"] == {"drop": ["ALL"]}
    sysctls = {s["name"]: s["value"] for s in pod["spec"]["securityContext"]["sysctls"]}
    assert int(sysctls["net.ipv4.ip_unprivileged_port_start"]) <= 80
    assert set(sidecar["resources"]) == {"requests", "limits"}
    # the conf: port 80, the api-server's port as upstream, /api/ to /mlbench/api/
    conf = nginx_conf(objects)
    api = container(pod, "api-server")
    (http_port,) = [p["containerPort"] for p in api["ports"] if p["name"] == "http"]
    assert re.findall(r"^\s*listen\s+(\S+);", conf, re.M) == ["80"]
    assert re.findall(r"^\s*server\s+(\S+);", conf, re.M) == [f"127.0.0.1:{http_port}"]
    locations = dict(re.findall(r"location\s+([^{]+?)\s*\{\s*([^}]*?)\s*\}", conf))
    assert locations["/api/"] == "proxy_pass http://api_server/mlbench/api/;"
    assert locations["/api/v2"] == "proxy_pass http://api_server;"
    # a new conf rolls the pod
    digest = hashlib.sha256(conf.removesuffix("\n").encode()).hexdigest()
    assert pod["metadata"]["annotations"]["checksum/original-api"] == digest


# -- the nginx.conf, in nginx ----------------------------------------------------------------


def require_nginx() -> str:
    """The nginx binary (Debian: ``apt-get install nginx``); missing: fails under CI=true,
    skips elsewhere."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None
    )
    if found is None:
        reason = "nginx is not installed (Debian: apt-get install nginx)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: required)")
        pytest.skip(reason)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def on_loopback(conf: str, listen: int, upstream: int) -> str:
    """The conf with only its listen port and upstream address moved to loopback ports."""
    conf, listens = re.subn(
        r"^(\s*)listen 80;$", rf"\1listen 127.0.0.1:{listen};", conf, flags=re.M
    )
    conf, servers = re.subn(
        r"^(\s*)server 127\.0\.0\.1:8080;$", rf"\1server 127.0.0.1:{upstream};", conf, flags=re.M
    )
    assert (listens, servers) == (1, 1)
    return conf


def test_nginx_accepts_the_rendered_conf(tmp_path):
    nginx = require_nginx()
    (tmp_path / "nginx.conf").write_text(nginx_conf(render({})))
    checked = subprocess.run(
        [nginx, "-t", "-p", f"{tmp_path}/", "-c", str(tmp_path / "nginx.conf"), "-e", "stderr"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


DOWNLOAD = hashlib.sha256(b"zip").digest() * (8 * 1024 * 1024 // 32)  # 8 MiB, "a run's zip"


class Upstream(LoopbackServer):
    """Stands in for the api-server: answers every request with what it received (method,
    path, headers, body digest) as JSON, and a run's download with :data:`DOWNLOAD`."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def __enter__(self) -> Upstream:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # nginx keeps its upstream connections alive

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    self.rfile.readline()
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _answer(self) -> None:
                body = self._body()
                seen = {
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "length": len(body),
                    "sha256": hashlib.sha256(body).hexdigest(),
                    "body": body[:4096].decode("latin-1"),
                }
                upstream.seen.append(seen)
                if self.path.endswith("/download/"):
                    data, kind = DOWNLOAD, "application/zip"
                else:
                    data, kind = json.dumps(seen).encode(), "application/json"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _answer  # noqa: N815 - http.server's naming

            def log_message(self, *_args: Any) -> None:
                pass

        self._serve(Handler)
        return self


@pytest.fixture
def proxy(tmp_path) -> Iterator[tuple[int, Upstream]]:
    """The rendered nginx.conf run by nginx on a free loopback port in front of
    :class:`Upstream`: (nginx's port, the upstream)."""
    nginx = require_nginx()
    listen = free_port()
    objects = render({})
    # the sidecar's command, its prefix and conf here
    argv = [nginx, *container(api_server_pod(objects), "original-api")["command"][1:]]
    argv[argv.index("-p") + 1] = f"{tmp_path}/"
    argv[argv.index("-c") + 1] = str(tmp_path / "nginx.conf")
    with Upstream() as upstream:
        (tmp_path / "nginx.conf").write_text(
            on_loopback(nginx_conf(objects), listen, upstream.port)
        )
        log = (tmp_path / "nginx.log").open("wb")
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 15
            while True:
                assert process.poll() is None, (tmp_path / "nginx.log").read_text()
                try:
                    socket.create_connection(("127.0.0.1", listen), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "nginx did not listen"
                    time.sleep(0.05)
            yield listen, upstream
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


def call(
    port: int, method: str, path: str, body: bytes | None = None, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_the_original_api_reaches_the_mlbench_api_with_bodies_intact(proxy):
    port, upstream = proxy
    # a run as the original client's create_run posts it (a form), with a bearer token
    form = urlencode({"name": "orig", "num_workers": "2", "image_name": "a b&c=d/é"}).encode()
    status, _, answer = call(
        port,
        "POST",
        "/api/runs/",
        form,
        **{"Content-Type": "application/x-www-form-urlencoded", "Authorization": "Bearer t0k"},
    )
    seen = json.loads(answer)
    assert status == 200 and upstream.seen == [seen]
    assert (seen["method"], seen["path"]) == ("POST", "/mlbench/api/runs/")
    assert seen["body"].encode("latin-1") == form
    headers = seen["headers"]
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert headers["authorization"] == "Bearer t0k"
    assert headers["host"] == f"127.0.0.1:{port}"  # as the client sent it
    assert headers["x-forwarded-for"] == headers["x-real-ip"] == "127.0.0.1"
    assert (headers["x-forwarded-proto"], headers["x-forwarded-host"]) == (
        "http",
        f"127.0.0.1:{port}",
    )
    assert headers["x-forwarded-port"] == str(port)

    # a metric batch larger than nginx's default limit (1m), whole
    batch = json.dumps([{"name": f"m{i}", "value": i} for i in range(150_000)]).encode()
    assert len(batch) > 4 * 1024 * 1024
    status, _, answer = call(
        port, "POST", "/api/metrics/", batch, **{"Content-Type": "application/json"}
    )
    assert status == 200, answer[:300]
    seen = json.loads(answer)
    assert (seen["path"], seen["length"]) == ("/mlbench/api/metrics/", len(batch))
    assert seen["sha256"] == hashlib.sha256(batch).hexdigest()

    # queries, other methods, Airflow's own API, the rest of the api-server
    for method, path, reached in [
        ("GET", "/api/runs/?limit=5&offset=10", "/mlbench/api/runs/?limit=5&offset=10"),
        ("GET", "/api/pods/", "/mlbench/api/pods/"),
        ("DELETE", "/api/runs/7/", "/mlbench/api/runs/7/"),
        ("GET", "/api/v2/monitor/health", "/api/v2/monitor/health"),
        ("GET", "/api/v2/dags?limit=1", "/api/v2/dags?limit=1"),
        ("GET", "/mlbench/api/runs/", "/mlbench/api/runs/"),
        ("GET", "/mlbench/", "/mlbench/"),
    ]:
        status, _, answer = call(port, method, path)
        assert (status, json.loads(answer)["method"], json.loads(answer)["path"]) == (
            200,
            method,
            reached,
        )

    # the original's dashboard URL (the root) is the dashboard
    before = len(upstream.seen)
    status, headers, _ = call(port, "GET", "/")
    assert (status, headers["location"]) == (302, "/mlbench/") and len(upstream.seen) == before


def test_behind_the_ingress_its_forwarded_headers_are_kept(proxy):
    port, _ = proxy
    status, _, answer = call(
        port,
        "GET",
        "/api/runs/",
        **{
            "Host": "mlbench.example.com",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "mlbench.example.com",
            "X-Forwarded-Port": "443",
            "X-Forwarded-For": "203.0.113.5",
        },
    )
    headers = json.loads(answer)["headers"]
    assert status == 200 and headers["host"] == "mlbench.example.com"
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-host"] == "mlbench.example.com"
    assert headers["x-forwarded-port"] == "443"
    assert headers["x-forwarded-for"] == "203.0.113.5, 127.0.0.1"


def test_a_runs_download_streams_through_whole(proxy):
    port, _ = proxy
    status, headers, data = call(port, "GET", "/api/runs/7/download/")
    assert (status, headers["content-type"]) == (200, "application/zip")
    assert len(data) == len(DOWNLOAD) and data == DOWNLOAD


# -- the original client's discovery, against the rendered manifests -------------------------

IN_CLUSTER = """
import json, sys
from kubernetes.config import incluster_config
# the service account's files of a pod, here elsewhere
incluster_config.SERVICE_TOKEN_FILENAME, incluster_config.SERVICE_CERT_FILENAME = sys.argv[1:3]
from mlbench_core.utils.log_metrics import LogMetrics  # as the original worker images do
print(json.dumps({"in_cluster": LogMetrics.in_cluster, "endpoint": LogMetrics.api.endpoint}))
"""
OUT_OF_CLUSTER = """
import json
from mlbench_core.api import ApiClient
print(json.dumps({"endpoint": ApiClient(in_cluster=False).endpoint}))
"""


def cluster_pods(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chart's pods as the API lists them (in namespace ``default``, running on
    :data:`NODE`, each with an IP of its own), and a worker pod of a run."""
    pods = []
    for i, (owner, template) in enumerate(pod_templates(objects)):
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{owner}-5d8f7c9b4-{i:05d}",
                    "namespace": ORIGINAL_NAMESPACE,
                    "labels": labels_of(template),
                },
                "spec": {**copy.deepcopy(template["spec"]), "nodeName": NODE},
                "status": {"phase": "Running", "hostIP": NODE_IP, "podIP": f"127.0.0.{20 + i}"},
            }
        )
    worker = copy.deepcopy(recorded("pods-first")["items"][0])
    assert labels_of(worker)["component"] == "worker"
    worker["metadata"]["namespace"] = ORIGINAL_NAMESPACE
    return pods + [worker]


def cluster_services(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chart's Services as the API lists them (addresses and node ports assigned), and
    the api-server's Service of another release in another namespace."""
    services = []
    for i, obj in enumerate(o for o in objects if o["kind"] == "Service"):
        service = copy.deepcopy(obj)
        service["metadata"]["namespace"] = ORIGINAL_NAMESPACE
        service["spec"]["clusterIP"] = f"127.0.1.{10 + i}"
        for j, port in enumerate(service["spec"]["ports"]):
            if service["spec"]["type"] != "ClusterIP":
                port.setdefault("nodePort", 31000 + 10 * i + j)
        service["status"] = {"loadBalancer": {}}
        if service["spec"]["type"] == "LoadBalancer":
            service["status"] = {"loadBalancer": {"ingress": [{"ip": f"127.0.2.{10 + i}"}]}}
        services.append(service)
    return services + recorded("services-clusterip")["items"]


def listing(kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    selected = [i for i in items if _selected(labels_of(i), SELECTOR)]
    return {"kind": kind, "apiVersion": "v1", "metadata": {}, "items": selected}


def node() -> dict[str, Any]:
    found = copy.deepcopy(recorded("nodes")["items"][0])
    assert found["metadata"]["name"] == NODE
    found["status"]["addresses"] = [
        {"type": "InternalIP", "address": NODE_IP},
        {"type": "Hostname", "address": NODE},
    ]
    return found


@pytest.fixture
def kube_api(tmp_path) -> Iterator[FakeKubeApi]:
    """The stand-in Kubernetes API over TLS (as a pod's service account reaches it)."""
    with FakeKubeApi(tls=self_signed(tmp_path)) as api:
        yield api


PODS = f"/api/v1/namespaces/{ORIGINAL_NAMESPACE}/pods"


@pytest.mark.parametrize("enabled", [True, False])
def test_the_original_worker_images_find_the_master_pod(
    original_client, kube_api, tmp_path, enabled
):
    objects = render({"originalApi": {"enabled": enabled}}, namespace=ORIGINAL_NAMESPACE)
    pods = cluster_pods(objects)
    kube_api.answer(PODS, listing("PodList", pods))
    token = tmp_path / "token"
    token.write_text(TOKEN)
    cert, _ = kube_api.tls
    env = original_env(
        KUBERNETES_SERVICE_HOST="127.0.0.1", KUBERNETES_SERVICE_PORT=str(kube_api.port)
    )
    found = run_original(["-c", IN_CLUSTER, str(token), str(cert)], env=env)
    (request,) = kube_api.requests_to(PODS)
    assert request.query["labelSelector"] == [SELECTOR]
    assert request.headers["authorization"] == f"bearer {TOKEN}"
    if not enabled:  # no master pod: the original's assertion
        assert found.returncode != 0 and "AssertionError" in found.stderr
        return
    assert found.returncode == 0, found.stderr
    (master,) = [p for p in pods if p["metadata"]["name"].startswith(f"{API_SERVER}-")]
    assert json.loads(found.stdout) == {
        "in_cluster": True,
        "endpoint": f"http://{master['status']['podIP']}:80/api/",
    }


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ({"type": "ClusterIP"}, "http://{cluster_ip}:80/api/"),
        ({"type": "NodePort", "nodePort": 30080}, f"http://{NODE_IP}:30080/api/"),
        ({"type": "NodePort"}, f"http://{NODE_IP}:{{node_port}}/api/"),
    ],
    ids=["cluster-ip", "node-port", "node-port-assigned"],
)
def test_the_original_cli_finds_the_master_service(original_client, tmp_path, service, expected):
    objects = render({"originalApi": {"service": service}}, namespace=ORIGINAL_NAMESPACE)
    services = cluster_services(objects)
    with FakeKubeApi() as api:
        api.answer("/api/v1/services", listing("ServiceList", services))
        api.answer(PODS, listing("PodList", cluster_pods(objects)))
        api.answer(f"/api/v1/nodes/{NODE}", node())
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
        found = run_original(["-c", OUT_OF_CLUSTER], env=original_env(KUBECONFIG=str(kubeconfig)))
        assert found.returncode == 0, found.stderr
        (request,) = api.requests_to("/api/v1/services")
        assert request.query["labelSelector"] == [SELECTOR]
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
    (master,) = [s for s in services if s["metadata"]["name"] == MASTER_SERVICE]
    (port,) = master["spec"]["ports"]
    assert json.loads(found.stdout)["endpoint"] == expected.format(
        cluster_ip=master["spec"]["clusterIP"], node_port=port.get("nodePort")
    )


def test_the_originals_load_balancer_discovery_is_broken_as_the_readme_says(
    original_client, tmp_path
):
    """mlbench-core 3.0.0 reads ``status.load_balancer.ingress.ip`` of a list: a LoadBalancer
    master Service is reachable, but the original finds it only with ``-u``."""
    objects = render({"originalApi": {"service": {"type": "LoadBalancer"}}})
    with FakeKubeApi() as api:
        api.answer("/api/v1/services", listing("ServiceList", cluster_services(objects)))
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
        found = run_original(["-c", OUT_OF_CLUSTER], env=original_env(KUBECONFIG=str(kubeconfig)))
    assert found.returncode != 0
    assert "AttributeError: 'list' object has no attribute 'ip'" in found.stderr
