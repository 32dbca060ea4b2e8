"""``mlbench benchmarks | run | status | download | delete`` against the live API."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import zipfile

import pytest

from harness.environment import ADMIN, VENV_BIN
from harness.server import free_port
from mlbench_core.api import ApiClient
from tests.mlbench_core.launch.test_facilities import require_facilities


@pytest.fixture
def client(live_server, admin_token, cli_env):
    with ApiClient(f"{live_server}/mlbench", token=admin_token) as api:
        yield api


def one_error_line(err: str) -> str:
    """The error output is exactly one line, without a traceback."""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("mlbench: error: ")
    return lines[0]


def test_benchmarks_lists_the_registry(mlbench):
    result = mlbench("benchmarks")
    assert result.code == 0, result.err
    assert result.err == ""
    for expected in (
        "1a",
        "ResNet-20 on CIFAR-10",
        "val_top1 >= 80",
        "val_top1 >= 70",
        "val_perplexity <= 70",
    ):
        assert expected in result.out


def test_benchmarks_as_json(mlbench):
    result = mlbench("benchmarks", "--json")
    assert result.code == 0
    assert {spec["id"] for spec in json.loads(result.out)} >= {"0a", "1a", "2a", "3a"}


def test_run_creates_the_run_and_prints_it(mlbench, client):
    result = mlbench(
        "run", "my-run", "--benchmark", "2a", "--workers", "2", "--cpus", "0.5",
        "--bandwidth", "100", "--light",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "created run my-run" in result.out
    for expected in ("INITIALIZED", "2a", "0.5", "100 Mbit/s", "light", "mlbench status my-run"):
        assert expected in result.out
    assert "not applied yet" in result.out  # the limits hold once the workers start
    [run] = client.get_runs()
    assert (run["name"], run["benchmark"], run["num_workers"]) == ("my-run", "2a", 2)
    assert (run["num_cpus"], run["max_bandwidth"], run["light_target"]) == (0.5, 100.0, True)
    assert run["job_id"] and run["job_id"] in result.out


def test_run_takes_the_length_seed_and_settings_of_a_run(mlbench, client):
    result = mlbench(
        "run", "short", "--benchmark", "1a", "--synthetic", "--epochs", "1", "--steps", "20",
        "--workers", "2", "--seed", "3", "--set", "lr=0.05", "--set", "batch_size=64",
        "--aggregation", "ddp",
    )  # fmt: skip
    assert result.code == 0, result.err
    for expected in ("throughput only", "epochs (at most)", "batch_size=64, lr=0.05", "ddp"):
        assert expected in result.out
    [run] = client.get_runs()
    assert (run["epochs"], run["steps_per_epoch"], run["seed"]) == (1, 20, 3)
    assert run["settings"] == {"lr": 0.05, "batch_size": 64}
    assert run["synthetic"] is True and run["aggregation"] == "ddp"
    assert "throughput only" in mlbench("status", "short").out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--set", "nope=1"), "--set: benchmark 1a has no setting 'nope'; valid: augmentation"),
        (("--set", "lr=fast"), "--set: setting lr: 'fast' is not a valid float"),
        (("--set", "lr"), "--set: needs KEY=VALUE, got 'lr'"),
        (("--epochs", "0"), "--epochs: Input should be greater than or equal to 1"),
        (("--steps", "0"), "--steps: Input should be greater than or equal to 1"),
        (("--seed", "-1"), "--seed: Input should be greater than or equal to 0"),
        (("--aggregation", "ring"), "--aggregation: aggregation 'ring' is not offered"),
    ],
)
def test_bad_run_fields_are_one_line_naming_the_option(mlbench, client, args, message):
    result = mlbench("run", "bad", "--benchmark", "1a", "--workers", "2", *args)
    assert result.code == 2
    assert message in one_error_line(result.err)
    assert client.get_runs() == []


def test_backend_says_what_is_enforced_here(mlbench):
    require_facilities()
    result = mlbench("backend")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("backend: local, at most 16 workers; runs wait for free CPUs")
    assert lines[1].startswith("CPUs per worker: enforced (CFS quota per rank")
    assert lines[2] == (
        "bandwidth cap: enforced (tc token buckets on each rank's link, both ways (a network "
        "namespace per rank))"
    )
    assert json.loads(mlbench("backend", "--json").out)["backend"] == "local"


def test_a_cap_the_backend_cannot_hold_is_refused_before_the_run_exists(
    mlbench, cli_env, client, tmp_path
):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ip").symlink_to(shutil.which("ip") or "/usr/sbin/ip")
    cli_env.setenv("PATH", str(bin_dir))  # no tc
    result = mlbench("run", "capped", "-b", "digits", "-w", "1", "--bandwidth", "10")
    assert result.code == 2
    assert one_error_line(result.err) == (
        "mlbench: error: --bandwidth: the local backend cannot cap bandwidth here ('tc' not "
        "found on PATH (Debian package iproute2)); run without it"
    )
    assert client.get_runs() == []


def test_a_cap_kubernetes_only_requests_says_so(mlbench, cli_env, client):
    cli_env.setenv("MLBENCH_BACKEND", "kubernetes")
    result = mlbench("run", "capped", "-b", "digits", "-w", "1", "--bandwidth", "10")
    assert result.code == 0, result.err
    assert "note: the bandwidth cap is requested, not verified: pod annotations" in result.out
    assert [r["name"] for r in client.get_runs()] == ["capped"]


def test_a_run_asking_for_more_cpus_than_the_machine_gives_is_refused(mlbench, cli_env, client):
    cli_env.setenv("MLBENCH_CPU_CAPACITY", "2")
    result = mlbench("run", "big", "--benchmark", "digits", "--workers", "3")
    assert result.code == 2
    assert result.err == (
        "mlbench: error: num_cpus: num_workers x num_cpus = 3 x 1 = 3 CPUs, more than the 2 "
        "this machine gives to runs (MLBENCH_CPU_CAPACITY): ask for fewer, or set oversubscribe "
        "to run with less than asked\n"
    )
    assert client.get_runs() == []


def test_an_oversubscribed_run_says_so(mlbench, cli_env, client):
    cli_env.setenv("MLBENCH_CPU_CAPACITY", "2")
    result = mlbench("run", "big", "--benchmark", "digits", "--workers", "3", "--oversubscribe")
    assert result.code == 0, result.err
    assert "warning" in result.out and "oversubscribed: 3 workers x 1 CPUs = 3 CPUs" in result.out
    status = mlbench("status", "big")
    assert "oversubscribed: 3 workers x 1 CPUs" in status.out


def test_status_shows_what_held(mlbench, client):
    run = client.create_run("held", 2, benchmark="0a", num_cpus=0.5, max_bandwidth=10)
    client.update_run(run["id"], state="STARTED", job_metadata={"waiting": None, "limits": {
        "backend": "local",
        "cpu": {"requested": 0.5, "status": "enforced", "by": "CFS quota 50000 us per 100000 us"},
        "bandwidth": {"requested": 10, "status": "enforced", "by": "tc tbf rate 10 Mbit/s"},
        "network": "a network namespace per rank",
    }})  # fmt: skip
    shown = mlbench("status", "held").out
    assert "0.5 CPU per worker: enforced (CFS quota 50000 us per 100000 us)" in shown
    assert "10 Mbit/s per worker: enforced (tc tbf rate 10 Mbit/s)" in shown
    listed = mlbench("status").out
    assert "0.5 CPU enforced, 10 Mbit/s enforced" in listed


def test_status_says_why_a_run_waits(mlbench, client):
    run = client.create_run("queued", 2, benchmark="digits")
    reason = "waiting for 2 CPUs: 0 of the machine's 2 are free; held by 'other' (2)"
    client.update_run(run["id"], job_metadata={"waiting": {"reason": reason}})
    row = next(line for line in mlbench("status", "queued").out.splitlines() if "waiting" in line)
    assert [cell.strip() for cell in row.strip("│ ").split("│")] == ["waiting", reason]


def test_status_lists_the_runs_newest_first(mlbench, client):
    client.create_run("first", 2, benchmark="1a")
    second = client.create_run("second", 2, benchmark="3a")
    client.update_run(second["id"], state="STARTED")
    result = mlbench("status")
    assert result.code == 0, result.err
    header = next(line for line in result.out.splitlines() if "benchmark" in line)
    for column in ("id", "name", "benchmark", "workers", "state", "created", "duration"):
        assert column in header
    rows = [line for line in result.out.splitlines() if "first" in line or "second" in line]
    assert len(rows) == 2
    assert "second" in rows[0] and "3a" in rows[0] and "STARTED" in rows[0]
    assert "first" in rows[1] and "1a" in rows[1] and "INITIALIZED" in rows[1]
    assert rows[1].split()[-1] == "-"  # not started: no duration


def test_status_without_runs(mlbench):
    result = mlbench("status")
    assert result.code == 0
    assert "no runs yet" in result.out


def test_status_of_one_run_shows_it_with_its_result(mlbench, client):
    run = client.create_run("done", 2, benchmark="1a")
    client.update_run(run["id"], state="STARTED")
    result_doc = {"reached": True, "time_to_target_s": 42.5, "split": {"compute_s": 30.0}}
    client.update_run(run["id"], state="FINISHED", result=result_doc)
    result = mlbench("status", "done")
    assert result.code == 0, result.err
    for expected in ("run done", "FINISHED", "1a", "duration", "reached", "yes"):
        assert expected in result.out
    assert "time to target" in result.out and "42.5 s" in result.out
    assert "compute (rank 0)" in result.out and "30.0 s" in result.out
    shown = json.loads(mlbench("status", "done", "--format", "json").out)
    assert shown == result_doc
    refused = mlbench("status", "done", "--format", "csv")
    assert refused.code == 2
    assert refused.err == "mlbench: error: --format csv: run done has no all-reduce report\n"


def _allreduce_row(dtype: str, elements: int, size: int, median: float) -> dict:
    nbytes = elements * size
    return {"dtype": dtype, "elements": elements, "bytes": nbytes, "world_size": 2,
            "repeats": 20, "median_s": median, "p10_s": median * 0.9, "p90_s": median * 1.1,
            "min_s": median * 0.8, "rank_median_min_s": median * 0.9,
            "rank_median_max_s": median, "algbw_bytes_per_s": nbytes / median,
            "busbw_bytes_per_s": nbytes / median, "skipped": None}  # fmt: skip


def test_status_of_an_allreduce_run_prints_its_report_one_row_per_size_and_dtype(mlbench, client):
    run = client.create_run("ar", 2, benchmark="0a", max_bandwidth=100)
    sizes = (1, 1000, 100000)
    rows = [_allreduce_row(d, n, w, 1e-4 * (1 + n / 1000)) for d, w in (("float32", 4),
            ("float16", 2)) for n in sizes]  # fmt: skip
    client.update_run(run["id"], state="STARTED")
    client.update_run(run["id"], state="FINISHED", result={
        "benchmark": "0a", "world_size": 2, "total_time_s": 3.0,
        "bandwidth_cap_mbit_s": 100.0, "rows": rows,
    })  # fmt: skip
    result = mlbench("status", "ar")
    assert result.code == 0, result.err
    assert "all-reduce: 2 ranks, cap 0.1 Gbit/s" in result.out
    assert "p50 (µs)" in result.out and "busbw (Gbit/s)" in result.out
    lines = [row.strip() for row in result.out.splitlines()]
    lines = [row for row in lines if row.startswith(("float32", "float16"))]
    assert [line.split()[:2] for line in lines] == [
        [d, f"{n * w:,}"] for d, w in (("float32", 4), ("float16", 2)) for n in sizes
    ]
    assert "{'dtype'" not in result.out  # no Python repr of the rows
    csv_rows = mlbench("status", "ar", "--format", "csv").out.splitlines()
    assert csv_rows[0].startswith("dtype,bytes,elements,latency_p50_us")
    assert len(csv_rows) == 1 + 6
    shown = json.loads(mlbench("status", "ar", "--format", "json").out)
    assert len(shown["rows"]) == 6 and shown["cap_gbit_s"] == 0.1
    assert shown["units"]["busbw_gbit_s"] == "busbw (Gbit/s)"
    assert "of cap" in result.out and "317%" in result.out  # 0.317 Gbit/s against 0.1


def test_download_writes_a_zip_of_the_metrics(mlbench, client, tmp_path):
    run = client.create_run("zipped", 2, benchmark="1a")
    client.post_metrics(
        [
            client.metric("train_loss", 2.0 - i / 10, run_id=run["id"], date=f"2026-01-01T00:0{i}")
            for i in range(5)
        ]
        + [client.metric("val_top1", 55.0, run_id=run["id"])]
    )
    target = tmp_path / "out" / "metrics.zip"
    target.parent.mkdir()
    result = mlbench("download", "zipped", "-o", str(target))
    assert result.code == 0, result.err
    assert f"wrote {target}" in result.out and "2 series" in result.out
    with zipfile.ZipFile(target) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        assert "result.json" in names
        [loss] = [n for n in names if "train_loss" in n]
        points = json.loads(archive.read(loss))
    assert [p["value"] for p in points["points"]] == [2.0, 1.9, 1.8, 1.7, 1.6]
    assert list(tmp_path.joinpath("out").iterdir()) == [target]  # no temporary file left


def test_download_defaults_to_name_zip(mlbench, client, tmp_path, monkeypatch):
    client.create_run("plain", 1, benchmark="1a")
    monkeypatch.chdir(tmp_path)
    result = mlbench("download", "plain")
    assert result.code == 0, result.err
    assert zipfile.is_zipfile(io.BytesIO((tmp_path / "plain.zip").read_bytes()))


def test_delete_removes_the_run(mlbench, client):
    keep = client.create_run("keep", 1, benchmark="1a")
    client.create_run("drop", 1, benchmark="1a")
    result = mlbench("delete", "drop")
    assert result.code == 0, result.err
    assert "deleted run drop" in result.out
    assert [run["id"] for run in client.get_runs()] == [keep["id"]]
    again = mlbench("delete", "drop")
    assert again.code == 1
    assert "no run named 'drop'" in one_error_line(again.err)


# -- errors ----------------------------------------------------------------------------------


def test_a_bad_name_prints_the_field_message(mlbench, client):
    result = mlbench("run", "Bad_Name", "--benchmark", "1a", "--workers", "2")
    assert result.code == 2
    line = one_error_line(result.err)
    assert "name: " in line and "lower-case DNS label" in line
    assert client.get_runs() == []


def test_a_taken_name_and_an_unknown_benchmark_are_refused(mlbench, client):
    client.create_run("taken", 1, benchmark="1a")
    result = mlbench("run", "taken", "--benchmark", "1a", "--workers", "2")
    assert result.code == 2
    assert "a run named 'taken' exists" in one_error_line(result.err)
    result = mlbench("run", "other", "--benchmark", "9z", "--workers", "2")
    assert result.code == 2
    assert "unknown benchmark '9z'" in one_error_line(result.err)
    result = mlbench("run", "other", "--benchmark", "1a", "--workers", "0")
    assert result.code == 2
    assert "--workers: Input should be greater than or equal to 1" in one_error_line(result.err)


def test_an_unknown_run_name(mlbench):
    for command in ("status", "download", "delete"):
        result = mlbench(command, "nope")
        assert result.code == 1
        assert "no run named 'nope'" in one_error_line(result.err)


@pytest.mark.parametrize(
    "args",
    [
        ("run", "x", "--benchmark", "1a"),
        ("run", "x", "--benchmark", "1a", "--workers", "two"),
        ("frobnicate",),
        (),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(mlbench, args):
    result = mlbench(*args)
    assert result.code == 2
    assert "--help" in one_error_line(result.err)
    assert result.out == ""


def test_help_exits_0(mlbench):
    result = mlbench("run", "--help")
    assert result.code == 0
    assert "--follow" in result.out


@pytest.mark.parametrize(
    "args",
    [
        ("benchmarks",),
        ("status",),
        ("status", "x"),
        ("run", "x", "--benchmark", "1a", "--workers", "1"),
        ("download", "x"),
        ("delete", "x"),
    ],
)
def test_api_down_is_one_line(mlbench, cli_env, args):
    cli_env.setenv("MLBENCH_API_URL", f"http://127.0.0.1:{free_port()}/mlbench")
    result = mlbench(*args)
    assert result.code == 1
    line = one_error_line(result.err)
    assert line.startswith("mlbench: error: the mlbench stack is not running: run `mlbench up`")


def test_a_refused_token_is_one_line(mlbench, cli_env):
    cli_env.setenv("MLBENCH_API_TOKEN", "not-a-jwt")
    result = mlbench("status")
    assert result.code == 1
    assert "refused the credentials" in one_error_line(result.err)


def test_no_token_and_no_credentials(mlbench, cli_env):
    cli_env.delenv("MLBENCH_API_TOKEN")
    result = mlbench("benchmarks")
    assert result.code == 1
    line = one_error_line(result.err)
    assert "the mlbench stack is not running" in line and "credentials.json" in line


# -- how the CLI finds and logs in to the API ------------------------------------------------


def write_credentials(home, admin_password):
    home.mkdir(parents=True, exist_ok=True)
    document = {
        "passwords": {"admin": admin_password, "mlbench": "unused"},
        "jwt_secret": "unused",
        "secret_key": "unused",
    }
    (home / "credentials.json").write_text(json.dumps(document))


def test_logs_in_as_admin_with_the_stack_credentials(mlbench, cli_env, tmp_path, live_server):
    cli_env.delenv("MLBENCH_API_TOKEN")
    write_credentials(tmp_path / "home", ADMIN[1])
    result = mlbench("benchmarks")
    assert result.code == 0, result.err
    assert "ResNet-20" in result.out
    write_credentials(tmp_path / "home", "wrong")
    result = mlbench("benchmarks")
    assert result.code == 1
    assert "refused the admin login" in one_error_line(result.err)


def test_finds_the_api_of_the_running_stack(mlbench, cli_env, tmp_path, live_server):
    """Without MLBENCH_API_URL, the URL recorded in stack.json is used."""
    cli_env.delenv("MLBENCH_API_URL")
    state = {"api_url": f"{live_server}/mlbench", "processes": {}}
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "stack.json").write_text(json.dumps(state))
    result = mlbench("benchmarks")
    assert result.code == 0, result.err


def test_the_mlbench_command_is_installed(cli_env):
    """The console script, as a real process."""
    command = str(VENV_BIN / "mlbench")
    done = subprocess.run(
        [command, "benchmarks"], capture_output=True, text=True, timeout=120, env=os.environ.copy()
    )
    assert done.returncode == 0, done.stderr
    assert "ResNet-20 on CIFAR-10" in done.stdout
    done = subprocess.run(
        [command, "run", "Bad_Name", "--benchmark", "1a", "--workers", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )
    assert done.returncode == 2
    assert "lower-case DNS label" in one_error_line(done.stderr)


def test_without_url_or_stack_the_api_is_on_mlbench_port(mlbench, cli_env, live_server):
    cli_env.delenv("MLBENCH_API_URL")
    cli_env.setenv("MLBENCH_PORT", live_server.rsplit(":", 1)[1])
    result = mlbench("benchmarks")
    assert result.code == 0, result.err
