"""What the ``mlbench_nightly`` DAG's tasks do, as plain functions over the API client.

``plan`` → (``start`` + ``state`` per run, polled by a deferrable operator) → ``compare``
(today's values against the history, report stored through the API) → ``render_markdown``.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from mlbench_core.api import ApiClient, Conflict
from mlbench_core.nightly.compare import METRICS, compare_entry, measure
from mlbench_core.nightly.suite import PlannedRun, Suite

__all__ = [
    "TERMINAL",
    "collect",
    "history",
    "make_report",
    "regressions",
    "render_markdown",
    "start",
]

TERMINAL = ("FINISHED", "FAILED", "CANCELLED")
MEMORY = "container_memory_usage_bytes"


def start(client: ApiClient, planned: PlannedRun) -> dict[str, Any]:
    """Create (and so trigger) the planned run; the existing one if a retry created it."""
    try:
        return client.create_run(planned.name, planned.num_workers, **planned.fields)
    except Conflict:
        return next(r for r in client.get_runs() if r["name"] == planned.name)


def peak_memory(client: ApiClient, run: Mapping[str, Any]) -> float | None:
    """The largest peak memory of any worker of the run (bytes): the kernel's high-water
    mark the workers recorded with the result; for a run without it, the largest resource
    sample."""
    result = run.get("result")
    memory = result.get("memory") if isinstance(result, Mapping) else None
    if isinstance(memory, Mapping) and isinstance(memory.get("peak_bytes"), int | float):
        return float(memory["peak_bytes"])
    run_id = run["id"]
    peaks = []
    for pod in client.get_pods(run_id=run_id):
        series = client.get_pod_metrics(pod["name"], metric_filter=MEMORY).get(MEMORY, [])
        peaks += [float(p["value"]) for p in series]
    return max(peaks) if peaks else None


def observe(client: ApiClient, run: Mapping[str, Any]) -> dict[str, Any]:
    """One run as the report keeps it: name, id, state and the compared values."""
    values = measure(run.get("result") if isinstance(run.get("result"), dict) else None)
    values["peak_memory_bytes"] = peak_memory(client, run)
    return {"name": run["name"], "id": run["id"], "state": run["state"], "values": values}


def collect(client: ApiClient, planned: Sequence[PlannedRun]) -> dict[str, list[dict[str, Any]]]:
    """Tonight's runs by entry key, observed (runs missing from the API count as failed)."""
    runs = {r["name"]: r for r in client.get_runs()}
    out: dict[str, list[dict[str, Any]]] = {}
    for item in planned:
        run = runs.get(item.name)
        if run is None:
            seen = {"name": item.name, "id": None, "state": "MISSING", "values": {}}
        else:
            seen = observe(client, run)
        out.setdefault(item.key, []).append(seen)
    return out


def _medians(values: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    rows = list(values)
    out: dict[str, Any] = {}
    for metric in METRICS:
        finite = [r[metric] for r in rows if isinstance(r.get(metric), int | float)]
        out[metric] = statistics.median(finite) if finite else None
    out["reached"] = any(r.get("reached") for r in rows) if rows else None
    return out


def history(
    client: ApiClient, suite: Suite, day: date
) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """Per entry key: where its baseline comes from and the past values — the pinned runs
    (``suite.baseline``) or the medians of the last ``suite.history`` nightlies before
    ``day`` that ran the entry without failure."""
    out: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    reports = [
        r for r in client.get_nightly_reports(limit=1000) if r["date"] < day.isoformat()
    ]  # newest first
    runs = None
    for key in suite.keys():
        if key in suite.baseline:
            if runs is None:
                runs = {r["name"]: r for r in client.get_runs()}
            pinned = [runs[name] for name in suite.baseline[key] if name in runs]
            values = [observe(client, r)["values"] for r in pinned]
            out[key] = (f"pinned runs {', '.join(suite.baseline[key])}", values)
            continue
        past = []
        for report in reports:
            entry = report["report"].get("entries", {}).get(key)
            if entry and entry.get("failed", 0) == 0 and entry.get("values"):
                past.append(entry["values"])
            if len(past) == suite.history:
                break
        out[key] = (f"median of the last {len(past)} nightlies", past)
    return out


def _entry_verdict(verdicts: Mapping[str, Mapping[str, Any]], failed: int) -> str:
    if failed:
        return "failed"
    statuses = {v["status"] for v in verdicts.values()}
    if "regression" in statuses:
        return "regression"
    if statuses <= {"insufficient-history", "no-data"}:
        return "insufficient-history" if "insufficient-history" in statuses else "no-data"
    return "ok"


def make_report(
    day: date,
    dag_run_id: str,
    suite: Suite,
    tonight: Mapping[str, list[dict[str, Any]]],
    past: Mapping[str, tuple[str, list[dict[str, Any]]]],
) -> tuple[str, dict[str, Any]]:
    """The night's verdict and report (JSON-ready): per entry its runs, the median values,
    each metric's verdict and the entry's verdict."""
    entries = {}
    for key in suite.keys():
        runs = tonight.get(key, [])
        ok_runs = [r for r in runs if r["state"] == "FINISHED"]
        failed = len(runs) - len(ok_runs)
        source, past_values = past.get(key, ("no history", []))
        verdicts = {
            metric: verdict.as_dict()
            for metric, verdict in compare_entry(
                [r["values"] for r in ok_runs], past_values, min_history=suite.min_history
            ).items()
        }
        entries[key] = {
            "runs": runs,
            "failed": failed,
            "values": _medians(r["values"] for r in ok_runs) if ok_runs else {},
            "baseline": source,
            "verdicts": verdicts,
            "verdict": _entry_verdict(verdicts, failed),
        }
    order = ("failed", "regression", "ok", "insufficient-history", "no-data")
    found = {e["verdict"] for e in entries.values()}
    verdict = next((v for v in order if v in found), "no-data")
    report = {
        "date": day.isoformat(),
        "dag_run_id": dag_run_id,
        "suite": suite.model_dump(),
        "entries": entries,
        "verdict": verdict,
    }
    return verdict, report


def regressions(report: Mapping[str, Any]) -> list[str]:
    """One line per failed run or regressed metric, naming the entry and the change."""
    lines = []
    for key, entry in report.get("entries", {}).items():
        for run in entry["runs"]:
            if run["state"] != "FINISHED":
                lines.append(f"{key}: run {run['name']} ended {run['state']}")
        for metric, verdict in entry["verdicts"].items():
            if verdict["status"] != "regression":
                continue
            if verdict.get("today") is None or verdict.get("baseline") is None:
                lines.append(f"{key}: {metric} regressed: {verdict.get('reason')}")
                continue
            lines.append(
                f"{key}: {metric} {verdict['today']:.4g} vs baseline {verdict['baseline']:.4g} "
                f"({verdict['relative']:+.1%}; noise band +-{verdict['band']:.3g})"
            )
    return lines


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown: a verdict line, a table of entries, the problems."""
    lines = [
        f"# Nightly benchmarks {report['date']}: {report['verdict']}",
        "",
        f"DAG run `{report.get('dag_run_id')}`.",
        "",
        "| entry | verdict | " + " | ".join(METRICS) + " | baseline |",
        "|---|---|" + "---|" * len(METRICS) + "---|",
    ]
    for key, entry in report["entries"].items():
        cells = []
        for metric in METRICS:
            v = entry["verdicts"][metric]
            rel = f" ({v['relative']:+.1%})" if v.get("relative") is not None else ""
            cells.append(f"{_cell(v.get('today'))}{rel} {v['status']}")
        lines.append(
            f"| {key} | **{entry['verdict']}** | " + " | ".join(cells) + f" | {entry['baseline']} |"
        )
    problems = regressions(report)
    if problems:
        lines += ["", "## Problems", "", *(f"- {p}" for p in problems)]
    return "\n".join(lines) + "\n"
