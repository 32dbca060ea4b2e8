"""runs: ids are never reused (SQLite AUTOINCREMENT)

Without AUTOINCREMENT, SQLite gives a new row the largest id + 1, so deleting the newest run
gave its id to the next one: old links and scripts opened a different run. PostgreSQL's
identity sequence never goes back. The table is rebuilt (batch mode) with its rows; the
Store runs migrations with SQLite's foreign keys off, so the rebuild cascades to nothing.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "runs", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "runs", recreate="always", table_kwargs={"sqlite_autoincrement": False}
    ):
        pass
