"""What the kubernetes backend would send, rendered by the real KubernetesPodOperator and
validated strictly against the Kubernetes schemas (no cluster here)."""

from __future__ import annotations

import kubernetes_validate
import pytest
from kubernetes.client import ApiClient

from mlbench_core.launch import kubernetes as k8s
from mlbench_core.launch.local import local_command
from mlbench_core.launch.workers import worker_command
from mlbench_core.settings import Settings

K8S_VERSION = "1.31.0"
RUNS = [
    {"id": 1, "name": "digits-2w", "benchmark": "digits", "num_workers": 2, "num_cpus": 1},
    {
        "id": 2,
        "name": "r" * 63,
        "benchmark": "1a",
        "num_workers": 4,
        "num_cpus": 0.5,
        "max_bandwidth": 250.5,
        "light_target": True,
        "aggregation": "ddp",
        "synthetic": True,
        "epochs": 1,
        "steps_per_epoch": 20,
        "seed": 5,
        "settings": {"lr": 0.05, "batch_size": 64},
    },
    {
        "id": 3,
        "name": "gpu",
        "benchmark": "1a",
        "num_workers": 2,
        "num_cpus": 4,
        "gpu_enabled": True,
        "backend": "nccl",
    },
    {
        "id": 4,
        "name": "custom",
        "benchmark": None,
        "image_name": "me/bench:1.0",
        "custom_image_command": "python train.py --fast",
        "num_workers": 3,
        "num_cpus": 2,
    },
]


def render(run: dict, settings: Settings) -> list[dict]:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    pods = []
    for kwargs in k8s.pod_kwargs(run, settings):
        operator = KubernetesPodOperator(
            task_id="workers", namespace=settings.namespace, **k8s.POD_DEFAULTS, **kwargs
        )
        pod = operator.build_pod_request_obj(dry_run=True)
        pods.append(ApiClient().sanitize_for_serialization(pod))
    return pods


@pytest.mark.parametrize("run", RUNS, ids=lambda r: r["name"][:10])
def test_every_manifest_is_valid_in_strict_mode(run):
    settings = Settings(namespace="bench", image_registry="registry.local/mlbench")
    manifests = [
        *render(run, settings),
        k8s.service_manifest(run, settings),
        k8s.secret_manifest(run, "mlbw_1_x", settings),
    ]
    for manifest in manifests:
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


@pytest.mark.parametrize("run", RUNS, ids=lambda r: r["name"][:10])
def test_pods_are_what_the_design_says(run):
    settings = Settings(namespace="bench", image_registry="registry.local/mlbench")
    pods = render(run, settings)
    assert len(pods) == run["num_workers"]
    service = k8s.service_name(run)
    for rank, pod in enumerate(pods):
        container = pod["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert pod["metadata"]["name"] == pod["spec"]["hostname"]
        assert len(pod["metadata"]["name"]) <= 63
        assert pod["spec"]["subdomain"] == service
        assert env["MASTER_ADDR"]["value"] == f"{pods[0]['spec']['hostname']}.{service}"
        assert env["RANK"]["value"] == str(rank)
        assert env["WORLD_SIZE"]["value"] == str(run["num_workers"])
        assert env["MLBENCH_API_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == k8s.secret_name(run)
        assert "value" not in env["MLBENCH_API_TOKEN"]
        labels = pod["metadata"]["labels"]
        assert (labels["app"], labels["component"], labels["run"]) == (
            "mlbench",
            "worker",
            str(run["id"]),
        )
        limits = container["resources"]["limits"]
        assert container["resources"]["requests"] == limits
        assert limits["cpu"] == f"{int(run['num_cpus'] * 1000)}m"
        assert ("nvidia.com/gpu" in limits) is bool(run.get("gpu_enabled"))
        annotations = pod["metadata"].get("annotations") or {}
        if run.get("max_bandwidth"):
            assert annotations["kubernetes.io/egress-bandwidth"] == "251M"
            assert annotations["kubernetes.io/ingress-bandwidth"] == "251M"
        else:
            assert not any("bandwidth" in key for key in annotations)
        assert pod["spec"]["restartPolicy"] == "Never"


def test_pod_command_is_exactly_the_local_one():
    run = RUNS[1]
    pod = render(run, Settings())[0]
    container = pod["spec"]["containers"][0]
    assert container["command"] + container["args"] == worker_command(run)
    assert local_command(run)[1:] == container["args"]
    assert container["command"] == ["python"]
    assert container["args"][:2] == ["-m", "mlbench_core.worker"]


def test_run_options_reach_the_worker_command():
    assert worker_command(RUNS[1])[7:] == [
        "--light", "--aggregation", "ddp", "--synthetic", "--epochs", "1", "--steps", "20",
        "--seed", "5", "--set", "batch_size=64", "--set", "lr=0.05",
    ]  # fmt: skip
    container = render(RUNS[1], Settings())[0]["spec"]["containers"][0]
    assert container["args"][-8:] == worker_command(RUNS[1])[-8:]  # the pod gets them too
    assert worker_command(RUNS[2])[-2:] == ["--backend", "nccl"]
    assert "--aggregation" not in worker_command(RUNS[0])


def test_custom_image_runs_its_command():
    pod = render(RUNS[3], Settings())[0]
    container = pod["spec"]["containers"][0]
    assert container["image"] == "me/bench:1.0"
    assert container["command"] + container["args"] == ["/bin/sh", "-c", "python train.py --fast"]


def test_service_is_headless_and_selects_the_runs_workers():
    service = k8s.service_manifest(RUNS[0], Settings())
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {"app": "mlbench", "component": "worker", "run": "1"}


def test_pods_count_their_own_interface_and_know_their_cap():
    capped = RUNS[1]
    env = {
        e["name"]: e.get("value")
        for e in render(capped, Settings())[0]["spec"]["containers"][0]["env"]
    }
    assert env["MLBENCH_NETWORK_INTERFACE"] == "eth0"
    assert env["MLBENCH_MAX_BANDWIDTH"] == "250.5"
    assert "MLBENCH_MAX_BANDWIDTH" not in {
        e["name"] for e in render(RUNS[0], Settings())[0]["spec"]["containers"][0]["env"]
    }


def test_the_record_says_the_cap_is_requested_not_verified():
    limits = k8s.limits(RUNS[1])
    assert limits.backend == "kubernetes"
    assert limits.cpu.status == "enforced" and limits.cpu.by == (
        "Kubernetes CPU limit 500m per pod (the kubelet's CFS quota)"
    )
    assert limits.bandwidth.status == "requested"
    assert "kubernetes.io/ingress-bandwidth and egress-bandwidth 251M" in limits.bandwidth.by
    assert "enforced only if the CNI bandwidth plugin is chained; not verified" in (
        limits.bandwidth.by
    )
    assert k8s.limits(RUNS[0]).bandwidth.status == "none"
