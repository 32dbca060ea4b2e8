"""A small synchronous client of the mlbench REST API (``<root>/api/...``)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests

from mlbench_core.api.errors import ApiError, ApiUnavailable, raise_for_response
from mlbench_core.api.schemas import MAX_BATCH, RunCreate
from mlbench_core.api.wire import wire_date

__all__ = ["ApiClient", "new_key"]

DateLike = datetime | str


def new_key() -> str:
    """A fresh idempotency key for one write (sent again with each retry of it)."""
    return uuid.uuid4().hex


def _keyed(key: str | None) -> dict[str, str] | None:
    return None if key is None else {"Idempotency-Key": key}


def _number(value: Any) -> Any:
    """Numbers that JSON cannot encode (numpy, torch scalars) as floats; others unchanged
    (the server judges them). ``ValueError`` for NaN and infinities, which JSON lacks."""
    if isinstance(value, bool | int | str) or value is None:
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    if not math.isfinite(number):
        raise ValueError(f"a metric value must be a finite number, not {number}")
    return number


IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})


class ApiClient:
    """The mlbench REST API: one method per endpoint, JSON in, parsed JSON out.

    ``url`` is the API root, e.g. ``http://127.0.0.1:8080/mlbench`` (``.../api`` and trailing
    slashes are accepted too). ``token`` is an Airflow JWT or a run's worker token; an Airflow
    user logs in with :meth:`login` (or :meth:`authenticate`). Error answers raise
    :mod:`mlbench_core.api.errors` types; no answer raises ``ApiUnavailable``. Requests are
    never retried here (see :class:`~mlbench_core.api.writer.MetricsWriter`).
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        root = url.strip().rstrip("/")
        if not root.startswith(("http://", "https://")):
            raise ValueError(f"the API url must start with http:// or https://: {url!r}")
        self.base_url = root if root.endswith("/api") else f"{root}/api"
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        self._token: str | None = None
        self.token = token

    @classmethod
    def login(
        cls, api_url: str, username: str, password: str, *, timeout: float = 30.0
    ) -> ApiClient:
        """A client of the API at ``api_url`` holding a JWT of the Airflow user ``username``
        (:meth:`authenticate`); its requests wait ``timeout`` seconds for an answer."""
        client = cls(api_url, timeout=timeout)
        try:
            client.authenticate(username, password)
        except BaseException:
            client.close()
            raise
        return client

    def __repr__(self) -> str:
        return f"ApiClient({self.base_url!r})"

    @property
    def api_url(self) -> str:
        """The API's URL, e.g. ``http://127.0.0.1:8080/mlbench`` (``base_url`` less ``/api``)."""
        return self.base_url.removesuffix("/api")

    @property
    def root_url(self) -> str:
        """The Airflow api-server's root: :attr:`api_url` less its ``/mlbench`` mount point."""
        return self.api_url.removesuffix("/mlbench")

    @property
    def token(self) -> str | None:
        """The token sent with each request (None: none is sent)."""
        return self._token

    @token.setter
    def token(self, value: str | None) -> None:
        self._token = value or None
        if self._token:
            self.session.headers["Authorization"] = f"Bearer {self._token}"
        else:
            self.session.headers.pop("Authorization", None)

    def authenticate(self, username: str, password: str) -> str:
        """Log in to Airflow as ``username`` (``POST <root_url>/auth/token``); the JWT becomes
        the client's :attr:`token` and is returned.

        A refused login raises the typed error of the answer (``Unauthorized`` for a wrong
        password), no answer ``ApiUnavailable``, an answer without a token ``ApiError``.
        """
        url = f"{self.root_url}/auth/token"
        body = {"username": username, "password": password}
        response = self._send("POST", url, json=body)
        try:
            token = response.json()["access_token"]
        except (ValueError, KeyError, TypeError):
            token = None
        if not isinstance(token, str) or not token:
            raise ApiError(
                response.status_code,
                f"POST {url}: the answer carries no access_token",
                response=response,
            )
        self.token = token
        return token

    def close(self) -> None:
        """Close the connections of the client's session."""
        self.session.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        stream: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        return self._send(
            method, self.base_url + path, params=params, json=json, stream=stream, headers=headers
        )

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        stream: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        kwargs = {
            "params": query or None,
            "json": json,
            "timeout": self.timeout,
            "stream": stream,
            "headers": dict(headers) if headers else None,
        }
        try:
            try:
                response = self.session.request(method, url, **kwargs)
            except requests.ConnectionError as exc:
                # A kept-alive connection the server has just closed is reset: an idempotent
                # request is sent once more (POSTs are not: MetricsWriter retries its own).
                if method not in IDEMPOTENT or isinstance(exc, requests.Timeout):
                    raise
                response = self.session.request(method, url, **kwargs)
        except requests.Timeout as exc:
            raise ApiUnavailable(
                f"{method} {url}: no answer in {self.timeout:g} s ({exc})"
            ) from exc
        except requests.exceptions.InvalidJSONError as exc:
            raise ValueError(f"{method} {url}: the body cannot be sent as JSON: {exc}") from exc
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise ApiUnavailable(f"{method} {url}: cannot reach the API ({exc})") from exc
        try:
            raise_for_response(response)
        except ApiError:
            response.close()
            raise
        return response

    def stream(self, path: str, params: Mapping[str, Any] | None = None) -> requests.Response:
        """``GET <base_url><path>`` with its body not yet read, for downloads: read it with
        ``iter_content`` and close the response (or use it in a ``with``). Errors are raised
        as by the other methods, before any of the body is returned."""
        return self._request("GET", path, params=params, stream=True)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    @staticmethod
    def _series_params(
        since: DateLike | None,
        summarize: int | None,
        metric_filter: str | None = None,
        last_n: int | None = None,
    ) -> dict[str, Any]:
        return {
            "since": wire_date(since) if since is not None else None,
            "summarize": summarize,
            "metric_filter": metric_filter,
            "last_n": last_n,
        }

    # -- pods -------------------------------------------------------------------------------

    def get_pods(self, run_id: int | None = None) -> list[dict[str, Any]]:
        """All worker pods, or those of ``run_id``."""
        return self._json("GET", "/pods", params={"run_id": run_id})

    def put_pod(
        self,
        name: str,
        *,
        run_id: int | None = None,
        rank: int | None = None,
        phase: str | None = None,
        ip: str | None = None,
        node: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Create or update pod ``name``; only the given fields are sent."""
        fields = {"run_id": run_id, "rank": rank, "phase": phase, "ip": ip, "node": node}
        data: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
        if labels is not None:
            data["labels"] = dict(labels)
        return self._json("PUT", f"/pods/{quote(name, safe='')}", json=data)

    # -- metrics ----------------------------------------------------------------------------

    def get_all_metrics(
        self,
        since: DateLike | None = None,
        summarize: int | None = None,
        metric_filter: str | None = None,
        last_n: int | None = None,
        runs: bool = False,
    ) -> dict[str, dict[str, Any]]:
        """Every pod's series: pod name -> series name -> ``[{date, value, cumulative}]``;
        with ``runs``, also the original mlbench server's keys ``pod_metrics`` (the same)
        and ``run_metrics`` (run name -> series name -> points)."""
        params = self._series_params(since, summarize, metric_filter, last_n)
        if not runs:
            params["pods_only"] = "true"
        return self._json("GET", "/metrics", params=params)

    def get_pod_metrics(
        self,
        pod_name: str,
        since: DateLike | None = None,
        summarize: int | None = None,
        metric_filter: str | None = None,
        last_n: int | None = None,
        metadata: bool = False,
    ) -> dict[str, list[dict[str, Any]]]:
        """The series of one pod: series name -> ``[{date, value, cumulative}]`` in date order (with
        ``metadata``, each point's metadata too: what the series counts)."""
        params = self._series_params(since, summarize, metric_filter, last_n)
        if metadata:
            params["metadata"] = "true"
        return self._json("GET", f"/metrics/{quote(pod_name, safe='')}", params=params)

    def get_run_metrics(
        self,
        run_id: int,
        since: DateLike | None = None,
        summarize: int | None = None,
        metric_filter: str | None = None,
        last_n: int | None = None,
        metadata: bool = False,
    ) -> dict[str, list[dict[str, Any]]]:
        """The series of one run: series name -> ``[{date, value, cumulative}]`` in date order (with
        ``metadata``, each point's metadata too, where it has some)."""
        params = {
            "metric_type": "run",
            **self._series_params(since, summarize, metric_filter, last_n),
        }
        if metadata:
            params["metadata"] = "true"
        return self._json("GET", f"/metrics/{run_id}", params=params)

    def download_run_metrics(
        self,
        run_id: int,
        since: DateLike | None = None,
        summarize: int | None = None,
        layout: str = "mlbench2",
    ) -> bytes:
        """A zip of the run's series: with ``layout="mlbench2"`` one JSON file each and its
        ``result.json``; with ``layout="mlbench"`` the original mlbench server's files
        (``result_<series>.json``, ``<pod>_<series>.json``, ``official_result.txt``)."""
        params = {
            "metric_type": "run",
            "format": "zip",
            "layout": layout,
            **self._series_params(since, summarize),
        }
        return self._request("GET", f"/metrics/{run_id}", params=params).content

    def download_pod_metrics(
        self,
        pod_name: str,
        since: DateLike | None = None,
        summarize: int | None = None,
        layout: str = "mlbench2",
    ) -> bytes:
        """A zip of the pod's series: with ``layout="mlbench2"`` one JSON file each and its
        run's ``result.json``; with ``layout="mlbench"`` the original's
        ``result_<series>.json``."""
        params = {"format": "zip", "layout": layout, **self._series_params(since, summarize)}
        return self._request("GET", f"/metrics/{quote(pod_name, safe='')}", params=params).content

    @staticmethod
    def metric(
        name: str,
        value: float,
        *,
        run_id: int | None = None,
        pod_name: str | None = None,
        date: DateLike | None = None,
        cumulative: bool = False,
        metadata: Mapping[str, Any] | str | None = None,
    ) -> dict[str, Any]:
        """The wire form of one metric; ``ValueError`` unless exactly one owner is given."""
        if (run_id is None) == (pod_name is None):
            raise ValueError("exactly one of run_id and pod_name is required")
        data: dict[str, Any] = {"name": name, "value": _number(value), "cumulative": cumulative}
        if run_id is not None:
            data["run_id"] = run_id
        else:
            data["pod_name"] = pod_name
        if date is not None:
            data["date"] = wire_date(date)
        if metadata is not None:
            data["metadata"] = metadata if isinstance(metadata, str) else dict(metadata)
        return data

    def post_metric(
        self,
        name: str,
        value: float,
        *,
        run_id: int | None = None,
        pod_name: str | None = None,
        date: DateLike | None = None,
        cumulative: bool = False,
        metadata: Mapping[str, Any] | str | None = None,
        key: str | None = None,
    ) -> dict[str, Any]:
        """Store one metric of a run or of a pod (exactly one of ``run_id``/``pod_name``);
        with ``key`` (an idempotency key, reused on every retry) stored once however often
        it is sent."""
        data = self.metric(
            name,
            value,
            run_id=run_id,
            pod_name=pod_name,
            date=date,
            cumulative=cumulative,
            metadata=metadata,
        )
        return self._json("POST", "/metrics", json=data, headers=_keyed(key))

    def post_metrics(
        self, metrics: Iterable[Mapping[str, Any]], *, key: str | None = None
    ) -> dict[str, int]:
        """Store many metrics via ``POST /api/metrics/batch``; returns ``{"created": n}``.

        Each request carries at most 10,000 metrics and is all-or-nothing. Longer lists are
        split, so they are *not* atomic as a whole: when a later request fails, the metrics
        of the earlier ones stay stored and the error is raised. With ``key`` (an
        idempotency key the caller reuses when it retries the same metrics) each request is
        stored once however often it is sent.
        """
        items = [self._wire_metric(m) for m in metrics]
        created = 0
        for index, start in enumerate(range(0, len(items), MAX_BATCH)):
            chunk = items[start : start + MAX_BATCH]
            part = None if key is None else (key if index == 0 else f"{key}.{index}")
            answer = self._json(
                "POST", "/metrics/batch", json={"metrics": chunk}, headers=_keyed(part)
            )
            created += int(answer["created"])
        return {"created": created}

    @staticmethod
    def _wire_metric(metric: Mapping[str, Any]) -> dict[str, Any]:
        data = dict(metric)
        if isinstance(data.get("date"), datetime):
            data["date"] = wire_date(data["date"])
        if "value" in data:
            data["value"] = _number(data["value"])
        return data

    # -- runs -------------------------------------------------------------------------------

    def get_runs(
        self,
        *,
        state: str | None = None,
        benchmark: str | None = None,
        tags: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """All runs, newest first; with ``state``, ``benchmark`` or ``tags``, only those in
        that state, of that benchmark, with every tag."""
        params: dict[str, Any] = {"tag": list(tags)} if tags else {}
        if state is not None:
            params["state"] = str(state)
        if benchmark is not None:
            params["benchmark"] = benchmark
        return self._json("GET", "/runs", params=params or None)

    def get_run(self, run_id: int) -> dict[str, Any]:
        """One run."""
        return self._json("GET", f"/runs/{run_id}")

    def create_run(self, name: str, num_workers: int, **fields: Any) -> dict[str, Any]:
        """Create a run (INITIALIZED) and trigger its DAG run; 409 if the name is taken.

        ``fields``: any other field of :class:`~mlbench_core.api.schemas.RunCreate` (the
        one declaration of a run: benchmark, num_cpus, max_bandwidth, epochs,
        steps_per_epoch, seed, settings, ...); None means the server's default. With
        ``job_id`` (an existing ``mlbench_run`` DAG run) nothing is triggered.
        """
        unknown = sorted(set(fields) - set(RunCreate.model_fields))
        if unknown:
            raise TypeError(f"create_run() got fields RunCreate lacks: {', '.join(unknown)}")
        data = {"name": name, "num_workers": num_workers, **fields}
        body = {k: v for k, v in data.items() if v is not None and v != {}}
        return self._json("POST", "/runs", json=body)

    def update_run(
        self,
        run_id: int,
        *,
        state: str | None = None,
        result: Mapping[str, Any] | str | None = None,
        job_metadata: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        """Move the run's state forward, set its result, merge into its job metadata;
        replace its tags (``[]`` clears them) or note (``""`` clears it)."""
        data: dict[str, Any] = {}
        if tags is not None:
            data["tags"] = list(tags)
        if note is not None:
            data["note"] = note
        if state is not None:
            data["state"] = str(state)
        if result is not None:
            data["result"] = result if isinstance(result, str) else dict(result)
        if job_metadata is not None:
            data["job_metadata"] = dict(job_metadata)
        return self._json("PATCH", f"/runs/{run_id}", json=data)

    def put_record(self, run_id: int, record: Mapping[str, Any]) -> dict[str, Any]:
        """Record how the run was made (a worker token may, for its own run)."""
        return self._json("PUT", f"/runs/{run_id}/record", json={"record": dict(record)})

    def get_nightly_reports(self, limit: int = 30) -> list[dict[str, Any]]:
        """The nightly suite's reports, newest first."""
        return self._json("GET", "/nightly/", params={"limit": limit})

    def get_nightly_report(self, date: str, dag_run_id: str | None = None) -> dict[str, Any]:
        """The newest report of the night ``date`` (YYYY-MM-DD), or that of the nightly DAG
        run ``dag_run_id``."""
        params = {"dag_run_id": dag_run_id} if dag_run_id is not None else None
        return self._json("GET", f"/nightly/{date}", params=params)

    def put_nightly_report(
        self, date: str, verdict: str, report: Mapping[str, Any], dag_run_id: str | None = None
    ) -> dict[str, Any]:
        """Store the report of one nightly of ``date`` (replacing the one of the same
        ``dag_run_id``, a retry; the day's other nightlies are kept)."""
        body = {"verdict": verdict, "report": dict(report), "dag_run_id": dag_run_id}
        return self._json("PUT", f"/nightly/{date}", json=body)

    def put_result(self, run_id: int, result: Mapping[str, Any] | str) -> dict[str, Any]:
        """Record the run's official result (a worker token may, for its own run)."""
        body = result if isinstance(result, str) else dict(result)
        return self._json("PUT", f"/runs/{run_id}/result", json={"result": body})

    def post_logs(
        self, run_id: int, lines: Iterable[Mapping[str, Any]], *, key: str | None = None
    ) -> dict[str, Any]:
        """Append output lines (``rank``, ``stream`` stdout/stderr, ``line``, optional
        ``date``) to the run's log, in order; returns ``{"lines": [], "next": last id}``.
        With ``key`` (an idempotency key reused on retries) appended once."""
        items = []
        for line in lines:
            item = dict(line)
            if item.get("date") is not None:
                item["date"] = wire_date(item["date"])
            items.append(item)
        return self._json(
            "POST", f"/runs/{run_id}/logs", json={"lines": items}, headers=_keyed(key)
        )

    def get_logs(
        self,
        run_id: int,
        rank: int | None = None,
        after: int = 0,
        limit: int = 1000,
        tail: bool = False,
    ) -> dict[str, Any]:
        """Log lines with ids after ``after``, oldest first: ``{"lines": [...], "next": id}``
        (the first ``limit``, or with ``tail`` the newest ``limit``); pass ``next`` as
        ``after`` to resume."""
        params = {"rank": rank, "after": after, "limit": limit, "tail": tail or None}
        return self._json("GET", f"/runs/{run_id}/logs", params=params)

    def admit_run(self, run_id: int) -> dict[str, Any]:
        """Ask to start an INITIALIZED run: ``{"admitted", "reason", "run"}``. Admitted, it is
        STARTED; else it waits for CPUs (``reason`` says for what) and may ask again."""
        return self._json("POST", f"/runs/{run_id}/admit")

    def issue_worker_token(self, run_id: int) -> str:
        """A new worker token of the run (replacing any earlier one)."""
        return self._json("POST", f"/runs/{run_id}/token")["token"]

    def stop_run(self, run_id: int) -> dict[str, Any]:
        """Stop a going run (it ends CANCELLED); a finished run is returned unchanged."""
        return self._json("POST", f"/runs/{run_id}/stop")

    def delete_run(self, run_id: int) -> None:
        """Stop the run if it is going and delete it with its metrics and pods."""
        self._request("DELETE", f"/runs/{run_id}")

    # -- benchmarks -------------------------------------------------------------------------

    def get_backend(self) -> dict[str, Any]:
        """The launch backend and what it enforces (``cpu``, ``bandwidth``: ``status``
        enforced / requested / unavailable and ``by``; ``gpus``, ``logs``, ...)."""
        return self._json("GET", "/backend")

    def get_benchmarks(self) -> list[dict[str, Any]]:
        """The benchmark registry."""
        return self._json("GET", "/benchmarks")
