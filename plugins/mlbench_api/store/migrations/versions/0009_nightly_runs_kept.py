"""nightly_reports: one report per nightly DAG run, every nightly of a day kept

Until now the date was the key and a second nightly of a day replaced the first. The table
is rebuilt with an integer key (the existing reports keep their rows) and an index on
(date, id): a date's reports are read newest first.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = "date, dag_run_id, verdict, report, created_at"


def upgrade() -> None:
    op.create_table(
        "nightly_reports_new",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("date", sa.String(10), nullable=False),
        sa.Column("dag_run_id", sa.String(250), nullable=True),
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.execute(
        f"INSERT INTO nightly_reports_new ({COLUMNS}) "
        f"SELECT {COLUMNS} FROM nightly_reports ORDER BY created_at"
    )
    op.drop_table("nightly_reports")
    op.rename_table("nightly_reports_new", "nightly_reports")
    op.create_index("ix_nightly_reports_date", "nightly_reports", ["date", "id"])


def downgrade() -> None:
    op.create_table(
        "nightly_reports_old",
        sa.Column("date", sa.String(10), primary_key=True),
        sa.Column("dag_run_id", sa.String(250), nullable=True),
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    # The newest report of each date survives (the old key allows one per date).
    op.execute(
        f"INSERT INTO nightly_reports_old ({COLUMNS}) SELECT {COLUMNS} FROM nightly_reports "
        "WHERE id IN (SELECT MAX(id) FROM nightly_reports GROUP BY date)"
    )
    op.drop_index("ix_nightly_reports_date", table_name="nightly_reports")
    op.drop_table("nightly_reports")
    op.rename_table("nightly_reports_old", "nightly_reports")
