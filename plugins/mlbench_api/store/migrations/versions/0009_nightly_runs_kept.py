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


def _rebuild(key: list[sa.Column], rows: str) -> None:
    """``nightly_reports`` again with the key columns ``key``, holding the ``rows`` (a SELECT
    of COLUMNS from the old table)."""
    op.create_table(
        "nightly_reports_rebuilt",
        *key,
        sa.Column("dag_run_id", sa.String(250), nullable=True),
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.execute(f"INSERT INTO nightly_reports_rebuilt ({COLUMNS}) {rows}")
    op.drop_table("nightly_reports")
    op.rename_table("nightly_reports_rebuilt", "nightly_reports")


def upgrade() -> None:
    _rebuild(
        [
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("date", sa.String(10), nullable=False),
        ],
        f"SELECT {COLUMNS} FROM nightly_reports ORDER BY created_at",
    )
    op.create_index("ix_nightly_reports_date", "nightly_reports", ["date", "id"])


def downgrade() -> None:
    op.drop_index("ix_nightly_reports_date", table_name="nightly_reports")
    # The newest report of each date survives (the old key allows one per date).
    _rebuild(
        [sa.Column("date", sa.String(10), primary_key=True)],
        f"SELECT {COLUMNS} FROM nightly_reports "
        "WHERE id IN (SELECT MAX(id) FROM nightly_reports GROUP BY date)",
    )
