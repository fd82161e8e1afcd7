# The two commands of the quick start: `make run` and `make test`; `make bench` measures speed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run test lint typecheck unit browser bench clean

run: $(VENV)/.installed ## Start the embedded default (SQLite, API + worker) on http://127.0.0.1:3000
	$(BIN)/jobqueue serve

test: $(VENV)/.installed-dev lint typecheck browser ## Lint, type-check and run every test
	$(BIN)/pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

browser: ## Debian's headless chromium for the dashboard's browser tests (installed when missing)
	@sh tests/browser/install_chromium.sh

unit: $(VENV)/.installed-dev ## Only the fast tests without I/O
	$(BIN)/pytest tests/unit

bench: $(VENV)/.installed ## Load every mode (needs node, PostgreSQL, Redis); writes docs/benchmarks.md
	$(BIN)/python bench/run_bench.py

$(BIN)/python:
	@$(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "jobqueue needs Python 3.11 or newer: run 'make PY=python3.12 run'" >&2; exit 1; }
	$(PY) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "Installing jobqueue into $(VENV) ..."
	$(PIP) install -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	@echo "Installing jobqueue and its dev tools into $(VENV) ..."
	$(PIP) install -e '.[dev]'
	@touch $@ $(VENV)/.installed

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
