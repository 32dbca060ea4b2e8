"""``mlbench deploy`` (the chart through helm, or rendered offline) and
``mlbench get-dashboard-url`` (against a stand-in Kubernetes API with recorded answers)."""

from __future__ import annotations

import os
import stat

import pytest
import yaml

from mlbench_core.cli import main
from tests.kubeapi import FakeKubeApi, recorded, write_kubeconfig

NS = "mlbench"


@pytest.fixture
def run(capsys, settings_env):
    settings_env.setenv("MLBENCH_NAMESPACE", NS)

    def call(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return call


@pytest.fixture
def no_helm(monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


@pytest.fixture
def fake_helm(monkeypatch, tmp_path):
    """A ``helm`` on PATH that records its arguments (one per line) and prints a manifest."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "helm-args"
    script = bin_dir / "helm"
    script.write_text(
        "#!/bin/sh\n"
        f'for a in "$@"; do echo "$a"; done > {record}\n'
        'echo "kind: Service"\n'
        'exit "${FAKE_HELM_EXIT:-0}"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return record


def test_render_offline_with_values_and_sets(run, no_helm, tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text("workers:\n  imageRegistry: registry.example.com/mlbench\n")
    code, out, err = run(
        "deploy", "--render", "--release", "prod", "-f", str(values),
        "--set", "workers.maxWorkers=32", "--set", "airflow.executor=KubernetesExecutor",
    )  # fmt: skip
    assert code == 0, err
    docs = [d for d in yaml.safe_load_all(out) if d]
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("Deployment", "prod-mlbench-api-server") in names
    assert ("ConfigMap", "prod-mlbench-pod-template") in names
    scheduler = next(d for d in docs if d["metadata"]["name"] == "prod-mlbench-scheduler")
    env = {
        e["name"]: e.get("value")
        for e in scheduler["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MLBENCH_MAX_WORKERS"] == "32"
    assert env["MLBENCH_IMAGE_REGISTRY"] == "registry.example.com/mlbench"
    assert env["MLBENCH_NAMESPACE"] == NS
    assert "# Source: mlbench/templates/rbac.yaml" in out


def test_render_to_a_file(run, no_helm, tmp_path):
    target = tmp_path / "out.yaml"
    code, out, _ = run("deploy", "--render", "-o", str(target))
    assert code == 0 and "wrote the manifests" in out
    assert any(d["kind"] == "Role" for d in yaml.safe_load_all(target.read_text()) if d)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "airflow.executor=CeleryExecutor"], "/airflow/executor"),
        (["--set", "nonsense"], "--set needs KEY=VALUE"),
        (["-f", "/nonexistent.yaml"], "--values: no file"),
        (["--chart", "/tmp"], "no Helm chart at /tmp"),
        (["--release", "Bad_Name"], "not a release name"),
        (["--unknown"], "unrecognized arguments"),
    ],
)
def test_refused_input_is_one_line_and_exit_2(run, no_helm, args, message):
    code, _, err = run("deploy", "--render", *args)
    assert code == 2, err
    assert message in err and err.count("\n") == 1


def test_output_goes_with_render(run, no_helm):
    code, _, err = run("deploy", "-o", "x.yaml")
    assert code == 2 and "--output goes with --render" in err


def test_install_needs_the_helm_binary(run, no_helm):
    code, _, err = run("deploy")
    assert code == 1 and "the helm binary is needed" in err and "--render" in err


def test_install_calls_helm_upgrade_install(run, fake_helm, tmp_path):
    values = tmp_path / "v.yaml"
    values.write_text("{}\n")
    code, out, err = run("deploy", "--release", "prod", "-f", str(values), "--set", "a=b", "--wait")
    assert code == 0, err
    argv = fake_helm.read_text().split("\n")[:-1]
    chart = argv[3]
    assert argv == [
        "upgrade", "--install", "prod", chart, "--namespace", NS, "--create-namespace",
        "--wait", "--timeout", "15m", "--values", str(values), "--set", "a=b",
    ]  # fmt: skip
    assert chart.endswith("helm/mlbench")
    assert "mlbench get-dashboard-url --release prod" in out


def test_render_uses_helm_template_when_there_is_helm(run, fake_helm):
    code, out, _ = run("deploy", "--render", "-n", "other")
    assert code == 0 and out == "kind: Service\n"
    assert fake_helm.read_text().split("\n")[:2] == ["template", "mlbench"]
    assert "other" in fake_helm.read_text().split("\n")


def test_failing_helm_is_an_error(run, fake_helm, monkeypatch):
    monkeypatch.setenv("FAKE_HELM_EXIT", "1")
    code, _, err = run("deploy")
    assert code == 1 and "helm upgrade --install failed (exit 1)" in err


def test_dry_run_prints_the_command(run, no_helm):
    code, out, _ = run("deploy", "--dry-run", "--set", "service.type=NodePort")
    assert code == 0
    assert out.startswith("helm upgrade --install mlbench ")
    assert out.rstrip().endswith("--set service.type=NodePort")


# -- get-dashboard-url -----------------------------------------------------------------------

SERVICES = f"/api/v1/namespaces/{NS}/services"
INGRESSES = f"/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses"


@pytest.fixture
def cluster(tmp_path):
    with FakeKubeApi() as api:
        api.answer(INGRESSES, recorded("ingresses-empty"))
        api.answer(SERVICES, recorded("services-clusterip"))
        api.answer("/api/v1/nodes", recorded("nodes"))
        api.kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
        yield api


def dashboard(run, cluster, *extra: str) -> tuple[int, str, str]:
    return run(
        "get-dashboard-url", "--release", "prod", "--kubeconfig", str(cluster.kubeconfig), *extra
    )


def test_url_through_the_ingress(run, cluster):
    cluster.answer(INGRESSES, recorded("ingresses"))
    code, out, err = dashboard(run, cluster)
    assert (code, out) == (0, "https://mlbench.example.com/mlbench/\n")
    assert "Ingress prod-mlbench" in err
    (request,) = cluster.requests_to(INGRESSES)
    assert request.query["labelSelector"] == ["app.kubernetes.io/instance=prod"]


def test_url_of_a_cluster_ip_service_needs_a_port_forward(run, cluster):
    code, out, err = dashboard(run, cluster)
    assert (code, out) == (0, "http://127.0.0.1:8080/mlbench/\n")
    assert "kubectl port-forward -n mlbench svc/prod-mlbench-api-server 8080:8080" in err
    (request,) = cluster.requests_to(SERVICES)
    assert request.query["labelSelector"] == [
        "app.kubernetes.io/instance=prod,app.kubernetes.io/component=api-server"
    ]


@pytest.mark.parametrize(
    ("services", "url"),
    [
        ("services-nodeport", "http://10.0.0.11:30080/mlbench/"),
        ("services-loadbalancer", "http://203.0.113.10:8080/mlbench/"),
    ],
)
def test_url_of_node_port_and_load_balancer(run, cluster, services, url):
    cluster.answer(SERVICES, recorded(services))
    code, out, err = dashboard(run, cluster)
    assert (code, out) == (0, url + "\n"), err


@pytest.mark.parametrize(
    ("services", "status", "message"),
    [
        ("services-loadbalancer-pending", 200, "has no address yet"),
        ("services-empty", 200, "no mlbench release 'prod' in namespace 'mlbench'"),
        ("status-unauthorized", 401, "the Kubernetes API refused: 401 Unauthorized"),
    ],
)
def test_no_url(run, cluster, services, status, message):
    cluster.answer(SERVICES, recorded(services), status=status)
    code, out, err = dashboard(run, cluster)
    assert (code, out) == (1, "")
    assert message in err and err.count("\n") == 1


def test_no_kubeconfig(run, tmp_path):
    code, _, err = run("get-dashboard-url", "--kubeconfig", str(tmp_path / "none"))
    assert code == 1 and "no usable kubeconfig" in err
