# The README's two commands are `make run` and `make test`; everything else is a target here.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
PY_SOURCES := src tests bench

.PHONY: run test check lint typecheck imports pytest bench fmt venv wheel console-screenshots
# Bytecode compiled once at install: otherwise a process that may not write it (a read-only tree,
# PYTHONDONTWRITEBYTECODE) compiles every module at each start (~3 s for `omnirelay routes list`).
SYNC := sync --frozen --quiet --compile-bytecode

run: venv  ## start the gateway in sandbox mode on SQLite (http://127.0.0.1:8080)
	.venv/bin/omnirelay serve

venv: $(UV)  ## the locked environment in .venv, with the CLI as .venv/bin/omnirelay
	$(UV) $(SYNC)

wheel: $(UV)  ## dist/omnirelay-<version>-py3-none-any.whl, with the `omnirelay` console script
	$(UV) build --wheel --out-dir dist

test: venv  ## the whole test suite with every check, as CI runs it
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

bench: venv  ## benchmarks; prints a table (see bench/README.md)
	$(UV) run python -m bench

console-screenshots: venv  ## docs/console/*.png, taken by the console's browser tests (docs/console.md)
	OMNIRELAY_CONSOLE_SCREENSHOTS=$(CURDIR)/docs/console $(UV) run pytest tests/e2e/test_console.py -q

# No uv on this machine: bootstrap it into .tools with the Python that is here (3.11+).
$(CURDIR)/.tools/bin/uv:
	python3 -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet uv
