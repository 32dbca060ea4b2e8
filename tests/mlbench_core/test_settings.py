"""Settings come from MLBENCH_* variables only."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mlbench_core.settings import AuthMode, Settings


def test_defaults_put_the_sqlite_store_under_home(monkeypatch, tmp_path):
    monkeypatch.setenv("MLBENCH_HOME", str(tmp_path))
    monkeypatch.delenv("MLBENCH_DATABASE_URL", raising=False)
    settings = Settings()
    assert settings.store_url == f"sqlite:///{tmp_path / 'mlbench.db'}"
    assert settings.auth is AuthMode.AIRFLOW


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("MLBENCH_DATABASE_URL", "postgresql+psycopg2://u@h/db")
    monkeypatch.setenv("MLBENCH_AUTH", "none")
    monkeypatch.setenv("MLBENCH_MAX_WORKERS", "4")
    settings = Settings()
    assert settings.store_url == "postgresql+psycopg2://u@h/db"
    assert (settings.auth, settings.max_workers) == (AuthMode.NONE, 4)


@pytest.mark.parametrize(
    ("name", "value"), [("MLBENCH_AUTH", "maybe"), ("MLBENCH_MAX_WORKERS", "0")]
)
def test_bad_values_are_refused(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.removeprefix("MLBENCH_").lower()):
        Settings()
