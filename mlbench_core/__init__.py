"""mlbench core library: API client, wire schemas, worker runtime, benchmarks.

Imports no Airflow: workers and clients install only this package's dependencies.
"""

__version__ = "0.1.0"
