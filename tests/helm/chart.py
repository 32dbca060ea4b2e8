"""Rendering the chart offline with the real Helm engine (helm-python-sdk), and what the
tests need to read the result."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.environment import REPO

CHART = REPO / "helm" / "mlbench"
RELEASE = "bench"
NAMESPACE = "mlbench-test"


def require_helm():  # noqa: ANN201
    """The ``helm_python`` module; a missing one fails under CI=true and skips elsewhere."""
    try:
        import helm_python
    except ImportError as exc:  # pragma: no cover - depends on the install
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"helm-python-sdk is missing (CI=true: required): {exc}")
        pytest.skip(f"helm-python-sdk is missing: {exc}")
    return helm_python


def kube_version() -> str:
    """The oldest Kubernetes the chart declares (Chart.yaml ``kubeVersion: >=X.Y.Z-0``)."""
    declared = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    match = re.fullmatch(r">=\s*(\d+\.\d+\.\d+)(-0)?", declared.strip())
    assert match, f"kubeVersion {declared!r} is not a lower bound"
    return match.group(1)


def render_files(values: dict[str, Any] | None = None, **options: Any) -> dict[str, str]:
    """Template path -> rendered text."""
    helm = require_helm()
    with helm.Chart.load(CHART) as chart:
        return chart.render(
            values or {},
            name=options.get("name", RELEASE),
            namespace=options.get("namespace", NAMESPACE),
            is_install=True,
        )


def manifests(files: dict[str, str]) -> list[dict[str, Any]]:
    """Every object the templates rendered (NOTES.txt excluded)."""
    out = []
    for path, text in sorted(files.items()):
        if path.endswith(".yaml"):
            out += [doc for doc in yaml.safe_load_all(text) if doc]
    return out


def render(values: dict[str, Any] | None = None, **options: Any) -> list[dict[str, Any]]:
    return manifests(render_files(values, **options))


def notes(values: dict[str, Any] | None = None) -> str:
    return next(t for p, t in render_files(values).items() if p.endswith("NOTES.txt"))


def find(objects: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, f"{len(found)} {kind} named *{suffix}"
    return found[0]


def secret_data(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner name, pod spec) of every pod the chart makes, the KubernetesExecutor's pod
    template included."""
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield obj["metadata"]["name"], obj["spec"]["template"]["spec"]
        elif obj["kind"] == "ConfigMap" and "pod_template_file.yaml" in obj.get("data", {}):
            pod = yaml.safe_load(obj["data"]["pod_template_file.yaml"])
            yield obj["metadata"]["name"], pod["spec"]


def pod_template(objects: list[dict[str, Any]]) -> dict[str, Any] | None:
    for obj in objects:
        if obj["kind"] == "ConfigMap" and "pod_template_file.yaml" in obj.get("data", {}):
            return yaml.safe_load(obj["data"]["pod_template_file.yaml"])
    return None


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def chart_path() -> Path:
    return CHART
