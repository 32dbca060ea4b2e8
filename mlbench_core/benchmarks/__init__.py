"""The benchmark registry: one declarative spec per reference benchmark."""

from mlbench_core.benchmarks.registry import (
    DEFAULT_BENCHMARK,
    REGISTRY,
    BenchmarkSpec,
    get_benchmark,
)

__all__ = ["DEFAULT_BENCHMARK", "REGISTRY", "BenchmarkSpec", "get_benchmark"]
