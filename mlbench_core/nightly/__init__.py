"""Nightly benchmarks: the suite, the comparison against history, the report."""
