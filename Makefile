# `make test` bootstraps .venv itself: a fresh clone needs nothing but python3 (3.11+).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kartu-installed

.PHONY: test lint format unit sandbox up demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

test: $(STAMP) lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

sandbox: $(STAMP)
	$(BIN)/python -m sandbox

# The whole local stack: Temporal dev server + UI, sandbox, gateway, worker. Ctrl-C stops it all.
up: $(STAMP)
	$(BIN)/kartu up

demo: $(STAMP)
	$(BIN)/kartu demo

bench: $(STAMP)
	$(BIN)/python -m bench.payments

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
