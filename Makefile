# The two commands: `make run` and `make test`. Both bootstrap .venv from nothing.
# `make bench` runs the benchmarks (bench/README.md; never part of `make test`):
# `make bench ARGS="latency --rounds 40"` picks one and sets its options.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/caseloop dev

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -m "not browser"

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)

# The portal's pages photographed by the browser tests into docs/screenshots (needs chromium).
screenshots: $(STAMP)
	SCREENSHOT_DIR=docs/screenshots $(BIN)/pytest -m browser -q tests/browser/test_work.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
