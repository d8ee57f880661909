# Everything a fresh machine needs: Python 3.11+ and pip reaching PyPI. No AWS account, no Docker.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# What is installed is stamped with pyproject.toml's checksum: a change to it installs again.
# `make run` installs only what running needs (the `local` extra); the tools come with `dev`.
SUM := $(shell cksum < pyproject.toml | cut -d' ' -f1)
LOCAL_STAMP := $(VENV)/.installed-local-$(SUM)
DEV_STAMP := $(VENV)/.installed-dev-$(SUM)
# checkov has a venv of its own: its pins (boto3, networkx, ...) are not the suite's.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV ?= .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
PORT ?= 8000
# The dashboard page's chart library (dashboard/package.json) comes from npm; npm ci stamps
# node_modules/.package-lock.json, so a changed lock installs again and an unchanged one never.
NPM ?= npm
DASHBOARD_STAMP := dashboard/node_modules/.package-lock.json
# The browser test drives Debian's Chromium through its own chromedriver (tests/e2e/test_dashboard.py).
CHROMIUM := /usr/bin/chromium
CHROMEDRIVER := /usr/bin/chromedriver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CUSTOMERS ?= 2000

.PHONY: help install browser dashboard-dist run test lint typecheck template-check unit integration e2e bench openapi botocore-models clean

help:
	@echo "make run    start the whole suite locally (moto on 127.0.0.1) with demo data"
	@echo "make test   lint, type check, template check and the whole test suite"
	@echo "make bench  cold starts and AWS request counts -> docs/benchmarks.md"

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  (echo "Python 3.11 or newer is needed (set PYTHON=...)" && exit 1)
	$(PYTHON) -m venv $(VENV)
	# chalice's CLI pins pip below 26.3; the venv's own pip is new enough for editable installs.
	$(BIN)/python -m pip install --quiet 'pip>=23.2,<26.3'

$(LOCAL_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[local]'
	rm -f $(VENV)/.installed-local-* && touch $@

# dev includes local, so it stamps both: `make run` after `make test` installs nothing.
$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(LOCAL_STAMP) $@

$(CHECKOV_STAMP):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	rm -f $(CHECKOV_VENV)/.installed-* && touch $@

$(DASHBOARD_STAMP): dashboard/package.json dashboard/package-lock.json
	@command -v $(NPM) >/dev/null || (echo "npm is needed for the dashboard's chart library (apt-get install npm)" && exit 1)
	cd dashboard && $(NPM) ci --no-audit --no-fund --loglevel=error
	touch $@

# Installed only when missing (apt-get needs root: sudo is used when not root).
browser:
	@if [ ! -x $(CHROMIUM) ] || [ ! -x $(CHROMEDRIVER) ]; then \
	  echo "installing Debian's chromium and chromium-driver for the dashboard's browser test"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver; \
	fi

# The page as static files for a host (S3 behind CloudFront, ...): dashboard/dist/ with the
# config.json of a deployed stack (docs/dashboard.md). Needs the aws CLI and its credentials.
dashboard-dist: $(DASHBOARD_STAMP) $(LOCAL_STAMP)
	@test -n "$(STACK)" || (echo "usage: make dashboard-dist STACK=<stack name> [CURRENCY=EUR]" && exit 1)
	cd dashboard && $(NPM) run build
	aws cloudformation describe-stacks --stack-name $(STACK) --query 'Stacks[0].Outputs' --output json \
	  | $(BIN)/python -m crm_local.dashboard --currency $(or $(CURRENCY),CNY) > dashboard/dist/config.json

install: $(DEV_STAMP) $(CHECKOV_STAMP) $(DASHBOARD_STAMP) browser

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

# Every checkov finding is fixed or skipped in the template with its reason (Metadata.checkov).
template-check: $(DEV_STAMP) $(CHECKOV_STAMP)
	$(BIN)/cfn-lint template.yaml
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --quiet --compact --skip-download

test: lint typecheck template-check $(DASHBOARD_STAMP) browser
	$(BIN)/pytest

run: $(LOCAL_STAMP) $(DASHBOARD_STAMP)
	$(BIN)/crm-local up --port $(PORT) --seed $(CUSTOMERS) $(ARGS)

# BEFORE=<git ref> also measures that revision's cold starts in the same rounds.
bench: $(DEV_STAMP)
	$(BIN)/python -m bench.run $(if $(BEFORE),--before $(BEFORE))

openapi: $(DEV_STAMP)
	$(BIN)/python -m crm_local.openapi_doc --write docs/openapi.json

# The layer's botocore data, cut to the operations the code calls (after a botocore upgrade or
# a call of a new operation; tests/unit/platform/test_botocore_models.py says when).
botocore-models: $(DEV_STAMP)
	$(BIN)/python -m crm_local.botocore_models --write

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) dashboard/node_modules dashboard/dist .pytest_cache .mypy_cache .ruff_cache .crm-local
