# Everyday commands. Each target sets up what it needs on a fresh machine.
SHELL := bash
.DEFAULT_GOAL := help

# The Lambda runtime is python3.12: use it here too (pyenv machines pick it by version).
PYENV_312 := $(shell command -v pyenv >/dev/null 2>&1 && pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.|$$)' | tail -n 1)
ifneq ($(PYENV_312),)
export PYENV_VERSION := $(PYENV_312)
endif
PYTHON ?= python3.12

VENV := .venv
SAM_VENV := .venv-sam
BIN := $(VENV)/bin
SAM := $(SAM_VENV)/bin/sam
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
SCENARIO ?= scenarios/default.json

.PHONY: help setup test lint format demo events bench docs validate build deploy clean test-airflow bench-metadata bench-downtime airflow-config-changes

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' \
		'{ name[NR] = $$1; text[NR] = $$2; if (length($$1) > width) width = length($$1) } \
		END { for (i = 1; i <= NR; i++) printf "  make %-" width "s  %s\n", name[i], text[i] }'

# pip -qq: errors only. With one -q pip still prints its warnings (a pip configuration's index that
# has no page for a package warns once per package, ~130 lines) and the build backend's (setuptools
# warns that an editable install's folders may shadow the package, and that `project.license` as a
# table is deprecated).
PIP_QUIET := --quiet --quiet --disable-pip-version-check
$(BIN)/.installed: pyproject.toml
	@echo "Setting up $(VENV) (a minute on a fresh clone)..."
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install $(PIP_QUIET) --upgrade pip
	@$(BIN)/pip install $(PIP_QUIET) -e '.[dev]'
	@touch $@

# aws-sam-cli pins boto3 exactly, so it lives in a virtualenv of its own.
$(SAM).installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli
	touch $@

# checkov pins its own dependencies: a virtualenv of its own too.
$(CHECKOV).installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet checkov
	touch $@

setup: $(BIN)/.installed $(SAM).installed $(CHECKOV).installed ## create the virtualenvs

demo: $(BIN)/.installed ## run a whole migration on the local emulation (SCENARIO=name or file: another case)
	@$(BIN)/python -m emulation.demo $(SCENARIO)

events: $(BIN)/.installed ## re-record events/<function>.json from local runs
	$(BIN)/python -m emulation.record_events

bench: $(BIN)/.installed ## the log copy benchmark: read quota-seconds of today's plan, the planner and the lower bound; throughput against a bare loop
	$(BIN)/python -m benchmarks.log_copy

docs: $(BIN)/.installed ## regenerate the state machine's ASL, redraw its README diagram, rewrite the input's JSON Schema and the deployer's IAM
	$(BIN)/python -m statemachine.definition --write
	$(BIN)/python -m scripts.state_machine_diagram --write
	$(BIN)/python -m scripts.request_schema --write
	$(BIN)/python -m scripts.deployer_policy --write

# Two workers per core: the tiers' tests wait on subprocesses (the CLI's), on timeouts the fault tier
# provokes and on the emulation's polling, and the extra workers use the cores they leave idle (on two
# quiet cores: 4:07 with -n 4, 4:24 with -n 3, where the suite spent 5:51 with -n 3 before the waits
# it did not test were taken out).
# Bytecode caches written even where the environment sets PYTHONDONTWRITEBYTECODE (this machine's
# does): without them each worker compiles the project and rewrites every test module's asserts anew,
# and so does each of the CLI tier's `mwaa-migrate` subprocesses (__pycache__ is git-ignored, and SAM's
# build leaves it out).
test: $(BIN)/.installed ## run the test suite (pytest-xdist: two workers per core)
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest -n $$(( $$(getconf _NPROCESSORS_ONLN) * 2 ))

# Real Apache Airflow, one virtualenv per version under .airflow/ (kept between runs), and a
# PostgreSQL server (Debian's, installed if missing) that the tier starts as the postgres user.
AIRFLOW_TIER_VERSIONS ?= 2.7.2 2.8.1 2.9.2 2.10.1 2.10.3 2.11.0 3.0.6
test-airflow: $(BIN)/.installed ## the real tier: migrations between real Airflow versions on PostgreSQL
	scripts/airflow_venvs.sh $(AIRFLOW_TIER_VERSIONS)
	scripts/postgres_server.sh start
	status=0; $(BIN)/pytest -m airflow tests/airflow || status=$$?; \
	scripts/postgres_server.sh stop; exit $$status

airflow-config-changes: $(BIN)/.installed ## rewrite the plan's tables of renamed/removed Airflow options from Airflow 2.11 itself
	scripts/airflow_venvs.sh 2.11.0
	AIRFLOW_HOME=$$(mktemp -d) .airflow/venvs/2.11.0/bin/python scripts/airflow_config_changes.py > layers/mwaa_migrate/mwaa_migrate/environment/airflow_config_changes.json

bench-metadata: $(BIN)/.installed ## the metadata benchmark: export/import of 1M task instances against COPY
	$(BIN)/python -m benchmarks.metadata_benchmark

bench-downtime: $(BIN)/.installed ## the downtime benchmark: a cutover's pause-to-unpause at 100k and 1M task instances against today's single phase
	$(BIN)/python -m benchmarks.downtime

lint: $(BIN)/.installed $(SAM).installed $(CHECKOV).installed ## ruff, mypy, sam validate --lint, cfn-lint, parliament (IAM), checkov
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(SAM) validate --lint --region us-east-1
	$(BIN)/cfn-lint template.yaml
	$(BIN)/python scripts/lint_policies.py
	$(CHECKOV) -f template.yaml --config-file .checkov.yaml --compact --quiet

format: $(BIN)/.installed ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

validate: $(SAM).installed ## sam validate --lint
	$(SAM) validate --lint --region us-east-1

build: $(SAM).installed ## sam build (no Docker needed)
	$(SAM) build

deploy: build ## sam deploy --guided with samconfig.toml
	$(SAM) deploy --guided

clean: ## remove virtualenvs and build output
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
