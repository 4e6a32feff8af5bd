# Qala — the two commands: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Extras to install: CI adds the test oracles, API clients and data-build tools
# (EXTRAS=dev,peers,clients,build).
EXTRAS ?= dev
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
PORT ?= 8000
export QALA_DATABASE_URL ?= sqlite:///var/qala.sqlite

.PHONY: setup demo demo-data serve test lint typecheck unit bench conformance ngsi-core-context clean

$(STAMP): pyproject.toml $(wildcard package-lock.json)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[$(EXTRAS)]'
	@if [ -f package.json ]; then $(BIN)/python scripts/build_assets.py; fi
	touch $(STAMP)

setup: $(STAMP) ## create the virtual env and install Qala with its development tools

demo-data: setup ## migrate the SQLite store and load the bundled sample data
	$(BIN)/qala db upgrade
	$(BIN)/qala demo load

demo: demo-data ## set up, load the sample data and open the dashboard on http://127.0.0.1:$(PORT)/
	@echo "Dashboard: http://127.0.0.1:$(PORT)/  (Ctrl-C stops it)"
	-@$(BIN)/python -c "import webbrowser; webbrowser.open('http://127.0.0.1:$(PORT)/')" >/dev/null 2>&1 || true
	$(BIN)/qala serve --port $(PORT)

lint: setup
	$(BIN)/ruff check src tests bench scripts examples
	$(BIN)/ruff format --check src tests bench scripts examples
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

# pytest's exit code 5 means it collected no test (a wrong path, -k or marker): a failure, said so.
unit: setup
	@$(BIN)/pytest -n 2 --dist loadfile $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make unit: FAILED — pytest ran no tests (exit 5)" >&2; fi; \
	exit $$status

test: lint typecheck unit ## ruff, import contracts, mypy and pytest

bench: setup ## run the benchmarks side by side with their peers (needs the `peers` extra)
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# ETSI's and FIWARE's NGSI-LD suites (from ../shared/peers, never copied here) against a local Qala;
# prints pass counts per section and fails when one drops below tests/ngsi_conformance_baseline.json.
conformance: setup ## run the NGSI-LD conformance suites and print pass counts per section
	PYTHONPATH=src $(BIN)/python scripts/ngsi_conformance.py --check tests/ngsi_conformance_baseline.json $(CONFORMANCE_ARGS)

# The ETSI NGSI-LD core context document, fetched once at setup time from its publisher; point
# QALA_NGSI_CORE_CONTEXT_FILE at it (without it Qala uses its built-in map of the core terms).
NGSI_CORE_CONTEXT_URL ?= https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld
ngsi-core-context: ## fetch the NGSI-LD core context into var/ (for QALA_NGSI_CORE_CONTEXT_FILE)
	mkdir -p var && curl -fsSL -o var/ngsi-ld-core-context.jsonld $(NGSI_CORE_CONTEXT_URL)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
