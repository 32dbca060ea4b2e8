# mlbench: `make test` and `make demo` install what is missing, then run.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install browser test lint format demo bench-ingest bench-dashboard images clean

# Re-install only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

# Headless Chromium for the dashboard's browser tests: Debian's chromium and chromium-driver,
# installed when missing. Without them the browser tests skip, except under CI=true, where a
# browser that cannot be installed fails the run.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
	  :; \
	elif command -v apt-get >/dev/null && { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }; then \
	  echo "installed chromium and chromium-driver"; \
	elif [ "$$CI" = true ]; then \
	  echo "error: chromium and chromium-driver are missing and could not be installed"; exit 1; \
	else \
	  echo "warning: no chromium/chromedriver: the dashboard's browser tests will be skipped"; \
	fi

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

test: install browser
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

bench-dashboard: install browser
	$(PY) -m bench.dashboard

# Container images (worker_images/): the chart's Airflow image, the worker base image and one
# thin image per benchmark family, tagged $(REGISTRY)/<name>:$(VERSION) and pushed (PUSH=0:
# build only). Needs docker with BuildKit (each Dockerfile has its own .dockerignore).
REGISTRY ?= mlbench
VERSION ?= $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' mlbench_core/__init__.py)
PUSH ?= 1
DOCKER ?= docker
FAMILIES := vision linear nlp
IMAGES := mlbench-airflow mlbench-worker $(addprefix mlbench-worker-,$(FAMILIES))

define build-family
$(DOCKER) build --build-arg BASE_IMAGE=$(REGISTRY)/mlbench-worker:$(VERSION) -f worker_images/$(1)/Dockerfile -t $(REGISTRY)/mlbench-worker-$(1):$(VERSION) worker_images/$(1)

endef

define push-image
$(DOCKER) push $(REGISTRY)/$(1):$(VERSION)

endef

images: export DOCKER_BUILDKIT := 1
images:
	$(DOCKER) build -f worker_images/airflow/Dockerfile -t $(REGISTRY)/mlbench-airflow:$(VERSION) .
	$(DOCKER) build -f worker_images/base/Dockerfile -t $(REGISTRY)/mlbench-worker:$(VERSION) .
	$(foreach family,$(FAMILIES),$(call build-family,$(family)))
ifeq ($(PUSH),1)
	$(foreach image,$(IMAGES),$(call push-image,$(image)))
endif

clean:
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache *.egg-info
