"""write_keys: idempotency keys of stored writes (exactly-once ingest)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "write_keys",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("route", sa.String(32), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_write_keys_created_at", "write_keys", ["created_at"])


def downgrade() -> None:
    op.drop_table("write_keys")
