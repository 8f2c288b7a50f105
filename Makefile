# The README's two commands: `make run` and `make test`. Everything else is a convenience.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
export DO_NOT_TRACK := true
export DBT_SEND_ANONYMOUS_USAGE_STATS := false

.PHONY: setup run test lint format up bench browser clean

setup: $(STAMP)

# torch first, by pip from the CPU wheel on this disk: any other resolution pulls a multi-GB CUDA build.
# The rest by uv (the version BentoML pins, in constraints.txt) into the same venv, on the same pins: pip took
# ~100 s for it here, uv ~30 s. uv leaves torch alone: the pin is already met. Bytecode is compiled now, as
# pip does: where PYTHONDONTWRITEBYTECODE is set (it is on this machine), every process would otherwise compile
# what it imports from source, every time (the suite ran 1.5x slower). `make run` needs only the runtime; the
# test tools (the dev extra) come with the first `make test` or `make lint`.
UV := VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/uv pip install -q --compile-bytecode -c constraints.txt
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0 uv -c constraints.txt
	$(UV) -e .
	cd dbt && ../$(BIN)/dbt parse --profiles-dir . --quiet
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(UV) -e '.[dev]'
	touch $(DEV_STAMP)

run: setup
	$(BIN)/aimass run

# Headless Chromium is how the UI test sees the Dagster UI.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null \
			|| echo "could not install chromium: the UI test will fail until it is (apt-get install chromium chromium-driver)"; \
		else echo "chromium missing and not root: the UI test will fail until it is installed (apt-get install chromium chromium-driver)"; fi; \
	fi

# The import contracts in pyproject.toml are the walls between the packages (README, "Where things are").
lint: $(DEV_STAMP)
	$(BIN)/ruff check aimass_pipeline aimass_pipeline_tests bench
	$(BIN)/ruff format --check aimass_pipeline aimass_pipeline_tests bench
	$(BIN)/lint-imports

format: $(DEV_STAMP)
	$(BIN)/ruff check --fix aimass_pipeline aimass_pipeline_tests bench
	$(BIN)/ruff format aimass_pipeline aimass_pipeline_tests bench

# Two workers (pytest-xdist, one file per worker at a time; conftest.py says how files are grouped).
TEST_WORKERS ?= 2
test: $(DEV_STAMP) browser lint
	$(BIN)/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

up: setup
	$(BIN)/aimass up

bench: setup
	$(BIN)/python -m bench.lifecycle_overhead
	$(BIN)/python -m bench.model_families
	$(BIN)/python -m bench.compression
	$(BIN)/python -m bench.serving
	$(BIN)/python -m bench.ingestion
	$(BIN)/python -m bench.landing_tick
	$(BIN)/python -m bench.loop_latency

clean:
	rm -rf $(VENV) .aimass dbt/target dbt/logs
