"""How well the local backend's bandwidth caps hold (a benchmark, not a test).

Usage: ``.venv/bin/python -m bench.bandwidth [--reps 3] [--caps 1,10,100,1000] [--ranks 2,4]
[--cpus 0.5] [--digits-reps 3] [--no-write | --render]``; writes
``docs/benchmarks/bandwidth.md`` (and ``.json``; ``--render`` writes the ``.md`` again from
it) and prints it. Needs root (network namespaces, tc, cgroups), as the local backend does.

1. Achieved / cap. For each world size, CPUs per rank (``--cpus``; combinations asking for
   more CPUs than the machine has are skipped) and cap, ``--reps`` runs of benchmark ``0a``
   (float32 all-reduce, one size per decade up to the largest, 1 warm-up and 5 timed calls
   each, the median taken) through the real local launcher: every rank in its sandbox, the
   cap on each rank's link both ways, its CPU quota. Achieved
   = the bus bandwidth at the largest size (``busbw = algbw x 2(n-1)/n``: what each rank's
   link carries in a ring all-reduce), over the cap. The largest size is chosen so that one
   call takes ~2 s at the cap: ``cap x 2 s x n / (2 (n-1))`` bytes. Baseline, same runs: the
   same sizes without a cap (how far above the caps the links go).
2. Time to target of ``digits`` (2 ranks, the first of ``--cpus`` each) at 1 Gbit/s and at
   10 Mbit/s,
   alternating, ``--digits-reps`` runs each: the run's ``time_to_target_s`` and the ratio.

The runs are made against an embedded stack (``Stack(settings).up()``, MLBENCH_HOME in a
temporary folder, a free port) as its admin, with a ``job_id`` so that no DAG run starts: the
launcher runs here, as the ``deploy`` task would, and the results are read from the API.
"""

from __future__ import annotations

import argparse
import json
import platform
import socket
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
TARGET = (0.85, 1.05)
CALL_S = 2.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def largest_elements(cap_mbit: float, ranks: int) -> int:
    """float32 elements whose all-reduce takes ~CALL_S seconds at the cap."""
    per_rank_bytes = cap_mbit * 1e6 / 8 * CALL_S
    return max(1000, round(per_rank_bytes * ranks / (2 * (ranks - 1)) / 4))


def stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


class Bench:
    def __init__(self, stack) -> None:
        from mlbench_core.cli.common import connect

        self.stack = stack
        self.client = connect(stack.settings)
        self.api_url = self.client.api_url
        self.count = 0

    def run(self, benchmark: str, ranks: int, cpus: float, cap: float | None, **extra: Any) -> dict:
        """One run through the local launcher; the run as the API has it afterwards."""
        from mlbench_core.api import ApiClient
        from mlbench_core.launch.local import LocalLauncher

        self.count += 1
        name = f"bw-{self.count}-{benchmark}-{ranks}r-{int(cap) if cap else 'nocap'}"
        settings = extra.pop("settings", None)
        run = self.client.create_run(
            name, ranks, benchmark=benchmark, max_bandwidth=cap, num_cpus=cpus,
            job_id="bench", **extra,
        )  # fmt: skip
        if settings:
            run = {**run, "settings": settings}
        token = self.client.issue_worker_token(run["id"])
        launcher = LocalLauncher(
            run,
            ApiClient(self.api_url, token=token),
            worker_token=token,
            api_url=self.api_url,
            echo=None,
            on_limits=lambda limits: self.client.update_run(
                run["id"], job_metadata={"limits": limits.record()}
            ),
        )
        launcher.launch()
        return self.client.get_run(run["id"])

    def allreduce(
        self, ranks: int, cpus: float, cap: float | None, elements: int
    ) -> dict[str, Any]:
        settings = {"max_elements": elements, "per_decade": 1, "warmup": 1, "repeats": 5,
                    "dtypes": "float32"}  # fmt: skip
        run = self.run("0a", ranks, cpus, cap, settings=settings)
        reached = run["result"]["busbw_at_largest"]["float32"]
        return {"busbw_mbit_s": reached["busbw_mbit_s"], "bytes": reached["bytes"],
                "of_cap": reached.get("of_cap"), "throttled_s": self.throttled(run),
                "limits": run["job_metadata"]["limits"]["bandwidth"]["by"]}  # fmt: skip

    def throttled(self, run: dict) -> float:
        """Seconds the ranks' CPU quotas held them back, summed over the ranks."""
        total = 0.0
        for pod in self.client.get_pods(run_id=run["id"]):
            series = self.client.get_pod_metrics(
                pod["name"], metric_filter="container_cpu_cfs_throttled_seconds_total"
            ).get("container_cpu_cfs_throttled_seconds_total", [])
            if series:
                total += series[-1]["value"] - series[0]["value"]
        return total


def measure(args: argparse.Namespace, bench: Bench) -> dict[str, Any]:
    caps = [float(c) for c in args.caps.split(",")]
    world_sizes = [int(r) for r in args.ranks.split(",")]
    cpu_counts = [float(c) for c in args.cpus.split(",")]
    machine_cpus = psutil.cpu_count() or 1
    rows = []
    for ranks in world_sizes:
        for cpus in cpu_counts:
            if ranks * cpus > machine_cpus:
                print(f"{ranks} ranks x {cpus:g} CPUs: more than {machine_cpus}, skipped")
                continue
            for cap in caps:
                rows.append(measure_cap(args, bench, ranks, cpus, cap))
    first = cpu_counts[0]
    digits: dict[str, list[float]] = {"1000": [], "10": []}
    for rep in range(args.digits_reps):
        for cap in ("1000", "10") if rep % 2 == 0 else ("10", "1000"):
            run = bench.run("digits", 2, first, float(cap))
            digits[cap].append(run["result"]["time_to_target_s"])
            print(f"digits at {cap} Mbit/s #{rep + 1}: {digits[cap][-1]:.2f} s", flush=True)
    ratios = [slow / fast for slow, fast in zip(digits["10"], digits["1000"], strict=True)]
    return {
        "allreduce": rows,
        "digits": {
            "cpus": first,
            "time_to_target_s": {cap: stats(values) for cap, values in digits.items()},
            "ratio_10_over_1000": stats(ratios),
        },
    }


def measure_cap(
    args: argparse.Namespace, bench: Bench, ranks: int, cpus: float, cap: float
) -> dict[str, Any]:
    """``--reps`` capped and uncapped runs of 0a, alternating."""
    elements = largest_elements(cap, ranks)
    capped, free = [], []
    for rep in range(args.reps):
        for kind in ("capped", "free") if rep % 2 == 0 else ("free", "capped"):
            result = bench.allreduce(ranks, cpus, cap if kind == "capped" else None, elements)
            (capped if kind == "capped" else free).append(result)
            shown = f"{result['busbw_mbit_s']:.1f} Mbit/s, throttled {result['throttled_s']:.2f} s"
            print(f"{ranks} ranks x {cpus:g} CPUs, cap {cap:g}, {kind} #{rep + 1}: {shown}",
                  flush=True)  # fmt: skip
    return {
        "ranks": ranks,
        "cpus": cpus,
        "cap_mbit_s": cap,
        "largest_bytes": elements * 4,
        "achieved_mbit_s": stats([r["busbw_mbit_s"] for r in capped]),
        "of_cap": stats([r["of_cap"] for r in capped]),
        "uncapped_mbit_s": stats([r["busbw_mbit_s"] for r in free]),
        "throttled_s": stats([r["throttled_s"] for r in capped]),
        "shaping": capped[0]["limits"],
    }


def machine() -> dict[str, Any]:
    return {
        "cpus": psutil.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_average": [round(x, 2) for x in psutil.getloadavg()],
    }


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    low, high = TARGET
    lines = [
        "# Bandwidth caps on the local backend",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} with `python -m bench.bandwidth --reps "
        f"{args.reps} --caps {args.caps} --ranks {args.ranks} --cpus {args.cpus} --digits-reps "
        f"{args.digits_reps}` "
        f"on this machine ({results['machine']['cpus']} CPUs, kernel "
        f"{results['machine']['kernel']}; load average before: "
        f"{results['machine']['load_average']}). Method: see the docstring of "
        "`bench/bandwidth.py`.",
        "",
        f"Target: achieved / cap between {low} and {high} for every cap up to 1000 Mbit/s.",
        "",
        "Reading it: achieved counts the all-reduce's payload, the cap counts what crosses the "
        "link: Ethernet frames of 1514 bytes carry 1448 bytes of TCP payload, so ~0.956 of the "
        "cap is the most a rank can reach; the token bucket (64 KiB, or 1 ms at the rate) "
        "lets a little more through at the start of each call. Uncapped, the same sizes show "
        "how far above the cap the links go (small sizes at low caps are latency-bound).",
        "",
        "## 0a: bus bandwidth at the largest size against the cap",
        "",
        "| ranks | CPUs per rank | cap (Mbit/s) | largest all-reduce | achieved (Mbit/s), "
        "median [min, max] | achieved / cap, median [min, max] | uncapped (Mbit/s), median | "
        "CPU quota throttling (s per run, all ranks), median | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results["allreduce"]:
        achieved, ratio, free = row["achieved_mbit_s"], row["of_cap"], row["uncapped_mbit_s"]
        met = "yes" if low <= ratio["median"] <= high else "**no**"
        lines.append(
            f"| {row['ranks']} | {row['cpus']:g} | {row['cap_mbit_s']:g} | "
            f"{row['largest_bytes'] / 1e6:.2f} MB | "
            f"{achieved['median']:.2f} [{achieved['min']:.2f}, {achieved['max']:.2f}] | "
            f"{ratio['median']:.3f} [{ratio['min']:.3f}, {ratio['max']:.3f}] | "
            f"{free['median']:.0f} | {row['throttled_s']['median']:.2f} | {met} |"
        )
    digits = results["digits"]
    fast, slow = digits["time_to_target_s"]["1000"], digits["time_to_target_s"]["10"]
    ratio = digits["ratio_10_over_1000"]
    lines += [
        "",
        "Shaping, per cap:",
        "",
        *sorted(
            {f"- {row['shaping']}" for row in results["allreduce"]},
            key=lambda line: float(line.split("rate ")[1].split()[0]),
        ),  # fmt: skip
        "",
        f"## digits: time to target at 1 Gbit/s and at 10 Mbit/s (2 ranks x {digits['cpus']:g} "
        "CPUs)",
        "",
        "| cap | time to target (s), median [min, max] |",
        "|---|---|",
        f"| 1000 Mbit/s | {fast['median']:.2f} [{fast['min']:.2f}, {fast['max']:.2f}] |",
        f"| 10 Mbit/s | {slow['median']:.2f} [{slow['min']:.2f}, {slow['max']:.2f}] |",
        "",
        f"10 Mbit/s over 1 Gbit/s: {ratio['median']:.2f}x (paired, median; min "
        f"{ratio['min']:.2f}x, max {ratio['max']:.2f}x).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--caps", default="1,10,100,1000")
    parser.add_argument("--ranks", default="2,4")
    parser.add_argument("--cpus", default="0.5", help="CPUs per rank, comma-separated")
    parser.add_argument("--digits-reps", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--render", action="store_true", help="only write the report again from the .json"
    )
    args = parser.parse_args()
    if args.render:
        results = json.loads((DOCS / "bandwidth.json").read_text())
        text = report(results, argparse.Namespace(**results["args"]))
        (DOCS / "bandwidth.md").write_text(text)
        print(text)
        return

    from mlbench_core.settings import Settings
    from mlbench_core.stack import Stack

    with tempfile.TemporaryDirectory(prefix="mlbench-bandwidth-") as workdir:
        stack = Stack(Settings(home=Path(workdir) / "stack", port=free_port()))
        began = time.monotonic()
        before = machine()
        stack.up(timeout=300)
        try:
            bench = Bench(stack)
            results = {"machine": before, **measure(args, bench)}
        finally:
            stack.down()
    results["seconds"] = time.monotonic() - began
    results["args"] = {k: v for k, v in vars(args).items() if k not in ("no_write", "render")}
    text = report(results, args)
    print(text)
    if not args.no_write:
        DOCS.mkdir(parents=True, exist_ok=True)
        (DOCS / "bandwidth.md").write_text(text)
        (DOCS / "bandwidth.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
