"""The original mlbench-core 3.0.0 (its client and CLI from PyPI, unchanged, in their own
environment) against the embedded stack with ``MLBENCH_AUTH=none``: a run of each official
image it offers and one started by its CLI with the prompts answered, all to FINISHED
through the real scheduler, on the datasets in their official formats (tiny, from a local
mirror). The deployment keeps them short (``MLBENCH_RUN_DEFAULTS``: one epoch of two steps,
small models), which its clients cannot ask for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from harness.server import free_port
from mlbench_core.api import ApiClient
from mlbench_core.benchmarks import REGISTRY
from mlbench_core.settings import Settings
from mlbench_core.stack import Stack
from mlbench_core.stack_env import api_root
from tests.mlbench_core.benchmarks.test_suite_runs import mirror_files, sha256
from tests.support.mirror import serve
from tests.support.original import CLI, original_env, run_original
from tests.support.stacks import running_stack
from tests.support.waiting import wait_for

pytestmark = pytest.mark.usefixtures("original_client")
__all__ = ["mirror_files"]  # a fixture
SHORT = {
    "epochs": 1,
    "steps_per_epoch": 2,
    "settings": {
        "1a": {"batch_size": 16},
        "2a": {"batch_size": 20},
        "3a": {"emb": 16, "hidden": 24, "layers": 2, "batch_size": 4, "bptt": 8},
    },
}
BACKEND_BENCHMARK = "PyTorch Distributed Backend benchmarking"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, mirror_files) -> Iterator[Stack]:  # noqa: ANN001
    home = tmp_path_factory.mktemp("stack-original")
    checksums = {f.name: f"sha256:{sha256(f)}" for f in mirror_files.iterdir()}
    with serve(mirror_files) as mirror:
        settings = Settings(
            home=home, port=free_port(), auth="none", run_defaults=SHORT, cpu_capacity=16,
            data_dir=home / "data", data_url=mirror.url, data_checksums=checksums,
        )  # fmt: skip
        with running_stack(settings) as stack:
            yield stack


@pytest.mark.timeout(1200)
def test_original_clients_start_runs_that_finish(stack, tmp_path):
    url = urlsplit(api_root(stack.settings)).netloc + "/mlbench"  # what `-u` is given
    # every official image (the backend benchmark at its light size: its full one is 1e8
    # elements), GLOO
    created = run_original(
        [
            "-c",
            """
import json, sys
from mlbench_core.api import MLBENCH_IMAGES, ApiClient
client = ApiClient(in_cluster=False, url=sys.argv[1], load_config=False)
out = {}
for i, title in enumerate(MLBENCH_IMAGES):
    light = title == sys.argv[2]
    response = client.create_run(f"official-{i}", 2, num_cpus=1, image=title, backend="GLOO",
                                 light_target=light).result()
    out[title] = [response.status_code, response.json()]
print(json.dumps(out))
""",
            url,
            BACKEND_BENCHMARK,
        ]
    )
    assert created.returncode == 0, created.stderr
    answers = json.loads(created.stdout.splitlines()[-1])
    started = {title: body for title, (status, body) in answers.items() if status == 201}
    refused = {title for title, (status, _) in answers.items() if status != 201}
    assert refused == {"Tensorflow Cifar-10 ResNet-20 Open-MPI"} | {
        title
        for title in answers
        if "Machine Translation" in title and not {"4a", "4b"} <= set(REGISTRY)
    }
    # its CLI: `mlbench run NAME 2 -u URL`, prompts answered: benchmark 7 (the backend
    # benchmark), backend 1 (GLOO); -c 2 is 1 CPU per worker (it asks for one less), -l light
    cli = run_original(
        [*CLI, "run", "from-cli", "2", "-u", url, "-c", "2", "-l"],
        env=original_env(HOME=str(tmp_path)),
        input="7\n1\n",
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "Run started with name from-cli-2" in cli.stdout, cli.stdout

    client = ApiClient(api_root(stack.settings) + "/mlbench")
    names = {body["name"] for body in started.values()} | {"from-cli-2"}

    def ended() -> list[dict]:
        runs = [r for r in client.get_runs() if r["name"] in names]
        return runs if all(r["state"] in ("FINISHED", "FAILED") for r in runs) else []

    runs = wait_for(ended, 1000, "the original clients' runs to end")
    assert len(runs) == len(names)
    for run in runs:
        print(run["name"], run["benchmark"], run["created_at"], run["finished_at"])
        assert run["state"] == "FINISHED", (run["name"], run["job_metadata"])
        assert (run["backend"], run["num_workers"], run["num_cpus"]) == ("gloo", 2, 1.0)
        assert (run["synthetic"], run["epochs"], run["steps_per_epoch"]) == (False, 1, 2)
        assert run["settings"] == SHORT["settings"].get(run["benchmark"], {})
    by_name = {r["name"]: r for r in runs}
    assert by_name["from-cli-2"]["benchmark"] == "0a" and by_name["from-cli-2"]["light_target"]
    ddp = started["PyTorch Cifar-10 ResNet-20 (DDP)"]["name"]
    assert (by_name[ddp]["benchmark"], by_name[ddp]["aggregation"]) == ("1a", "ddp")
    # the original CLI's status reads them too
    status = run_original([*CLI, "status", "from-cli-2", "-u", url],
                          env=original_env(HOME=str(tmp_path)))  # fmt: skip
    assert status.returncode == 0 and "FINISHED" in status.stdout, status.stdout + status.stderr
