# mlbench: `make test` and `make demo` install what is missing, then run.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install browser nginx original-client test lint format demo bench-ingest bench-dashboard images clean

# Re-install only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

# The original mlbench-core 3.0.0 (PyPI) for the compatibility tests, in an environment of its
# own so that it cannot shadow ours: its client (api.py), CLI (cli/) and worker-side metrics
# (utils/log_metrics.py, utils/tracker.py) and goals (evaluation/goals.py) unchanged from the
# wheel, in $(ORIG)/original. Its other modules need torch 1.7 and are left out; its pinned
# dependencies do not install on Python 3.11, so the CLI's get their current releases, except
# kubernetes, kept at the wheel's pin (its in-cluster discovery relies on 11.x's default
# Configuration).
ORIG ?= .venv-original
ORIG_STAMP := $(ORIG)/.installed-stamp
ORIG_DEPS := kubernetes==11.0.0 'urllib3<2' requests click tabulate appdirs pyyaml boto3 \
  matplotlib GitPython docker google-auth google-api-core google-cloud-container \
  google-api-python-client supermutes
$(ORIG_STAMP): Makefile harness/original_client.py
	rm -rf $(ORIG) && $(PYTHON) -m venv $(ORIG)
	$(ORIG)/bin/python -m pip install --quiet $(ORIG_DEPS)
	$(ORIG)/bin/python -m pip download --quiet --no-deps mlbench-core==3.0.0 -d $(ORIG)/wheel
	$(ORIG)/bin/python -m harness.original_client $(ORIG)/wheel/mlbench_core-3.0.0-py3-none-any.whl $(ORIG)/original
	@touch $@

original-client: $(ORIG_STAMP)

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

# nginx for the tests of the chart's original-API sidecar (its rendered nginx.conf is run),
# installed from Debian when missing (without starting a service); under CI=true a missing
# nginx fails the run.
nginx:
	@if command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; then \
	  :; \
	elif command -v apt-get >/dev/null && { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq \
	  --no-install-recommends nginx; }; then \
	  echo "installed nginx"; \
	elif [ "$$CI" = true ]; then \
	  echo "error: nginx is missing and could not be installed"; exit 1; \
	else \
	  echo "warning: no nginx: the chart's sidecar tests will be skipped"; \
	fi

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

test: install browser nginx original-client
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
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
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
	$(DOCKER) build --build-arg MLBENCH_COMMIT=$(COMMIT) -f worker_images/base/Dockerfile -t $(REGISTRY)/mlbench-worker:$(VERSION) .
	$(foreach family,$(FAMILIES),$(call build-family,$(family)))
ifeq ($(PUSH),1)
	$(foreach image,$(IMAGES),$(call push-image,$(image)))
endif

clean:
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache *.egg-info
