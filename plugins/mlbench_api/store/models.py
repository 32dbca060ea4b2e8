"""Tables of the mlbench store: runs, metrics, pods."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(value: datetime) -> int:
    """Microseconds since the epoch of an aware (or naive = UTC) datetime."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return datetime.fromtimestamp(value // 1_000_000, UTC).replace(microsecond=value % 1_000_000)


class Timestamp(TypeDecorator):
    """An aware UTC datetime stored as integer microseconds since the epoch.

    Integers keep time arithmetic (bucketing series for ``summarize``) the same SQL on
    SQLite and PostgreSQL, and compare and index fast on both.
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: datetime | int | None, dialect: Dialect) -> int | None:
        if value is None or isinstance(value, int):
            return value
        return to_micros(value)

    def process_result_value(self, value: int | None, dialect: Dialect) -> datetime | None:
        return None if value is None else from_micros(value)


def utcnow() -> datetime:
    return datetime.now(UTC)


# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON}


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = {"sqlite_autoincrement": True}  # ids are never reused (0005)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    state: Mapped[str] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    job_id: Mapped[str | None] = mapped_column(String(250))
    job_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[Any | None] = mapped_column(JSON)
    record: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # reproducibility record
    tags: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    note: Mapped[str | None] = mapped_column(Text)
    token_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)


class Pod(Base):
    __tablename__ = "pods"

    name: Mapped[str] = mapped_column(String(253), primary_key=True)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), index=True
    )
    rank: Mapped[int | None] = mapped_column(Integer)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    phase: Mapped[str] = mapped_column(String(16))
    ip: Mapped[str | None] = mapped_column(String(64))
    node: Mapped[str | None] = mapped_column(String(253))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class Metric(Base):
    __tablename__ = "metrics"
    __table_args__ = (
        CheckConstraint("(run_id IS NULL) <> (pod_name IS NULL)", name="ck_metrics_run_xor_pod"),
        # Covering indexes: one series of one run (or pod) since T, read without the table
        # (its points are date, value and cumulative: 0008). Partial: a row is in one of
        # them only, which halves index upkeep on ingest.
        Index(
            "ix_metrics_run_series",
            "run_id",
            "name",
            "date",
            "value",
            "cumulative",
            postgresql_where=text("run_id IS NOT NULL"),
            sqlite_where=text("run_id IS NOT NULL"),
        ),
        Index(
            "ix_metrics_pod_series",
            "pod_name",
            "name",
            "date",
            "value",
            "cumulative",
            postgresql_where=text("pod_name IS NOT NULL"),
            sqlite_where=text("pod_name IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    pod_name: Mapped[str | None] = mapped_column(String(253))
    name: Mapped[str] = mapped_column(String(255))
    date: Mapped[datetime] = mapped_column(Timestamp)
    value: Mapped[float] = mapped_column(Float(53))
    cumulative: Mapped[bool] = mapped_column(Boolean, default=False)
    meta: Mapped[str | None] = mapped_column("metadata", Text)


class LogLine(Base):
    """One line a worker wrote to stdout or stderr, in arrival order (``id``)."""

    __tablename__ = "logs"
    __table_args__ = (Index("ix_logs_run_rank", "run_id", "rank", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    rank: Mapped[int] = mapped_column(Integer)
    stream: Mapped[str] = mapped_column(String(6))
    line: Mapped[str] = mapped_column(Text)
    date: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class NightlyReport(Base):
    """One nightly DAG run's report: every nightly of a day is kept; a retry of the same DAG
    run (same date and dag_run_id) replaces its own report."""

    __tablename__ = "nightly_reports"
    __table_args__ = (Index("ix_nightly_reports_date", "date", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    date: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD
    dag_run_id: Mapped[str | None] = mapped_column(String(250))
    verdict: Mapped[str] = mapped_column(String(32))
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class WriteKey(Base):
    """A write that was stored, by the idempotency key its writer chose: a retry of it
    (the same key) gets the first answer back and stores nothing."""

    __tablename__ = "write_keys"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    route: Mapped[str] = mapped_column(String(32))
    answer: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, index=True)
