"""The kubernetes backend: what the ``mlbench_run`` DAG sends to the cluster for a run.

One pod per rank (through ``KubernetesPodOperator``, mapped over the ranks), each with a
stable DNS name ``<pod>.<service>`` behind a headless Service, the worker token from a
Secret, CPU (and GPU) requests and limits, and bandwidth annotations. Everything here is
plain manifests (camelCase dicts), so it can be validated without a cluster.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from mlbench_core import __version__
from mlbench_core.api.client import ApiClient
from mlbench_core.launch.backend import Capabilities, Echo, Enforcement
from mlbench_core.launch.limits import Limit, Limits, Status, uncapped
from mlbench_core.launch.workers import (
    WORKER_PORT,
    pod_labels,
    pod_name,
    training_env,
    worker_command,
    worker_env,
)
from mlbench_core.settings import Settings, get_settings

TOKEN_KEY = "token"
POD_INTERFACE = "eth0"  # the pod's interface, as CNI plugins name it
DATA_MOUNT = "/data"  # where the datasets' volume (MLBENCH_DATA_VOLUME_CLAIM) is mounted


def service_name(run: dict[str, Any]) -> str:
    return f"mlbench-run-{run['id']}"


def secret_name(run: dict[str, Any]) -> str:
    return f"mlbench-run-{run['id']}-token"


def worker_image(run: dict[str, Any], settings: Settings) -> str:
    """The run's own image, else its benchmark family's (``worker_images/``) in the registry."""
    if run.get("image_name"):
        return run["image_name"]
    from mlbench_core.benchmarks import REGISTRY

    spec = REGISTRY.get(run.get("benchmark") or "")
    image = spec.image if spec is not None else "mlbench-worker"
    return f"{settings.image_registry}/{image}:{__version__}"


def _placement(run: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Pod spec fields of the data volume and of GPU scheduling."""
    spec: dict[str, Any] = {}
    if settings.data_volume_claim:
        claim = {"claimName": settings.data_volume_claim}
        spec["volumes"] = [{"name": "data", "persistentVolumeClaim": claim}]
        # the worker images run as uid 1000, group 0: the volume is made writable for group 0
        spec["securityContext"] = {"fsGroup": 0}
    if run.get("gpu_enabled"):
        if settings.gpu_node_selector:
            spec["nodeSelector"] = dict(settings.gpu_node_selector)
        if settings.gpu_tolerations:
            spec["tolerations"] = [dict(t) for t in settings.gpu_tolerations]
    return spec


def _cpu(value: float) -> str:
    return f"{math.ceil(value * 1000)}m"


def resources(run: dict[str, Any]) -> dict[str, Any]:
    amount = {"cpu": _cpu(float(run.get("num_cpus") or 1))}
    if run.get("gpu_enabled"):
        amount["nvidia.com/gpu"] = "1"
    return {"requests": dict(amount), "limits": dict(amount)}


def annotations(run: dict[str, Any]) -> dict[str, str]:
    """The bandwidth cap, in the annotations the CNI bandwidth plugin reads."""
    if not run.get("max_bandwidth"):
        return {}
    rate = f"{math.ceil(float(run['max_bandwidth']))}M"
    return {"kubernetes.io/ingress-bandwidth": rate, "kubernetes.io/egress-bandwidth": rate}


def limits(run: dict[str, Any]) -> Limits:
    """What the cluster is asked to enforce. The CPU limit is the kubelet's CFS quota. The
    bandwidth annotations are read only by the CNI bandwidth plugin when it is chained in
    the cluster's CNI configuration, and its default bucket (containerd: ~512 MiB) leaves
    short transfers unshaped: the cap is requested, not verified."""
    cpu = resources(run)["limits"]["cpu"]
    cap = run.get("max_bandwidth")
    bandwidth = uncapped() if cap is None else Limit(
        requested=cap,
        status=Status.REQUESTED,
        by="pod annotations kubernetes.io/ingress-bandwidth and egress-bandwidth "
        f"{annotations(run)['kubernetes.io/egress-bandwidth']}: enforced only if the CNI "
        "bandwidth plugin is chained; not verified",
    )  # fmt: skip
    return Limits(
        backend="kubernetes",
        cpu=Limit(
            requested=float(run.get("num_cpus") or 1),
            status=Status.ENFORCED,
            by=f"Kubernetes CPU limit {cpu} per pod (the kubelet's CFS quota)",
        ),
        bandwidth=bandwidth,
        network="a pod per rank on the cluster's network; the API over the same interface",
    )


def service_manifest(run: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The headless Service giving each worker pod the DNS name ``<hostname>.<service>``."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name(run),
            "namespace": settings.namespace,
            "labels": {"app": "mlbench", "component": "worker", "run": str(run["id"])},
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {"app": "mlbench", "component": "worker", "run": str(run["id"])},
            "ports": [{"name": "rendezvous", "port": WORKER_PORT, "targetPort": WORKER_PORT}],
        },
    }


def secret_manifest(run: dict[str, Any], token: str, settings: Settings) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name(run),
            "namespace": settings.namespace,
            "labels": {"app": "mlbench", "run": str(run["id"])},
        },
        "type": "Opaque",
        "stringData": {TOKEN_KEY: token},
    }


def pod_kwargs(run: dict[str, Any], settings: Settings) -> list[dict[str, Any]]:
    """``KubernetesPodOperator`` arguments of each rank (``.expand_kwargs`` over this list).

    Only JSON values, so the list travels as the setup task's XCom; the resources and the
    token's secret reference go in ``pod_template_dict``, which the operator merges with
    what it builds.
    """
    service = service_name(run)
    # each rank's DNS name, as the original mlbench formatted {hosts} ("<pod>.<set>")
    hosts = [f"{pod_name(run, rank)}.{service}" for rank in range(run["num_workers"])]
    out = []
    for rank in range(run["num_workers"]):
        name = pod_name(run, rank)
        command = worker_command(run, rank, hosts)
        env = (
            worker_env(
                run,
                rank,
                master_addr=f"{pod_name(run, 0)}.{service}",
                master_port=WORKER_PORT,
                api_url=settings.api_url,
            )
            | training_env(settings, DATA_MOUNT if settings.data_volume_claim else None)
            | {"MLBENCH_NETWORK_INTERFACE": POD_INTERFACE}
        )
        container: dict[str, Any] = {
            "name": "base",
            "resources": resources(run),
            "ports": [{"containerPort": WORKER_PORT, "name": "rendezvous"}],
            "env": [
                {
                    "name": "MLBENCH_API_TOKEN",
                    "valueFrom": {"secretKeyRef": {"name": secret_name(run), "key": TOKEN_KEY}},
                }
            ],
        }
        if settings.data_volume_claim:
            container["volumeMounts"] = [{"name": "data", "mountPath": DATA_MOUNT}]
        template = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "containers": [container],
                "restartPolicy": "Never",
                **_placement(run, settings),
            },
        }
        out.append(
            {
                "name": name,
                "hostname": name,
                "subdomain": service,
                "image": worker_image(run, settings),
                "cmds": command[:1],
                "arguments": command[1:],
                "env_vars": env,
                "labels": pod_labels(run, rank),
                "annotations": annotations(run),
                "pod_template_dict": template,
            }
        )
    return out


# Arguments every worker pod shares (``.partial(...)``). Not deferrable: the task follows
# the pod's log stream live (``get_logs``), which the operator does only in its synchronous
# mode, and ships every line to the run's logs (``mlbench_airflow.pod_logs``). Failed pods
# stay for ``kubectl logs`` until the teardown removes the run's objects.
POD_DEFAULTS: dict[str, Any] = {
    "random_name_suffix": False,
    "get_logs": True,
    "deferrable": False,
    "on_finish_action": "delete_succeeded_pod",
    "startup_timeout_seconds": 600,
    "log_events_on_failure": True,
}


def delete_run_objects(core: Any, run: dict[str, Any], settings: Settings) -> None:
    """Delete the run's Service, Secret and any worker pod left (``core``: a CoreV1Api)."""
    from kubernetes.client.exceptions import ApiException

    selector = f"app=mlbench,component=worker,run={run['id']}"
    for delete, name in (
        (core.delete_namespaced_service, service_name(run)),
        (core.delete_namespaced_secret, secret_name(run)),
    ):
        try:
            delete(name, settings.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
    core.delete_collection_namespaced_pod(settings.namespace, label_selector=selector)


def _default_core() -> Any:
    """A CoreV1Api from the kubernetes package's own configuration (in-cluster, else the
    kubeconfig); the Airflow side gives the cncf.kubernetes hook's client instead."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.CoreV1Api()


class KubernetesBackend:
    """One pod per rank through ``KubernetesPodOperator`` (one Airflow task per rank); the
    cluster's scheduler places them and the kubelet enforces their CPU limits.

    ``core`` makes the CoreV1Api that setup and teardown use.
    """

    name = "kubernetes"
    per_rank_tasks = True
    admission = False
    pods_from_cluster = True

    def __init__(self, core: Callable[[], Any] = _default_core) -> None:
        self.core = core

    def capabilities(self, settings: Settings) -> Capabilities:
        return Capabilities(
            backend=self.name,
            cpu=Enforcement(
                status="enforced", by="Kubernetes CPU limits (the kubelet's CFS quota)"
            ),
            fractional_cpus=True,
            bandwidth=Enforcement(
                status="requested",
                by="pod annotations kubernetes.io/ingress-bandwidth and egress-bandwidth: "
                "enforced only where the CNI bandwidth plugin is chained; not verified",
            ),
            gpus=True,
            custom_images=True,
            logs="the deploy task follows each pod's log stream (KubernetesPodOperator) and "
            "posts every line, a crashed container's last lines and its termination reason",
            admission=self.admission,
            cpu_capacity=None,
            pods_from_cluster=self.pods_from_cluster,
            max_workers=settings.max_workers,
        )

    def refusals(
        self, num_workers: int, num_cpus: float, max_bandwidth: float | None, settings: Settings
    ) -> dict[str, str]:
        return {}  # the cluster's scheduler decides where pods fit

    def start_metadata(self, run: dict[str, Any]) -> dict[str, Any]:
        return {"limits": limits(run).record()}

    def setup(self, client: ApiClient, run: dict[str, Any], echo: Echo = print) -> list[dict]:
        """The Secret with the worker token and the headless Service; each rank's
        ``KubernetesPodOperator`` arguments."""
        settings = get_settings()
        core = self.core()
        token = client.issue_worker_token(run["id"])
        try:
            core.create_namespaced_secret(settings.namespace, secret_manifest(run, token, settings))
            core.create_namespaced_service(settings.namespace, service_manifest(run, settings))
        except Exception:
            delete_run_objects(core, run, settings)  # no teardown follows a failed setup
            raise
        return pod_kwargs(run, settings)

    def launch(
        self, client: ApiClient, run: dict[str, Any], ranks: list[dict], echo: Echo = print
    ) -> dict[str, Any]:
        raise NotImplementedError("kubernetes ranks run as KubernetesPodOperator tasks")

    def teardown(self, client: ApiClient, run: dict[str, Any], echo: Echo = print) -> None:
        delete_run_objects(self.core(), run, get_settings())


BACKEND = KubernetesBackend()
