# Two commands: `make run` serves madoguchi, `make test` runs the checks and the tests.
# Each creates or reuses .venv itself; nothing else needs to be installed first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# A real Rasa for the Rasa tests (tests/rasa): Rasa 3.6 needs Python < 3.11, so it gets a virtual environment of
# its own, outside the project's (pyenv's 3.10 where there is one), and the model it serves is trained once.
RASA_VENV ?= $(HOME)/.cache/madoguchi/rasa-3.6.21
RASA_PYTHON ?= python3.10
export PYENV_VERSION ?= 3.10.13

.PHONY: run test lint bench clean rasa fuzz

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/madoguchi serve

# axe-core (npm), which the browser tests inject into the pages to check their accessibility, and a real OpenID
# provider (oidc-provider, npm) that the single sign-on tests start.
AXE := tests/browser/node_modules/axe-core/axe.min.js
OIDC := tests/oidc/node_modules/oidc-provider/package.json

# Two workers (the machines have two cores), each test file on one of them: a file's module-scoped servers
# start once, and each worker has its own database (an SQLite file, or a PostgreSQL schema).
test: $(STAMP) $(AXE) $(OIDC) lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# The long fuzz run: 20,000 random inputs per edge (chat bodies, LINE and Slack webhooks) instead of 2,000.
fuzz: $(STAMP)
	MADOGUCHI_FUZZ_EXAMPLES=20000 $(BIN)/python -m pytest -q -n 2 --dist loadfile tests/fuzz

$(AXE): tests/browser/package.json tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
	touch $(AXE)

$(OIDC): tests/oidc/package.json tests/oidc/package-lock.json
	npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error
	touch $(OIDC)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

rasa: $(STAMP) $(RASA_VENV)/bin/rasa
	MADOGUCHI_RASA_VENV=$(RASA_VENV) $(BIN)/python -m tests.rasa.live

$(RASA_VENV)/bin/rasa:
	$(RASA_PYTHON) -m venv $(RASA_VENV)
	$(RASA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check 'pip<24.1'
	$(RASA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check 'rasa==3.6.21'

bench: $(STAMP)
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache tests/browser/node_modules tests/oidc/node_modules
