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


def test_the_step_delay_applies_to_the_benchmarks_named_or_to_all(monkeypatch):
    monkeypatch.setenv("MLBENCH_STEP_DELAY", "0.02")
    assert Settings().step_delay_of("0a") == 0.02  # none named: every benchmark
    monkeypatch.setenv("MLBENCH_STEP_DELAY_BENCHMARKS", "digits, 1a")
    settings = Settings()
    assert (settings.step_delay_of("digits"), settings.step_delay_of("1a")) == (0.02, 0.02)
    assert settings.step_delay_of("0a") == 0.0
    monkeypatch.setenv("MLBENCH_STEP_DELAY_BENCHMARKS", "digits;rm -rf")
    with pytest.raises(ValidationError, match="step_delay_benchmarks"):
        Settings()
