# `make test` bootstraps .venv itself: a fresh clone needs nothing but python3 (3.11+).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kartu-installed

.PHONY: test test-fast lint format unit sandbox up demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

# Test processes (pytest-xdist). The suites that need a stack run in that stack's process
# (their group, tests/conftest.py), the longest groups first, every other module wherever a
# process is free; most stack tests wait on child processes, hence more test processes than
# the two cores. Bytecode is cached (__pycache__, git-ignored) even where the environment says
# PYTHONDONTWRITEBYTECODE: the suite starts about a hundred Python processes (the stacks'
# parts, the kartu console script where a test runs it), each would compile Kartu's modules.
TEST_PROCESSES ?= 4
PYTEST := env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest

test: $(STAMP) lint
	$(PYTEST) -n $(TEST_PROCESSES) --dist loadgroup --no-loadscope-reorder

# The inner loop (< 30 s): unit tests and the time-skipping workflow tests, no stack.
test-fast: $(STAMP)
	$(PYTEST) -n 2 --dist loadgroup tests/unit tests/workflows

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

# With `make up` running: Kartu against its floor at 1 and 10 in flight (BENCH_ARGS, e.g.
# "-n 200"), its JSON in bench/results/, then the README's figures rewritten from that JSON.
BENCH_ARGS ?=
bench: $(STAMP)
	out=bench/results/payments-$$(date -u +%Y%m%dT%H%M%S).json && \
	$(BIN)/python -m bench.payments $(BENCH_ARGS) --output $$out && \
	$(BIN)/python -m bench.figures $$out

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
