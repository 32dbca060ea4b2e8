"""metrics: the covering series indexes also hold ``cumulative``

Every point the API returns carries ``cumulative`` (as the original mlbench server's did), so
the series reads select it; with the column in the index they stay index-only scans
(SQLite: a covering index; PostgreSQL: an index-only scan). The indexes are rebuilt under
their names, with the same partial conditions.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

OWNERS = ("run_id", "pod_name")


def _rebuild(columns: list[str]) -> None:
    for owner in OWNERS:
        name = f"ix_metrics_{owner.split('_')[0]}_series"
        where = sa.text(f"{owner} IS NOT NULL")
        op.drop_index(name, table_name="metrics")
        op.create_index(
            name,
            "metrics",
            [owner, *columns],
            postgresql_where=where,
            sqlite_where=where,
        )


def upgrade() -> None:
    _rebuild(["name", "date", "value", "cumulative"])


def downgrade() -> None:
    _rebuild(["name", "date", "value"])
