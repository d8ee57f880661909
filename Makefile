# Everything a fresh machine needs: Python 3.11+ and pip reaching PyPI. No AWS account, no Docker.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PORT ?= 8000
CUSTOMERS ?= 2000

.PHONY: help install run test lint typecheck template-check unit integration e2e bench openapi clean

help:
	@echo "make run    start the whole suite locally (moto on 127.0.0.1) with demo data"
	@echo "make test   lint, type check, template check and the whole test suite"
	@echo "make bench  cold starts and AWS request counts -> docs/benchmarks.md"

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  (echo "Python 3.11 or newer is needed (set PYTHON=...)" && exit 1)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# chalice's CLI pins pip below 26.3; the venv's own pip is new enough for editable installs.
	$(BIN)/python -m pip install --quiet 'pip>=23.2,<26.3'
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

template-check: $(STAMP)
	$(BIN)/cfn-lint template.yaml

test: lint typecheck template-check
	$(BIN)/pytest

run: $(STAMP)
	$(BIN)/crm-local up --port $(PORT) --seed $(CUSTOMERS) $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.run

openapi: $(STAMP)
	$(BIN)/python -m crm_local.openapi_doc --write docs/openapi.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .crm-local
