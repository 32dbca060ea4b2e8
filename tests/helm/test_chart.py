"""The Helm chart, rendered by the real Helm engine for several value sets and every manifest
validated strictly against the Kubernetes version the chart declares (no cluster here)."""

from __future__ import annotations

import base64
import json
import re

import kubernetes_validate
import pytest
import yaml

from mlbench_core import __version__
from tests.helm.chart import (
    CHART,
    NAMESPACE,
    RELEASE,
    env_of,
    find,
    kube_version,
    notes,
    pod_specs,
    pod_template,
    render,
    require_helm,
    secret_data,
)

EXTERNAL_URLS = {
    "airflowUrl": "postgresql+psycopg2://af:pw@db.example.com:5432/airflow",
    "mlbenchUrl": "postgresql+psycopg2://mb:pw@db.example.com:5432/mlbench",
}
VALUE_SETS = {
    "defaults": {},
    "external-postgresql": {"postgresql": {"enabled": False}, "externalDatabase": EXTERNAL_URLS},
    "external-postgresql-secret": {
        "postgresql": {"enabled": False},
        "externalDatabase": {
            "existingSecret": "my-db",
            "airflowUrlKey": "af",
            "mlbenchUrlKey": "mb",
        },
    },
    "gpu-workers": {
        "workers": {
            "gpu": {"enabled": True, "nodeSelector": {"nvidia.com/gpu.present": "true"}},
            "imageRegistry": "registry.example.com:5000/mlbench",
            "maxWorkers": 64,
            "data": {
                "existingClaim": "datasets",
                "mirrorUrl": "https://mirror.example.com/datasets",
                "checksums": {"cifar-10-python.tar.gz": "md5:c58f30108f718f92721af3b95e74349a"},
            },
        }
    },
    "ingress": {
        "airflow": {
            "extraEnv": [{"name": "AIRFLOW__LOGGING__LOGGING_LEVEL", "value": "DEBUG"}],
            "apiAwaySeconds": 300,
        },
        "auth": {"mode": "none"},  # the original mlbench's clients through the ingress
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "host": "mlbench.example.com",
            "tls": {"enabled": True},
            "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "64m"},
        },
    },
    "kubernetes-executor": {
        "airflow": {"executor": "KubernetesExecutor"},
        "auth": {"existingSecret": "my-admin", "existingSecretKey": "password"},
        "service": {"type": "NodePort", "nodePort": 30080},
        "workers": {"data": {"persistence": {"enabled": False}}},
        "imagePullSecrets": [{"name": "regcred"}],
        "originalApi": {"service": {"type": "NodePort", "nodePort": 30081}},
    },
    "original-api-off": {
        "originalApi": {"enabled": False},
        "airflow": {"apiServer": {"replicas": 2}},
    },
}
# The original API's sidecar (originalApi): not an Airflow container.
SIDECARS = {"original-api"}
IDS = list(VALUE_SETS)


@pytest.fixture(scope="module", params=IDS)
def rendered(request) -> tuple[str, list[dict]]:
    return request.param, render(VALUE_SETS[request.param])


def test_chart_declares_the_mlbench_version():
    helm = require_helm()
    with helm.Chart.load(CHART) as chart:
        assert chart.metadata["appVersion"] == __version__
        assert chart.metadata["kubeVersion"].startswith(">=")
        assert chart.dependencies == [] and not chart.metadata.get("dependencies")


def test_every_manifest_is_valid_in_strict_mode(rendered):
    _, objects = rendered
    template = pod_template(objects)
    for manifest in objects + ([template] if template else []):
        for version in sorted({kube_version(), kubernetes_validate.latest_version()}):
            kubernetes_validate.validate(manifest, version, strict=True)


@pytest.mark.parametrize("name", IDS)
def test_lint_is_clean(name):
    helm = require_helm()
    report = helm.lint(CHART, VALUE_SETS[name], strict=True, kube_version=f"v{kube_version()}")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_the_components_of_airflow_3(rendered):
    _, objects = rendered
    commands = {}
    for obj in objects:
        if obj["kind"] == "Deployment":
            container = obj["spec"]["template"]["spec"]["containers"][0]
            commands[obj["metadata"]["name"]] = " ".join(container["args"])
    prefix = f"{RELEASE}-mlbench-"
    assert sorted(commands) == [
        prefix + c for c in ("api-server", "dag-processor", "scheduler", "triggerer")
    ]
    assert commands[prefix + "api-server"].endswith(
        "exec airflow api-server --host 0.0.0.0 --port 8080\n"
    )
    for component in ("scheduler", "dag-processor", "triggerer"):
        assert commands[prefix + component] == f"airflow {component}"
    migrate = find(objects, "Job", "-migrate-1")["spec"]["template"]["spec"]["containers"][0]
    assert migrate["args"][-1].endswith("exec airflow db migrate")


def test_airflow_and_mlbench_settings_reach_every_airflow_container(rendered):
    name, objects = rendered
    values = VALUE_SETS[name]
    executor = values.get("airflow", {}).get("executor", "LocalExecutor")
    api = f"http://{RELEASE}-mlbench-api-server.{NAMESPACE}.svc:8080"
    airflow_pods = [
        (owner, spec) for owner, spec in pod_specs(objects) if "postgresql" not in owner
    ]
    assert len(airflow_pods) == 5 + (executor == "KubernetesExecutor")
    for owner, spec in airflow_pods:
        for container in spec["containers"] + spec.get("initContainers", []):
            if container["name"] in SIDECARS:
                continue
            env = env_of(container)
            assert env["AIRFLOW__CORE__EXECUTOR"]["value"] == executor, owner
            assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]["value"] == f"{api}/execution/"
            assert env["MLBENCH_API_URL"]["value"] == f"{api}/mlbench"
            assert env["MLBENCH_BACKEND"]["value"] == "kubernetes"
            assert env["MLBENCH_NAMESPACE"]["value"] == NAMESPACE
            away = values.get("airflow", {}).get("apiAwaySeconds", 180)
            assert env["AIRFLOW__WORKERS__MAX_FAILED_HEARTBEATS"]["value"] == str(away // 5)
            assert env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"]["value"] == (
                str(2 * away)
            )
            assert env["MLBENCH_API_WAIT"]["value"] == str(away)
            assert env["MLBENCH_AUTH"]["value"] == values.get("auth", {}).get("mode", "airflow")
            for extra in values.get("airflow", {}).get("extraEnv", []):
                assert env[extra["name"]] == extra
            for secret in (
                "AIRFLOW__API_AUTH__JWT_SECRET",
                "AIRFLOW__API__SECRET_KEY",
                "AIRFLOW__CORE__FERNET_KEY",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
                "MLBENCH_DATABASE_URL",
                "AIRFLOW_CONN_MLBENCH_API",
            ):
                assert "value" not in env[secret] and env[secret]["valueFrom"]["secretKeyRef"]
        if owner.endswith("-migrate-1"):
            assert spec["automountServiceAccountToken"] is False
        else:
            assert spec["serviceAccountName"] == f"{RELEASE}-mlbench"


def test_secrets_are_generated_and_consistent():
    objects = render({})
    credentials = secret_data(find(objects, "Secret", "-credentials"))
    assert len(credentials["admin-password"]) == 16
    assert len(credentials["jwt-secret"]) == 64
    assert len(base64.urlsafe_b64decode(credentials["fernet-key"])) == 32
    connection = json.loads(credentials["mlbench-connection"])
    assert connection == {
        "conn_type": "http",
        "host": f"{RELEASE}-mlbench-api-server.{NAMESPACE}.svc",
        "port": 8080,
        "schema": "http",
        "login": "mlbench",
        "password": credentials["mlbench-password"],
        "extra": {"path": "/mlbench"},
    }
    # a new rendering (no cluster to read the release's Secret back from) makes new ones
    again = secret_data(find(render({}), "Secret", "-credentials"))
    assert again["jwt-secret"] != credentials["jwt-secret"]


def test_admin_password_given_or_from_an_existing_secret():
    given = secret_data(
        find(render({"auth": {"adminPassword": "s3cret-pass"}}), "Secret", "-credentials")
    )
    assert given["admin-password"] == "s3cret-pass"
    objects = render(VALUE_SETS["kubernetes-executor"])
    assert "admin-password" not in secret_data(find(objects, "Secret", "-credentials"))
    api = find(objects, "Deployment", "-api-server")["spec"]["template"]["spec"]["containers"][0]
    assert env_of(api)["ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "my-admin",
        "key": "password",
    }
    text = notes(VALUE_SETS["kubernetes-executor"])
    assert "kubectl get secret my-admin" in text and "{.data.password}" in text


def test_bundled_postgresql_holds_both_databases():
    objects = render({})
    secret = secret_data(find(objects, "Secret", "-postgresql"))
    host = f"{RELEASE}-mlbench-postgresql.{NAMESPACE}.svc:5432"
    server = f"postgresql+psycopg2://mlbench:{secret['password']}@{host}"
    assert secret["airflow-url"] == f"{server}/airflow"
    assert secret["mlbench-url"] == f"{server}/mlbench"
    init = find(objects, "ConfigMap", "-postgresql-init")["data"]
    assert "CREATE DATABASE mlbench;" in init["create-mlbench-db.sql"]
    statefulset = find(objects, "StatefulSet", "-postgresql")
    claim = statefulset["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["resources"]["requests"]["storage"] == "8Gi"
    env = env_of(statefulset["spec"]["template"]["spec"]["containers"][0])
    assert (
        env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"]
        == f"{RELEASE}-mlbench-postgresql"
    )


def test_special_characters_of_a_given_password_are_quoted_in_the_urls():
    objects = render({"postgresql": {"auth": {"password": "p@ss:w/rd"}}})
    secret = secret_data(find(objects, "Secret", "-postgresql"))
    assert secret["password"] == "p@ss:w/rd"
    assert secret["airflow-url"].startswith("postgresql+psycopg2://mlbench:p%40ss%3Aw%2Frd@")


def test_external_postgresql_by_url_and_by_secret():
    objects = render(VALUE_SETS["external-postgresql"])
    assert not [o for o in objects if "postgresql" in o["metadata"]["name"]]
    urls = secret_data(find(objects, "Secret", "-database"))
    assert urls == {
        "airflow-url": EXTERNAL_URLS["airflowUrl"],
        "mlbench-url": EXTERNAL_URLS["mlbenchUrl"],
    }
    objects = render(VALUE_SETS["external-postgresql-secret"])
    assert not [o for o in objects if o["kind"] == "Secret" and "database" in o["metadata"]["name"]]
    scheduler = find(objects, "Deployment", "-scheduler")["spec"]["template"]["spec"]["containers"][
        0
    ]
    env = env_of(scheduler)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]["valueFrom"]["secretKeyRef"] == {
        "name": "my-db",
        "key": "af",
    }
    assert env["MLBENCH_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "my-db",
        "key": "mb",
    }


def test_kubernetes_executor_gets_a_pod_template():
    objects = render(VALUE_SETS["kubernetes-executor"])
    template = pod_template(objects)
    assert template["spec"]["containers"][0]["name"] == "base"
    assert template["spec"]["serviceAccountName"] == f"{RELEASE}-mlbench"
    assert template["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    scheduler = find(objects, "Deployment", "-scheduler")["spec"]["template"]["spec"]
    env = env_of(scheduler["containers"][0])
    path = env["AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE"]["value"]
    mount = scheduler["containers"][0]["volumeMounts"][0]
    assert path == f"{mount['mountPath']}/pod_template_file.yaml"
    assert env["AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE"]["value"] == NAMESPACE
    assert pod_template(render({})) is None


def test_services_select_their_pods_and_the_ingress_routes_to_the_api_server(rendered):
    _, objects = rendered
    pods = {
        o["metadata"]["name"]: o["spec"]["template"]["metadata"]["labels"]
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet")
    }
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    # the original API's Service is a second door to the api-server's pod
    owners = {f"{RELEASE}-mlbench-master": f"{RELEASE}-mlbench-api-server"}
    for name, service in services.items():
        selector = service["spec"]["selector"].items()
        matched = [owner for owner, labels in pods.items() if selector <= labels.items()]
        assert matched == [owners.get(name, name)], (name, matched)
    for ingress in (o for o in objects if o["kind"] == "Ingress"):
        paths = ingress["spec"]["rules"][0]["http"]["paths"]
        assert paths[-1]["path"] == "/"
        assert paths[-1]["backend"]["service"]["name"] == f"{RELEASE}-mlbench-api-server"
        for path in paths:
            backend = path["backend"]["service"]
            assert backend["name"] in services
            ports = [p["name"] for p in services[backend["name"]]["spec"]["ports"]]
            assert backend["port"]["name"] in ports


def test_no_chart_pod_looks_like_a_worker(rendered):
    """GET /api/pods/ lists app=mlbench,component=worker: the chart's own pods are not that."""
    _, objects = rendered
    for obj in objects:
        labels = (obj.get("spec", {}).get("template", {}).get("metadata", {}) or {}).get("labels")
        labels = labels or obj["metadata"].get("labels", {})
        assert not (labels.get("app") == "mlbench" and labels.get("component") == "worker")


def test_images_are_pinned(rendered):
    _, objects = rendered
    for owner, spec in pod_specs(objects):
        for container in spec["containers"] + spec.get("initContainers", []):
            repository, _, tag = container["image"].rpartition(":")
            assert repository and tag and tag != "latest", (owner, container["image"])
            if repository.startswith("docker.io/library/"):  # postgres, nginx: a version
                assert re.match(r"\d+\.\d+", tag), (owner, container["image"])
            else:
                assert tag == __version__


def test_worker_settings(rendered):
    name, objects = rendered
    scheduler = find(objects, "Deployment", "-scheduler")["spec"]["template"]["spec"]
    env = env_of(scheduler["containers"][0])
    workers = VALUE_SETS[name].get("workers", {})
    assert env["MLBENCH_IMAGE_REGISTRY"]["value"] == workers.get("imageRegistry", "mlbench")
    assert env["MLBENCH_MAX_WORKERS"]["value"] == str(workers.get("maxWorkers", 16))
    claims = [o["metadata"]["name"] for o in objects if o["kind"] == "PersistentVolumeClaim"]
    if name == "gpu-workers":
        assert env["MLBENCH_DATA_VOLUME_CLAIM"]["value"] == "datasets" and claims == []
        assert json.loads(env["MLBENCH_GPU_TOLERATIONS"]["value"])[0]["key"] == "nvidia.com/gpu"
    elif name == "kubernetes-executor":
        assert "MLBENCH_DATA_VOLUME_CLAIM" not in env and claims == []
        assert "No dataset volume" in notes(VALUE_SETS[name])
    else:
        assert claims == [env["MLBENCH_DATA_VOLUME_CLAIM"]["value"]] == [f"{RELEASE}-mlbench-data"]
        assert "MLBENCH_GPU_TOLERATIONS" not in env


@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("defaults", "kubectl port-forward -n mlbench-test svc/bench-mlbench-api-server 8080:8080"),
        ("ingress", "https://mlbench.example.com/mlbench/"),
        ("kubernetes-executor", "jsonpath='{.spec.ports[0].nodePort}'"),
    ],
)
def test_notes_tell_how_to_reach_the_dashboard_and_log_in(name, where):
    text = notes(VALUE_SETS[name])
    assert where in text
    assert "user `admin`" in text and "base64 -d" in text
    if name != "kubernetes-executor":
        assert "kubectl get secret bench-mlbench-credentials" in text


BAD_VALUES = [
    ({"airflow": {"executor": "CeleryExecutor"}}, "/airflow/executor", "must be one of"),
    ({"airflow": {"exectuor": "LocalExecutor"}}, "/airflow", "'exectuor' not allowed"),
    ({"workers": {"maxWorkers": 0}}, "/workers/maxWorkers", "minimum"),
    ({"workers": {"imageRegistry": ""}}, "/workers/imageRegistry", "minLength"),
    ({"images": {"airflow": {"tag": "latest"}}}, "/images/airflow/tag", "does not match"),
    ({"auth": {"adminPassword": "short"}}, "/auth/adminPassword", "does not match"),
    ({"auth": {"mode": "open"}}, "/auth/mode", "must be one of"),
    ({"postgresql": {"enabled": False}}, "/externalDatabase/airflowUrl", "minLength"),
    (
        {"postgresql": {"enabled": False}, "externalDatabase": {"airflowUrl": "mysql://x/y"}},
        "/externalDatabase/airflowUrl",
        "does not match",
    ),
    ({"service": {"type": "ClusterIP", "nodePort": 30080}}, "/service/nodePort", "want null"),
    ({"service": {"type": "NodePort", "nodePort": 80}}, "/service/nodePort", "minimum"),
    ({"ingress": {"enabled": True, "host": "Not A Host"}}, "/ingress/host", "does not match"),
    ({"workers": {"data": {"checksums": {"f": "sha1:00"}}}}, "/workers/data/checksums/f", "match"),
    ({"workers": {"gpu": {"enabled": "yes"}}}, "/workers/gpu/enabled", "want boolean"),
    ({"postgresql": {"persistence": {"size": "lots"}}}, "/postgresql/persistence/size", "match"),
    ({"airflow": {"apiServer": {"replicas": 2}}}, "/airflow/apiServer/replicas", "maximum"),
    ({"images": {"nginx": {"tag": "latest"}}}, "/images/nginx/tag", "does not match"),
    (
        {"originalApi": {"service": {"type": "ClusterIP", "nodePort": 30080}}},
        "/originalApi/service/nodePort",
        "want null",
    ),
    ({"originalApi": {"maxBodySize": "lots"}}, "/originalApi/maxBodySize", "does not match"),
]


@pytest.mark.parametrize(("values", "where", "what"), BAD_VALUES, ids=[b[1] for b in BAD_VALUES])
def test_bad_values_are_rejected_by_the_schema_naming_the_field(values, where, what):
    helm = require_helm()
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError) as caught:
        chart.render(values, name=RELEASE, namespace=NAMESPACE)
    message = str(caught.value)
    assert f"at '{where}'" in message and what in message, message


def test_values_file_documents_every_value():
    """values.yaml and the schema agree: every default validates, every value has a schema."""
    helm = require_helm()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(values)

    def walk(value: object, node: dict, path: str) -> None:
        if isinstance(value, dict) and node.get("additionalProperties") is False:
            for key, item in value.items():
                assert key in node["properties"], f"{path}.{key} has no schema"
                walk(item, node["properties"][key], f"{path}.{key}")

    walk(values, schema, "")
