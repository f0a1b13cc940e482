# The two commands a new machine needs: `make demo` and `make test`.
# Both create .venv and install meetgate into it when it is missing or pyproject.toml changed.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.meetgate-installed
PYTHON ?= python3
# newman runs the exported Postman collection (tests, demo); installed from the npm registry when npm exists
NEWMAN := tools/newman/node_modules/.bin/newman
TOOLS  := $(if $(shell command -v npm),$(NEWMAN))

.PHONY: demo test lint types pytest bench clients-check clean help

help:
	@echo "make demo   run the whole runbook against the built-in sandbox tenant"
	@echo "make test   lint (ruff), types (mypy strict) and tests (pytest)"
	@echo "make bench  run the benchmarks in benchmarks/"
	@echo "make clients-check  msgraph-sdk + azure-identity (own venv, .venv-clients) against the sandbox"

# both distributions: meetgate (the product) and meetgate-sandbox (the local tenant, pwsh stand-in,
# pytest plugin and demo), editable
$(STAMP): pyproject.toml sandbox/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[all,dev]' -e ./sandbox
	@touch $(STAMP)

$(NEWMAN): tools/newman/package.json tools/newman/package-lock.json
	npm ci --prefix tools/newman --no-audit --no-fund --loglevel=error
	@touch $(NEWMAN)

demo: $(STAMP) $(TOOLS)
	$(VENV)/bin/meetgate demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP) $(TOOLS)
	$(VENV)/bin/pytest

test: lint types pytest

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Microsoft's Graph SDK and azure-identity, unmodified, against a sandbox: check.py builds
# $(CLIENTS_VENV) from sandbox/clients_check/requirements.txt when missing or changed (PyPI needed then)
CLIENTS_VENV ?= .venv-clients
clients-check: $(STAMP)
	$(PY) sandbox/clients_check/check.py --venv $(CLIENTS_VENV)

clean:
	rm -rf $(VENV) tools/newman/node_modules .meetgate .pytest_cache .mypy_cache .ruff_cache
