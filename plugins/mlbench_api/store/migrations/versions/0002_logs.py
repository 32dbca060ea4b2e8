"""run logs: workers' stdout and stderr lines

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "logs",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "run_id",
            sa.Integer(),
            sa.ForeignKey("runs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("stream", sa.String(6), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("date", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_logs_run_rank", "logs", ["run_id", "rank", "id"])


def downgrade() -> None:
    op.drop_table("logs")
