"""nightly_reports: one report per nightly

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nightly_reports",
        sa.Column("date", sa.String(10), primary_key=True),
        sa.Column("dag_run_id", sa.String(250), nullable=True),
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("nightly_reports")
