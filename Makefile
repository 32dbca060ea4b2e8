# mlbench: `make test` and `make demo` install what is missing, then run.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install test lint format demo bench-ingest clean

# Re-install only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

test: install
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

# The embedded stack (Airflow with SQLite, local worker processes, API and dashboard on
# 127.0.0.1) and one real distributed run of the demo benchmark, followed live.
demo: install
	$(VENV)/bin/mlbench up
	$(VENV)/bin/mlbench run demo-$$(date +%Y%m%d-%H%M%S) --benchmark digits --workers 2 --follow
	@$(VENV)/bin/mlbench up

bench-ingest: install
	$(PY) -m bench.ingest

clean:
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache *.egg-info
