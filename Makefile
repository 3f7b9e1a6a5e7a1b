# psa: every target creates .venv and installs the project itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install demo test fuzz lint docs worker api down status bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## demo: start embedded PostgreSQL + Temporal, migrate, create the management tenant, start a worker,
## provision "Acme Corp" (recorded as a customer of the management tenant)
demo: $(STAMP)
	$(BIN)/psa dev up
	$(BIN)/psa db upgrade
	$(BIN)/psa tenants bootstrap-management
	$(BIN)/psa worker --detach
	$(BIN)/psa tenants create --name "Acme Corp" --company-name "Acme Corporation" \
		--admin-first-name John --admin-last-name Doe --admin-email john.doe@acme.com

## test: the whole suite against real PostgreSQL, Temporal and SMTP (aiosmtpd); hypothesis and schemathesis
## derandomised (hypothesis's "ci" profile), so every run draws the same inputs; the servers the session started are
## stopped when it ends
test: $(STAMP)
	$(BIN)/python -m pytest --hypothesis-profile=ci $(PYTEST_ARGS)

## fuzz: only the property and schema tests (hypothesis, schemathesis), random and deep: 500 cases per test, per API
## operation and per action; each failure prints its reproduction (the curl command, the @reproduce_failure blob)
fuzz: $(STAMP)
	$(BIN)/python -m pytest --hypothesis-profile=fuzz -m hypothesis --timeout=3600 $(PYTEST_ARGS)

## lint: ruff (rules and formatter) and the import-linter layer contract (docs/architecture.md, "Layers")
lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

## docs: regenerate docs/actions.md, the actions catalog, from the action registry (a test fails when it is stale)
docs: $(STAMP)
	$(BIN)/python -m psa.automation.actions_doc > docs/actions.md.tmp
	mv docs/actions.md.tmp docs/actions.md

## worker: run the Temporal worker in the foreground
worker: $(STAMP)
	$(BIN)/psa dev up
	$(BIN)/psa db upgrade
	$(BIN)/psa worker

## api: serve the HTTP API (OpenAPI at http://127.0.0.1:8000/docs) on the embedded stack, in the foreground,
## with the management tenant and a background worker
api: $(STAMP)
	$(BIN)/psa dev up
	$(BIN)/psa db upgrade
	$(BIN)/psa tenants bootstrap-management
	$(BIN)/psa worker --detach
	$(BIN)/psa api

down: $(STAMP)
	$(BIN)/psa dev down

status: $(STAMP)
	$(BIN)/psa dev status

bench: $(STAMP)
	$(BIN)/python bench/provisioning.py
	$(BIN)/python bench/automation.py
	$(BIN)/python bench/contacts.py
	$(BIN)/python bench/crm.py
	$(BIN)/python bench/api.py

clean: down
	rm -rf .psa
