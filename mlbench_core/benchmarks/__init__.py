"""The benchmark registry: one declarative spec per reference benchmark."""

from mlbench_core.benchmarks.registry import REGISTRY, BenchmarkSpec, get_benchmark

__all__ = ["REGISTRY", "BenchmarkSpec", "get_benchmark"]
