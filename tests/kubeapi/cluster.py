"""A stand-in Kubernetes API server with pods that live: created pods go Pending, then
Running, stream the log lines a test scripted (with the kubelet's RFC 3339 timestamps) and
terminate with the scripted exit code and reason. Statuses are the recorded ones of
``responses/pods-*.json``; every request is recorded, so tests see what the real
``KubernetesPodOperator`` and ``kubernetes`` client asked for.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.kubeapi import LoopbackServer, Request, recorded


def _status(listing: str, name: str) -> dict[str, Any]:
    pod = next(p for p in recorded(listing)["items"] if p["metadata"]["name"] == name)
    return pod["status"]


PENDING = _status("pods-first", "resnet-4w-w3")
RUNNING = _status("pods-first", "resnet-4w-w0")
SUCCEEDED = _status("pods-later", "resnet-4w-w0")
FAILED = _status("pods-first", "diverged-w0")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp(moment: dt.datetime) -> str:
    """A log line's timestamp as the kubelet writes it (RFC 3339, nanoseconds)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


@dataclass
class Script:
    """What a pod's container does: prints ``lines`` (``delay`` s apart), then exits."""

    lines: list[str]
    exit_code: int = 0
    reason: str | None = None  # e.g. "OOMKilled" (default: Completed / Error)
    delay: float = 0.01


@dataclass
class Pod:
    manifest: dict[str, Any]
    script: Script
    reads: int = 0
    logged: list[tuple[str, str]] = field(default_factory=list)  # (timestamp, line) written
    done: bool = False

    @property
    def name(self) -> str:
        return self.manifest["metadata"]["name"]

    def status(self) -> dict[str, Any]:
        if self.done:
            ok = self.script.exit_code == 0
            status = copy.deepcopy(SUCCEEDED if ok else FAILED)
            terminated = status["containerStatuses"][0]["state"]["terminated"]
            terminated["exitCode"] = self.script.exit_code
            terminated["reason"] = self.script.reason or ("Completed" if ok else "Error")
            return status
        if self.reads == 0:
            return copy.deepcopy(PENDING)
        return copy.deepcopy(RUNNING)


def _selected(labels: dict[str, str], selector: str) -> bool:
    """Kubernetes equality-based label selectors: ``k=v``, ``k!=v``, ``!k``, ``k``."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key.rstrip("=")) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _not_found(kind: str, name: str) -> tuple[int, dict[str, Any]]:
    return 404, {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'{kind} "{name}" not found',
        "reason": "NotFound",
        "details": {"name": name, "kind": kind},
        "code": 404,
    }


class FakeCluster(LoopbackServer):
    """One namespace's pods, secrets and services behind a real HTTP server on 127.0.0.1.

    ``scripts`` maps a pod name to what its container does (default: one line, exit 0).
    """

    def __init__(self, scripts: dict[str, Script] | None = None) -> None:
        self.scripts = scripts or {}
        self.pods: dict[str, Pod] = {}
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}  # (kind, name) -> manifest
        self.deleted: list[tuple[str, str]] = []
        self.written: dict[str, list[tuple[str, str]]] = {}  # pod -> (timestamp, line)
        self.created: list[dict[str, Any]] = []  # the bodies of the pods created, in order
        self.requests: list[Request] = []
        self.lock = threading.Lock()

    # -- the API ------------------------------------------------------------------------------

    def _pod_object(self, pod: Pod) -> dict[str, Any]:
        return {**copy.deepcopy(pod.manifest), "status": pod.status()}

    def _create(self, kind: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        meta = body.setdefault("metadata", {})
        meta.update(
            uid=str(uuid.uuid4()),
            resourceVersion=str(len(self.requests)),
            creationTimestamp=_now(),
        )
        name = meta["name"]
        if kind == "pods":
            if name in self.pods:
                return 409, {"kind": "Status", "code": 409, "reason": "AlreadyExists"}
            self.created.append(copy.deepcopy(body))
            self.pods[name] = Pod(body, self.scripts.get(name, Script(["hello"])))
            self.written[name] = self.pods[name].logged
            return 201, self._pod_object(self.pods[name])
        self.objects[(kind, name)] = body
        return 201, body

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Any:
        """(status, JSON body), or a generator of log lines for a log stream."""
        parts = path.strip("/").split("/")
        # /api/v1/namespaces/{ns}/{kind}[/{name}[/log]]
        if parts[:3] != ["api", "v1", "namespaces"] or len(parts) < 5:
            return 404, {"kind": "Status", "code": 404, "message": f"{path} not found"}
        kind = parts[4]
        name = unquote(parts[5]) if len(parts) > 5 else None
        selector = query.get("labelSelector", [""])[0]
        with self.lock:
            if kind == "events":
                return 200, {"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": []}
            if name is None and method == "POST":
                return self._create(kind, body)
            if kind == "pods" and name is None and method == "GET":
                items = [
                    self._pod_object(p)
                    for p in self.pods.values()
                    if _selected(p.manifest["metadata"].get("labels") or {}, selector)
                ]
                return 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}
            if kind == "pods" and name is None and method == "DELETE":
                for pod in [p for p in self.pods.values() if _selected(
                        p.manifest["metadata"].get("labels") or {}, selector)]:  # fmt: skip
                    del self.pods[pod.name]
                    self.deleted.append(("pods", pod.name))
                return 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": []}
            if kind == "pods":
                pod = self.pods.get(name)
                if pod is None:
                    return _not_found("pods", name)
                if len(parts) > 6 and parts[6] == "log":
                    return self._log(
                        pod, follow=query.get("follow", ["false"])[0].lower() == "true"
                    )
                if method == "GET":
                    pod.reads += 1
                    return 200, self._pod_object(pod)
                if method == "PATCH":
                    labels = (body.get("metadata") or {}).get("labels") or {}
                    pod.manifest["metadata"].setdefault("labels", {}).update(labels)
                    return 200, self._pod_object(pod)
                if method == "DELETE":
                    del self.pods[name]
                    self.deleted.append(("pods", name))
                    return 200, self._pod_object(pod)
            if method == "DELETE" and name is not None:
                if self.objects.pop((kind, name), None) is None:
                    return _not_found(kind, name)
                self.deleted.append((kind, name))
                return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"}
        return 405, {"kind": "Status", "code": 405, "message": f"{method} {path}"}

    def _log(self, pod: Pod, follow: bool) -> Any:
        """The container's lines with timestamps; a followed stream writes the script's lines
        as they are 'printed' and ends when the container exits."""
        if pod.done or not follow:
            return (f"{t} {line}\n".encode() for t, line in list(pod.logged))

        def stream() -> Any:
            for line in pod.script.lines:
                time.sleep(pod.script.delay)
                moment = stamp(dt.datetime.now(dt.UTC))
                pod.logged.append((moment, line))
                yield f"{moment} {line}\n".encode()
            pod.done = True

        pod.reads = max(pod.reads, 1)
        return stream()

    # -- the server ---------------------------------------------------------------------------

    def requests_to(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def __enter__(self) -> FakeCluster:
        cluster = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                cluster.requests.append(
                    Request(
                        method,
                        parts.path,
                        parse_qs(parts.query),
                        {k.lower(): v for k, v in self.headers.items()},
                    )
                )
                answer = cluster.handle(method, parts.path, parse_qs(parts.query), body)
                if isinstance(answer, tuple):
                    status, payload = answer
                    data = json.dumps(payload).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self.send_response(200)  # a log stream: lines until the container exits
                self.send_header("Content-Type", "text/plain")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for chunk in answer:
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._serve("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._serve("POST")

            def do_PATCH(self) -> None:  # noqa: N802
                self._serve("PATCH")

            def do_DELETE(self) -> None:  # noqa: N802
                self._serve("DELETE")

            def log_message(self, *_args: Any) -> None:
                pass

        Handler.protocol_version = "HTTP/1.1"
        self._serve(Handler)
        return self
