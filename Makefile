# The README's two commands are `make run` and `make test`; everything else is a target here.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
PY_SOURCES := src tests bench

.PHONY: run test check lint typecheck imports pytest bench fmt

run: $(UV)  ## start the gateway in sandbox mode on SQLite (http://127.0.0.1:8080)
	$(UV) sync --frozen --quiet
	$(UV) run omnirelay serve

test: $(UV)  ## the whole test suite with every check, as CI runs it
	$(UV) sync --frozen --quiet
	$(MAKE) --no-print-directory check pytest

check: lint typecheck imports

lint:
	$(UV) run ruff format --check $(PY_SOURCES)
	$(UV) run ruff check $(PY_SOURCES)

typecheck:
	$(UV) run mypy

imports:
	$(UV) run lint-imports

pytest:
	$(UV) run pytest

fmt:
	$(UV) run ruff format $(PY_SOURCES)
	$(UV) run ruff check --fix $(PY_SOURCES)

bench: $(UV)  ## benchmarks; prints a table (see bench/README.md)
	$(UV) sync --frozen --quiet
	$(UV) run python -m bench

# No uv on this machine: bootstrap it into .tools with the Python that is here (3.11+).
$(CURDIR)/.tools/bin/uv:
	python3 -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet uv
