"""Alembic environment: migrations run on the connection the Store hands over."""

from alembic import context

from mlbench_api.store.database import VERSION_TABLE
from mlbench_api.store.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
