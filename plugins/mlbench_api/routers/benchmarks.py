"""``/api/benchmarks``: the benchmark registry."""

from __future__ import annotations

from mlbench_api.auth import UserDep
from mlbench_api.routing import SlashRouter
from mlbench_core.benchmarks import REGISTRY, BenchmarkSpec

router = SlashRouter(prefix="/benchmarks", tags=["benchmarks"])


@router.get("/", response_model=list[BenchmarkSpec])
def list_benchmarks(_caller: UserDep) -> list[BenchmarkSpec]:
    return list(REGISTRY.values())
