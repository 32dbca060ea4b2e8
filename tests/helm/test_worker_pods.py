"""From the chart to the worker pods: the MLBENCH_* settings the chart gives the Airflow pods
are read by mlbench's settings, and the pods the mlbench_run DAG then starts (rendered by the
real KubernetesPodOperator) validate strictly and use the chart's images, data volume and
GPU placement."""

from __future__ import annotations

import kubernetes_validate
import pytest
from kubernetes.client import ApiClient

from mlbench_core import __version__
from mlbench_core.launch import kubernetes as k8s
from mlbench_core.settings import Settings
from tests.helm.chart import NAMESPACE, env_of, find, kube_version, render
from tests.helm.test_chart import VALUE_SETS

RUNS = [
    {"id": 5, "name": "cifar", "benchmark": "1a", "num_workers": 2, "num_cpus": 2},
    {
        "id": 6,
        "name": "cifar-gpu",
        "benchmark": "1a",
        "num_workers": 2,
        "num_cpus": 4,
        "gpu_enabled": True,
        "backend": "nccl",
        "max_bandwidth": 1000,
    },
    {"id": 7, "name": "eps", "benchmark": "2a", "num_workers": 1, "num_cpus": 1},
]


def chart_settings(values: dict, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings of the chart's scheduler container (where the DAG's tasks run)."""
    objects = render(values)
    container = find(objects, "Deployment", "-scheduler")["spec"]["template"]["spec"]["containers"][
        0
    ]
    for name, entry in env_of(container).items():
        if name.startswith("MLBENCH_") and "value" in entry:
            monkeypatch.setenv(name, entry["value"])
    return Settings()


def worker_pods(run: dict, settings: Settings) -> list[dict]:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    pods = []
    for kwargs in k8s.pod_kwargs(run, settings):
        operator = KubernetesPodOperator(
            task_id="workers", namespace=settings.namespace, **k8s.POD_DEFAULTS, **kwargs
        )
        pods.append(
            ApiClient().sanitize_for_serialization(operator.build_pod_request_obj(dry_run=True))
        )
    return pods


@pytest.mark.parametrize("name", ["defaults", "gpu-workers", "kubernetes-executor"])
@pytest.mark.parametrize("run", RUNS, ids=lambda r: r["name"])
def test_worker_pods_from_the_charts_settings(name, run, monkeypatch):
    values = VALUE_SETS[name]
    settings = chart_settings(values, monkeypatch)
    assert settings.namespace == NAMESPACE
    for pod in worker_pods(run, settings):
        for version in sorted({kube_version(), kubernetes_validate.latest_version()}):
            kubernetes_validate.validate(pod, version, strict=True)
        spec = pod["spec"]
        container = spec["containers"][0]
        registry = values.get("workers", {}).get("imageRegistry", "mlbench")
        family = {"1a": "mlbench-worker-vision", "2a": "mlbench-worker-linear"}[run["benchmark"]]
        assert container["image"] == f"{registry}/{family}:{__version__}"
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert (
            env["MLBENCH_API_URL"]
            == f"http://bench-mlbench-api-server.{NAMESPACE}.svc:8080/mlbench"
        )
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        if name == "kubernetes-executor":  # no dataset volume
            assert "data" not in volumes and "MLBENCH_DATA_DIR" not in env
        else:
            claim = "datasets" if name == "gpu-workers" else "bench-mlbench-data"
            assert volumes["data"]["persistentVolumeClaim"]["claimName"] == claim
            assert {"name": "data", "mountPath": "/data"} in container["volumeMounts"]
            assert env["MLBENCH_DATA_DIR"] == "/data"
            assert spec["securityContext"] == {"fsGroup": 0}  # writable for the image's user
        if name == "gpu-workers":
            assert env["MLBENCH_DATA_URL"] == "https://mirror.example.com/datasets"
            assert env["MLBENCH_DATA_CHECKSUMS"].startswith('{"cifar-10-python.tar.gz": "md5:')
        gpu = bool(run.get("gpu_enabled"))
        assert ("nvidia.com/gpu" in container["resources"]["limits"]) is gpu
        placed = gpu and name == "gpu-workers"
        assert (spec.get("nodeSelector") == {"nvidia.com/gpu.present": "true"}) is placed
        tolerations = spec.get("tolerations") or []
        assert any(t.get("key") == "nvidia.com/gpu" for t in tolerations) is placed
