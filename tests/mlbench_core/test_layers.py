"""The packages are layers: what each may import, read from the source (every import,
function-level ones included) and checked in a fresh interpreter.

    settings, api  <-  engine  <-  benchmarks  <-  worker (the entrypoint)
    launch, runflow, nightly, cli: clients of the API; none knows Airflow or a screen
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from harness.environment import REPO

LIBRARY = REPO / "mlbench_core"


def imports(path: Path) -> set[str]:
    """Every module a file imports, absolute (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                found.add(f"{base}.{node.module}" if node.module else base)
            else:
                found.add(node.module or "")
    return found


def offenders(folder: Path, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    bad = {}
    for path in sorted(folder.rglob("*.py")):
        hits = sorted(
            name for name in imports(path) if any(
                name == f or name.startswith(f"{f}.") for f in forbidden)
        )  # fmt: skip
        if hits:
            bad[str(path.relative_to(REPO))] = hits
    return bad


def test_the_library_knows_no_airflow_api_server_or_screen():
    assert offenders(LIBRARY, ("airflow", "mlbench_airflow", "mlbench_api", "dashboard")) == {}


def test_the_engine_knows_no_benchmark_and_no_entrypoint():
    engine = LIBRARY / "engine"
    assert offenders(engine, ("mlbench_core.benchmarks", "mlbench_core.worker")) == {}


def test_benchmarks_build_on_the_engine_not_on_the_entrypoint():
    assert offenders(LIBRARY / "benchmarks", ("mlbench_core.worker",)) == {}


def test_the_benchmarks_registry_is_light():
    """The API, the DAG file and the CLI read the registry: it must not pull in torch."""
    code = (
        "import sys, mlbench_core.benchmarks, mlbench_core.launch.backend; "
        "print(sorted(m for m in ('torch', 'mlbench_core.engine.trainer') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_engine_loads_without_the_benchmarks():
    code = (
        "import sys, mlbench_core.engine.trainer; "
        "print([m for m in sys.modules if m.startswith(('mlbench_core.benchmarks', "
        "'mlbench_core.worker'))])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_benchmarks_run_outside_the_tests():
    assert offenders(REPO / "bench", ("tests",)) == {}
