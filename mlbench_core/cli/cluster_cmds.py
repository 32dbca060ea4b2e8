"""``mlbench deploy`` and ``mlbench get-dashboard-url``: mlbench on a Kubernetes cluster.

``deploy`` installs (or upgrades) the Helm chart ``helm/mlbench`` with the ``helm`` binary, or
renders its manifests (``--render``: with ``helm template`` when the binary is there, else
with the Helm engine of the ``helm-python-sdk`` package, offline). ``get-dashboard-url``
asks the cluster (kubeconfig) where the release's dashboard is reachable.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from mlbench_core.cli.common import EXIT_OK, EXIT_USAGE, CliError, console
from mlbench_core.settings import REPO, Settings

CHART = REPO / "helm" / "mlbench"
RELEASE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DEFAULT_RELEASE = "mlbench"


def _release(value: str) -> str:
    if len(value) > 53 or not RELEASE.match(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a release name (lower-case letters, digits and '-', at most 53)"
        )
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--release", type=_release, default=DEFAULT_RELEASE, help="Helm release (mlbench)"
    )
    parser.add_argument(
        "-n", "--namespace", default=None, help="namespace (default: MLBENCH_NAMESPACE)"
    )


def add_deploy(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "deploy",
        help="install or upgrade mlbench on a Kubernetes cluster (Helm chart)",
        description="Install or upgrade the mlbench Helm chart with `helm upgrade --install` "
        "(needs the helm binary and a kubeconfig), or print its manifests with --render "
        "(helm template, or offline with helm-python-sdk when there is no helm binary).",
    )
    _common(parser)
    parser.add_argument("--chart", type=Path, default=CHART, help=f"chart folder ({CHART})")
    parser.add_argument(
        "-f",
        "--values",
        dest="values_files",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a values file (repeatable; later ones win)",
    )
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one value, as helm --set (repeatable), e.g. workers.imageRegistry=reg/mlbench",
    )
    parser.add_argument(
        "--render", action="store_true", help="print the manifests instead of installing"
    )
    parser.add_argument(
        "-o", "--output", type=Path, help="with --render: write the manifests to this file"
    )
    parser.add_argument("--wait", action="store_true", help="wait until every pod is ready")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the helm command instead of running it"
    )
    parser.set_defaults(handler=cmd_deploy)


def add_get_dashboard_url(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "get-dashboard-url",
        help="print the URL of a deployed release's dashboard",
        description="Ask the cluster where the release's dashboard is: its Ingress, a "
        "LoadBalancer's address, a node and NodePort, or (ClusterIP) the local end of "
        "`kubectl port-forward`, which it tells you to run.",
    )
    _common(parser)
    parser.add_argument("--kubeconfig", type=Path, help="kubeconfig (default: KUBECONFIG)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.set_defaults(handler=cmd_get_dashboard_url)


# -- deploy ----------------------------------------------------------------------------------


def _check_inputs(args: argparse.Namespace) -> None:
    if not (args.chart / "Chart.yaml").is_file():
        raise CliError(f"no Helm chart at {args.chart} (give --chart)", EXIT_USAGE)
    for path in args.values_files:
        if not path.is_file():
            raise CliError(f"--values: no file {path}", EXIT_USAGE)
    for item in args.sets:
        if "=" not in item or not item.partition("=")[0].strip():
            raise CliError(f"--set needs KEY=VALUE, got {item!r}", EXIT_USAGE)
    if args.output and not args.render:
        raise CliError("--output goes with --render", EXIT_USAGE)


def helm_command(args: argparse.Namespace, namespace: str, helm: str = "helm") -> list[str]:
    """The ``helm`` invocation of ``deploy`` (``template`` with --render)."""
    if args.render:
        command = [helm, "template", args.release, str(args.chart), "--namespace", namespace]
    else:
        command = [helm, "upgrade", "--install", args.release, str(args.chart)]
        command += ["--namespace", namespace, "--create-namespace"]
        if args.wait:
            command += ["--wait", "--timeout", "15m"]
    for path in args.values_files:
        command += ["--values", str(path)]
    for item in args.sets:
        command += ["--set", item]
    return command


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def render_offline(args: argparse.Namespace, namespace: str) -> str:
    """The chart's manifests, rendered by helm-python-sdk's Helm engine (no cluster)."""
    try:
        import helm_python as helm
    except ImportError:
        raise CliError(
            "no helm binary and no helm-python-sdk: install helm, or `pip install helm-python-sdk`"
        ) from None
    import yaml

    values: dict[str, Any] = {}
    try:
        for path in args.values_files:
            loaded = yaml.safe_load(path.read_text()) or {}
            if not isinstance(loaded, dict):
                raise CliError(f"--values {path}: not a mapping of values", EXIT_USAGE)
            values = _deep_merge(values, loaded)
        for item in args.sets:
            values = _deep_merge(values, helm.parse_set_string(item))
        with helm.Chart.load(args.chart) as chart:
            files = chart.render(values, name=args.release, namespace=namespace, is_install=True)
    except yaml.YAMLError as exc:
        raise CliError(f"--values: {exc}", EXIT_USAGE) from None
    except helm.HelmValuesError as exc:
        raise CliError(f"the chart refused the values: {exc}", EXIT_USAGE) from None
    except helm.HelmError as exc:
        raise CliError(f"rendering the chart failed: {exc}") from None
    parts = [
        f"---\n# Source: {path}\n{text.strip()}\n"
        for path, text in sorted(files.items())
        if path.endswith(".yaml") and text.strip()
    ]
    return "".join(parts)


def cmd_deploy(args: argparse.Namespace, settings: Settings) -> int:
    _check_inputs(args)
    namespace = args.namespace or settings.namespace
    helm = shutil.which("helm")
    if args.dry_run:
        print(" ".join(helm_command(args, namespace, helm or "helm")))
        return EXIT_OK
    if helm is None:
        if not args.render:
            raise CliError(
                "the helm binary is needed to install (https://helm.sh/docs/intro/install/); "
                "`mlbench deploy --render` prints the manifests without it"
            )
        text = render_offline(args, namespace)
    elif args.render:
        done = subprocess.run(helm_command(args, namespace, helm), capture_output=True, text=True)
        if done.returncode != 0:
            raise CliError(f"helm template failed: {done.stderr.strip()}", EXIT_USAGE)
        text = done.stdout
    else:
        done = subprocess.run(helm_command(args, namespace, helm))
        if done.returncode != 0:
            raise CliError(f"helm upgrade --install failed (exit {done.returncode})")
        console().print(
            f"`mlbench get-dashboard-url --release {args.release} -n {namespace}` "
            "prints where the dashboard is."
        )
        return EXIT_OK
    if args.output:
        args.output.write_text(text)
        console().print(f"wrote the manifests to {args.output}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


# -- get-dashboard-url -----------------------------------------------------------------------


def _kube_clients(args: argparse.Namespace) -> tuple[Any, Any]:
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        config.load_kube_config(
            config_file=str(args.kubeconfig) if args.kubeconfig else None,
            context=args.context,
            client_configuration=configuration,
        )
    except (config.ConfigException, OSError) as exc:
        raise CliError(f"no usable kubeconfig: {exc}") from None
    api = client.ApiClient(configuration)
    return client.CoreV1Api(api), client.NetworkingV1Api(api)


def _ingress_url(ingress: Any) -> str | None:
    for rule in ingress.spec.rules or []:
        if rule.host:
            hosts = {h for tls in ingress.spec.tls or [] for h in tls.hosts or []}
            scheme = "https" if rule.host in hosts else "http"
            return f"{scheme}://{rule.host}/mlbench/"
    return None


def _node_address(core: Any) -> str:
    for kind in ("ExternalIP", "InternalIP"):
        for node in core.list_node(_request_timeout=10).items:
            for address in node.status.addresses or []:
                if address.type == kind:
                    return address.address
    raise CliError("the cluster lists no node address for the NodePort")


def dashboard_url(core: Any, networking: Any, release: str, namespace: str) -> tuple[str, str]:
    """(URL, how to use it) of the release's dashboard."""
    selector = f"app.kubernetes.io/instance={release}"
    for ingress in networking.list_namespaced_ingress(
        namespace, label_selector=selector, _request_timeout=10
    ).items:
        if url := _ingress_url(ingress):
            return url, f"through the Ingress {ingress.metadata.name}"
    services = core.list_namespaced_service(
        namespace,
        label_selector=f"{selector},app.kubernetes.io/component=api-server",
        _request_timeout=10,
    ).items
    if not services:
        raise CliError(f"no mlbench release {release!r} in namespace {namespace!r}")
    service = services[0]
    port = service.spec.ports[0]
    if service.spec.type == "LoadBalancer":
        entries = (service.status.load_balancer and service.status.load_balancer.ingress) or []
        for entry in entries:
            if host := entry.ip or entry.hostname:
                return f"http://{host}:{port.port}/mlbench/", "through its LoadBalancer"
        raise CliError(f"the LoadBalancer of {service.metadata.name} has no address yet")
    if service.spec.type == "NodePort":
        return f"http://{_node_address(core)}:{port.node_port}/mlbench/", "on a node's port"
    forward = f"kubectl port-forward -n {namespace} svc/{service.metadata.name} 8080:{port.port}"
    return "http://127.0.0.1:8080/mlbench/", f"after `{forward}` (the Service is ClusterIP)"


def cmd_get_dashboard_url(args: argparse.Namespace, settings: Settings) -> int:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    namespace = args.namespace or settings.namespace
    core, networking = _kube_clients(args)
    try:
        url, how = dashboard_url(core, networking, args.release, namespace)
    except ApiException as exc:
        raise CliError(f"the Kubernetes API refused: {exc.status} {exc.reason}") from None
    except HTTPError as exc:
        raise CliError(f"the Kubernetes API did not answer: {exc}") from None
    print(url)
    print(
        f"mlbench: {how}; log in as admin (`helm status {args.release} -n {namespace}` "
        "tells how to read the password)",
        file=sys.stderr,
    )
    return EXIT_OK
