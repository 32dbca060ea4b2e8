"""runs, pods and metrics

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(63), nullable=False, unique=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.String(250)),
        sa.Column("job_metadata", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON()),
        sa.Column("token_hash", sa.String(64)),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.BigInteger()),
        sa.Column("finished_at", sa.BigInteger()),
    )
    op.create_index("ix_runs_token_hash", "runs", ["token_hash"])
    op.create_table(
        "pods",
        sa.Column("name", sa.String(253), primary_key=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="CASCADE")),
        sa.Column("rank", sa.Integer()),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("ip", sa.String(64)),
        sa.Column("node", sa.String(253)),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_pods_run_id", "pods", ["run_id"])
    op.create_table(
        "metrics",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="CASCADE")),
        sa.Column("pod_name", sa.String(253)),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("date", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(53), nullable=False),
        sa.Column("cumulative", sa.Boolean(), nullable=False),
        sa.Column("metadata", sa.Text()),
        sa.CheckConstraint("(run_id IS NULL) <> (pod_name IS NULL)", name="ck_metrics_run_xor_pod"),
    )
    # Partial covering indexes: each row is in one of them only.
    for owner in ("run_id", "pod_name"):
        where = sa.text(f"{owner} IS NOT NULL")
        op.create_index(
            f"ix_metrics_{owner.split('_')[0]}_series",
            "metrics",
            [owner, "name", "date", "value"],
            postgresql_where=where,
            sqlite_where=where,
        )


def downgrade() -> None:
    op.drop_table("metrics")
    op.drop_table("pods")
    op.drop_table("runs")
