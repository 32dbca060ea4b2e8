"""Engine, sessions and start-up migrations of the mlbench store."""

from __future__ import annotations

import fcntl
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from mlbench_core.settings import get_settings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "mlbench_alembic_version"
# Any fixed 64-bit number: serialises concurrent migrations of api-server workers on PostgreSQL.
PG_MIGRATION_LOCK = 0x6D6C62656E6368


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL, a busy timeout and foreign keys."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


class Store:
    """The database behind the API: one engine, sessions, and its schema version."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        if migrate:
            self.migrate()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on any error."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to ``revision``; safe when several processes start at once."""
        with self._migration_lock(), self.engine.connect() as connection:
            sqlite = self.dialect == "sqlite"
            if sqlite:
                # A table rebuilt by a migration is dropped and re-created: with foreign
                # keys on, the drop would delete the rows referring to it (SQLite's
                # documented procedure for schema changes turns them off around them).
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()
            try:
                with connection.begin():
                    config = Config()
                    config.set_main_option("script_location", str(MIGRATIONS))
                    config.attributes["connection"] = connection
                    command.upgrade(config, revision)
                    if sqlite and (
                        bad := connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    ):
                        raise RuntimeError(f"migration broke foreign keys: {bad[:5]}")
            finally:
                if sqlite:
                    connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                    connection.commit()

    def schema_version(self) -> str | None:
        with self.engine.connect() as connection:
            try:
                return connection.execute(
                    text(f"SELECT version_num FROM {VERSION_TABLE}")
                ).scalar_one_or_none()
            except Exception:  # noqa: BLE001 - no version table yet
                return None

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        if self.dialect == "postgresql":
            with self.engine.connect() as connection:
                connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PG_MIGRATION_LOCK})
                try:
                    yield
                finally:
                    connection.execute(
                        text("SELECT pg_advisory_unlock(:k)"), {"k": PG_MIGRATION_LOCK}
                    )
                    connection.commit()
            return
        database = make_url(self.url).database
        if self.dialect != "sqlite" or not database or database == ":memory:":
            yield
            return
        with open(f"{database}.migrate.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def dispose(self) -> None:
        self.engine.dispose()


_store: Store | None = None
_store_lock = threading.Lock()


def get_store() -> Store:
    """The process's store, created (and migrated) on first use from the settings."""
    global _store
    if _store is None:
        with _store_lock:
            if _store is None:
                url = get_settings().store_url
                log.info("mlbench store: %s", make_url(url).render_as_string(hide_password=True))
                _store = Store(url)
    return _store


def reset_store() -> None:
    """Forget the process's store (tests switch databases with this)."""
    global _store
    with _store_lock:
        if _store is not None:
            _store.dispose()
        _store = None
