# The two commands a new machine needs: `make demo` and `make test`.
# Both create .venv and install meetgate into it when it is missing or pyproject.toml changed.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.meetgate-installed
PYTHON ?= python3

.PHONY: demo test lint types pytest bench clean help

help:
	@echo "make demo   run the whole runbook against the built-in sandbox tenant"
	@echo "make test   lint (ruff), types (mypy strict) and tests (pytest)"
	@echo "make bench  run the benchmarks in benchmarks/"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[all,dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/meetgate demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP)
	$(VENV)/bin/pytest

test: lint types pytest

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .meetgate .pytest_cache .mypy_cache .ruff_cache
