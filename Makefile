# runner: `make demo` trains the MNIST example on this machine; `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[jobs,dev]'
	touch $@

install: $(STAMP)

demo: install
	$(BIN)/runner submit jobs/mnist/job.yaml
	$(BIN)/runner list --job mnist --limit 3
	$(BIN)/runner artifacts mnist

lint: install
	$(BIN)/ruff check runner tests bench jobs
	$(BIN)/ruff format --check runner tests bench jobs
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/python -m pytest

test: lint typecheck unit

bench: install
	$(BIN)/python bench/startup.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
