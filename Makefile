# runner: `make demo` trains the MNIST example on this machine; `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit engine cluster browser bench bench-scale clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[jobs,dev]'
	touch $@

install: $(STAMP)

# The demo runs the embedded default, auto: in a container where a Docker engine answers (the job
# image's requirements are resolved on this machine by pip download, so its build needs no network),
# as plain processes otherwise. DEMO_BACKEND=process or DEMO_BACKEND=docker picks one.
DEMO_BACKEND ?= auto

demo: install
	$(BIN)/runner submit --backend $(DEMO_BACKEND) jobs/mnist/job.yaml
	$(BIN)/runner list --job mnist --limit 3
	$(BIN)/runner artifacts mnist

lint: install
	$(BIN)/ruff check runner tests bench jobs
	$(BIN)/ruff format --check runner tests bench jobs
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

# The container tests need a Docker engine and a registry: start them (installing Debian's packages when
# missing). Without root or apt this fails and those tests skip, except in CI (CI=true), where they fail.
engine:
	-scripts/engine.sh start

# The real-cluster tests (marker `cluster`) need a Kubernetes control plane: build it from its Go modules
# (only the first time on a machine, about 6 minutes; cached in /var/cache/runner-kube). The tests start and
# stop it themselves. Without Go or root this fails and those tests skip, except in CI, where they fail.
cluster:
	-scripts/cluster.sh build

# The dashboard's browser tests (tests/ui/test_browser.py) drive Debian's chromium through chromium-driver:
# installed when missing. Without root or apt this fails and those tests skip, except in CI, where they fail.
browser:
	-command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq chromium chromium-driver; }

unit: install engine cluster browser
	$(BIN)/python -m pytest

test: lint typecheck unit

bench: install
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/containers.py
	$(BIN)/python bench/kube.py
	$(BIN)/python bench/scale.py --jobs 2000

# The full cluster-scale run of issue 5: 100 nodes x 8 GPUs, 10,000 jobs (about 20 minutes on 2 cores).
bench-scale: install
	$(BIN)/python bench/scale.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
