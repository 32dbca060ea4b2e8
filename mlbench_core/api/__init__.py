"""Client side of the mlbench REST API: wire schemas, the client, the metrics writer."""

from mlbench_core.api.client import ApiClient
from mlbench_core.api.errors import (
    ApiError,
    ApiUnavailable,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ServerError,
    Unauthorized,
    ValidationFailed,
    raise_for_response,
)
from mlbench_core.api.writer import MetricsWriter, WriterStats

__all__ = [
    "ApiClient",
    "ApiError",
    "ApiUnavailable",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "MetricsWriter",
    "NotFound",
    "ServerError",
    "Unauthorized",
    "ValidationFailed",
    "WriterStats",
    "raise_for_response",
]
