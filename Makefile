# mlgate: the two commands (`make run`, `make test`) do all the set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-12)
export MLGATE_HOME ?= $(CURDIR)/.mlgate

.PHONY: install browser run test lint ui clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

## Retrain on the bundled data (passes, becomes champion), then a poisoned retrain (blocked).
run: install
	$(BIN)/python -m mlgate.demo

## Chromium and chromedriver for the UI test (Debian packages; apt-get only when one is missing).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && exit 0; \
	hint="tests/test_ui.py skips without them (fails when CI=true)"; \
	if ! command -v apt-get >/dev/null; then \
		echo "make browser: chromium/chromedriver missing and no apt-get: install them yourself; $$hint" >&2; exit 0; \
	fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=; elif command -v sudo >/dev/null; then sudo=sudo; else \
		echo "make browser: not root and no sudo: run 'apt-get install chromium chromium-driver' as root; $$hint" >&2; \
		exit 0; \
	fi; \
	echo "make browser: installing chromium chromium-driver with apt-get" >&2; \
	$$sudo apt-get update && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver

## Lint, then the whole test suite (real Dagster and MLflow, temporary state).
test: install browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

## The Dagster UI on 127.0.0.1:3000, on the same DAGSTER_HOME as the CLI.
ui: install
	$(BIN)/python -c "from pipelines.settings import load_settings, prepare_environment; prepare_environment(load_settings())"
	DAGSTER_HOME=$(MLGATE_HOME)/dagster $(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

bench: install
	$(BIN)/python bench/bench_checks.py
	$(BIN)/python bench/bench_detection_model.py
	$(BIN)/python bench/bench_registration.py
	$(BIN)/python bench/bench_artifact_scan.py
	$(BIN)/python bench/bench_model_attacks.py --json bench/results_model_attacks.json
	$(BIN)/python bench/bench_poisoning.py --json bench/results_poisoning.json

## Remove mlgate's state (Dagster instance, MLflow database and artifacts, findings, caches).
clean:
	rm -rf "$(MLGATE_HOME)"
