# Two commands: `make run` serves madoguchi, `make test` runs the checks and the tests.
# Each creates or reuses .venv itself; `make test` also installs the browser the browser tests drive.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := core intents handlers bot

# A real Rasa for the Rasa tests (tests/rasa): Rasa 3.6 needs Python < 3.11, so it gets a virtual environment of
# its own, outside the project's (pyenv's 3.10 where there is one), and the model it serves is trained once.
RASA_VENV ?= $(HOME)/.cache/madoguchi/rasa-3.6.21
RASA_PYTHON ?= python3.10
export PYENV_VERSION ?= 3.10.13

.PHONY: run test lint bench clean rasa fuzz

# pip shows what it collects and installs as it goes: the first install takes a minute or two.
$(STAMP): pyproject.toml
	@echo "== Installing madoguchi and its dependencies into $(VENV)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/madoguchi serve

# axe-core (npm), which the browser tests inject into the pages to check their accessibility, and a real OpenID
# provider (oidc-provider, npm) that the single sign-on tests start.
AXE := tests/browser/node_modules/axe-core/axe.min.js
OIDC := tests/oidc/node_modules/oidc-provider/package.json

# Debian's Chromium, which the browser tests drive (Playwright never downloads a browser), and the Japanese font of
# its pages and screenshots: installed from Debian's packages when missing and this is root with apt-get; anywhere
# else make stops with one line saying what to install.
CHROMIUM := /usr/bin/chromium
JA_FONT := /usr/share/fonts/opentype/ipafont-gothic/ipag.ttf
BROWSER_PACKAGES := chromium fonts-ipafont-gothic
CAN_APT := $(and $(filter 0,$(shell id -u)),$(shell command -v apt-get))
BROWSERS_MISSING := The browser tests need Debian's packages $(BROWSER_PACKAGES), which only root can install: run \
    `sudo apt-get install $(BROWSER_PACKAGES)`, then `make test` again

# Two workers (the machines have two cores), each test file on one of them: a file's module-scoped servers
# start once, and each worker has its own database (an SQLite file, or a PostgreSQL schema). Files are handed out
# in the order tests/conftest.py gives them (the longest first), so that the two workers end together.
# Python's bytecode and pytest's rewritten tests are kept in __pycache__ even where PYTHONDONTWRITEBYTECODE is set:
# without them each worker spends about 12 s of every run rewriting the tests' asserts.
test: export PYTHONDONTWRITEBYTECODE =
test: $(CHROMIUM) $(JA_FONT) $(STAMP) $(AXE) $(OIDC) lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

# The long fuzz run: 20,000 random inputs per edge (chat bodies, LINE and Slack webhooks) instead of 1,000.
fuzz: $(STAMP)
	MADOGUCHI_FUZZ_EXAMPLES=20000 $(BIN)/python -m pytest -q -n 2 --dist loadfile tests/fuzz

$(AXE): tests/browser/package.json tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
	touch $(AXE)

$(OIDC): tests/oidc/package.json tests/oidc/package-lock.json
	npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error
	touch $(OIDC)

$(CHROMIUM) $(JA_FONT) &:
	$(if $(CAN_APT),,$(error $(BROWSERS_MISSING)))
	@echo "== Installing Debian's packages $(BROWSER_PACKAGES) for the browser tests"
	-apt-get update -qq  # a stale package list can still install
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null

# ruff, the import contracts (pyproject's [tool.importlinter]), mypy (pyproject's [tool.mypy]), and no function
# above complexity C: `radon cc -n D` lists those, so any line it prints fails the check.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	@echo "$(BIN)/radon cc -n D -s $(PACKAGES)"
	@offenders="$$($(BIN)/radon cc -n D -s $(PACKAGES))" && test -z "$$offenders" || \
	    { echo "Functions above complexity C (split them):"; echo "$$offenders"; exit 1; }

rasa: $(STAMP) $(RASA_VENV)/bin/rasa
	MADOGUCHI_RASA_VENV=$(RASA_VENV) $(BIN)/python -m tests.rasa.live

$(RASA_VENV)/bin/rasa:
	@echo "== Installing Rasa 3.6.21 into $(RASA_VENV) (a few minutes the first time)"
	$(RASA_PYTHON) -m venv $(RASA_VENV)
	$(RASA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check 'pip<24.1'
	$(RASA_VENV)/bin/python -m pip install --disable-pip-version-check 'rasa==3.6.21'

bench: $(STAMP)
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache tests/browser/node_modules tests/oidc/node_modules
