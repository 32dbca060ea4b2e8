"""The mlbench store: SQLAlchemy models, engine set-up and migrations."""

from mlbench_api.store.database import Store, get_store, reset_store
from mlbench_api.store.models import LogLine, Metric, NightlyReport, Pod, Run

__all__ = ["LogLine", "Metric", "NightlyReport", "Pod", "Run", "Store", "get_store", "reset_store"]
