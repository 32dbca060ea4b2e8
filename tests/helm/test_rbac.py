"""The chart's Role grants exactly the Kubernetes calls that mlbench makes with it, and
nothing cluster-wide.

The calls are read from the code that makes them: the mlbench_run DAG and the launcher
(Secret, Service, a run's pods), the pods API (listing worker pods), and the parts of the
Kubernetes provider that the DAG and KubernetesExecutor use (KubernetesPodOperator, its
PodManager and deferred trigger, the executor). A provider upgrade that makes a new call
fails here until the Role allows it.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from harness.environment import REPO
from mlbench_core.launch import kubernetes as k8s
from tests.helm.chart import NAMESPACE, RELEASE, find, render

METHOD = re.compile(
    r"\b(connect_get|connect_post|create|read|list|patch|replace|delete_collection|delete)"
    r"_namespaced_([a-z_]+)\b"
)
WATCH = re.compile(r"\.stream\(\s*(?:[\w.]+\.)?list_namespaced_([a-z_]+)")
HOOK_CALL = re.compile(r"\b_?hook\.(\w+)\(")
VERBS = {
    "connect_get": "create",  # exec over websocket: create on pods/exec
    "connect_post": "create",
    "read": "get",
    "delete_collection": "deletecollection",
}
SUBRESOURCES = ("log", "exec", "status")
PROVIDER_FILES = (
    "operators/pod.py",
    "utils/pod_manager.py",
    "triggers/pod.py",
    "executors/kubernetes_executor.py",
    "executors/kubernetes_executor_utils.py",
)
OUR_FILES = (
    "dags/mlbench_run.py",
    "mlbench_core/launch/kubernetes.py",
    "plugins/mlbench_api/kube.py",
)
# The XCom sidecar (``do_xcom_push``) is the only user of pods/exec; worker pods don't use it.
NOT_USED = {("pods/exec", "create")}


def permission(verb: str, kind: str) -> tuple[str, str]:
    sub = next((s for s in SUBRESOURCES if kind.endswith(f"_{s}")), None)
    base = kind.removesuffix(f"_{sub}") if sub else kind
    resource = base + "s" + (f"/{sub}" if sub else "")
    return resource, VERBS.get(verb, verb)


def calls(source: str) -> set[tuple[str, str]]:
    found = {permission(verb, kind) for verb, kind in METHOD.findall(source)}
    found |= {(kind + "s", "watch") for kind in WATCH.findall(source)}
    return found


def provider_source() -> str:
    from airflow.providers.cncf.kubernetes import hooks
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import (
        AsyncKubernetesHook,
        KubernetesHook,
    )

    root = Path(hooks.__file__).parents[1]
    sources = [(root / name).read_text() for name in PROVIDER_FILES]
    # and the hook methods those files call (get_pod, read_logs, watch_pod_events, ...)
    for name in sorted({m for text in sources for m in HOOK_CALL.findall(text)}):
        for hook in (KubernetesHook, AsyncKubernetesHook):
            if callable(getattr(hook, name, None)):
                sources.append(inspect.getsource(getattr(hook, name)))
    return "\n".join(sources)


def needed() -> set[tuple[str, str]]:
    ours = "\n".join((REPO / name).read_text() for name in OUR_FILES)
    return (calls(ours) | calls(provider_source())) - NOT_USED


def granted(role: dict) -> set[tuple[str, str]]:
    out = set()
    for rule in role["rules"]:
        assert rule["apiGroups"] == [""], rule  # the core API only
        out |= {(r, v) for r in rule["resources"] for v in rule["verbs"]}
    return out


def test_the_call_scanner_reads_method_names():
    assert calls("core.read_namespaced_pod_log(name, ns)") == {("pods/log", "get")}
    assert calls("delete_collection_namespaced_pod(ns)") == {("pods", "deletecollection")}
    assert calls("w.stream(\n  v1.list_namespaced_event, namespace=ns)") == {
        ("events", "list"),
        ("events", "watch"),
    }


def test_our_own_calls_are_found():
    ours = calls("\n".join((REPO / name).read_text() for name in OUR_FILES))
    assert {
        ("secrets", "create"),
        ("services", "create"),
        ("secrets", "delete"),
        ("services", "delete"),
        ("pods", "deletecollection"),
        ("pods", "list"),
    } <= ours


def test_worker_pods_do_not_push_xcom():
    assert not k8s.POD_DEFAULTS.get("do_xcom_push")


@pytest.mark.parametrize("executor", ["LocalExecutor", "KubernetesExecutor"])
def test_role_grants_exactly_what_the_calls_need(executor):
    objects = render({"airflow": {"executor": executor}})
    role = find(objects, "Role", f"{RELEASE}-mlbench")
    assert granted(role) == needed()
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        assert "resourceNames" not in rule


def test_nothing_cluster_wide_and_the_binding_is_to_the_pods_account():
    objects = render({"airflow": {"executor": "KubernetesExecutor"}})
    kinds = {o["kind"] for o in objects}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "Namespace"}
    binding = find(objects, "RoleBinding", f"{RELEASE}-mlbench")
    account = find(objects, "ServiceAccount")["metadata"]["name"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": find(objects, "Role", f"{RELEASE}-mlbench")["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": "mlbench-test"}
    ]
    for obj in objects:
        assert "namespace" not in obj["metadata"], obj["metadata"]  # the release's namespace


def original_in_cluster_calls() -> set[tuple[str, str]]:
    """The Kubernetes calls of the original mlbench client's in-cluster discovery (its
    ``ApiClient.__get_in_cluster_url``, which the LogMetrics of its worker images run)."""
    from tests.support.original import LIB

    source = (LIB / "mlbench_core" / "api.py").read_text()
    body = source.split("def __get_in_cluster_url", 1)[1].split("\n    def ", 1)[0]
    return calls(body)


def test_worker_pods_may_list_pods_as_the_originals_discovery_does(original_client, monkeypatch):
    from tests.helm.test_worker_pods import RUNS, chart_settings, worker_pods

    objects = render({})
    role = find(objects, "Role", "-original-workers")
    assert granted(role) == original_in_cluster_calls() == {("pods", "list")}
    binding = find(objects, "RoleBinding", "-original-workers")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    # the account the worker pods run under: the DAG names none, so the namespace's default
    accounts = {
        pod["spec"].get("serviceAccountName") or "default"
        for pod in worker_pods(RUNS[0], chart_settings({}, monkeypatch))
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE} for name in accounts
    ]


@pytest.mark.parametrize(
    "values",
    [{"originalApi": {"enabled": False}}, {"originalApi": {"workerServiceAccount": ""}}],
)
def test_no_grant_to_the_workers_without_the_original_api(values):
    objects = render(values)
    assert [o["metadata"]["name"] for o in objects if o["kind"] in ("Role", "RoleBinding")] == [
        f"{RELEASE}-mlbench",
        f"{RELEASE}-mlbench",
    ]
