# The two commands of the README: `make demo` (the main job) and `make test` (the test suite).
# Both set up .venv first: Python's venv, uv inside it, then the pinned lock (requirements/lock.txt).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo
DEMO_N ?= 300
PYTEST_ARGS ?=
# `make test` runs in TEST_WORKERS processes (pytest-xdist), each taking whole test files so a module's
# fixtures are built once: 2 ran a sample of the suite 1.44x faster than one process on a 2-core
# machine (bench/RESULTS.md, "The test suite in two processes"). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2

.PHONY: setup demo test test-slurm test-slow lint lock clean-demo

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements/lock.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
	VIRTUAL_ENV=$(VENV) $(BIN)/uv pip install --quiet --compile-bytecode -c requirements/lock.txt -e ".[dev]"
	touch $@

# Main job on the embedded default: a simulated labelled Euclid-like set, the shipped model,
# a local Dask cluster and ephemeral Prefect. Prints where the catalog and the report are. Runs
# again over the same folder (the same objects are drawn again; the run picks up its own work).
demo: setup
	$(BIN)/lenshunt simulate --layout euclid-sglc2 --n $(DEMO_N) --seed 2026 --overwrite $(DEMO_DIR)/cutouts
	$(BIN)/lenshunt run $(DEMO_DIR)/cutouts $(DEMO_DIR)/work --layout euclid-sglc2 --top-n 24

test: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Needs a running single-node SLURM (scripts/slurm-localhost.sh start; CI does it).
test-slurm: setup
	$(BIN)/python -m pytest -m 'slurm and not gpu' $(PYTEST_ARGS)

test-slow: setup
	$(BIN)/python -m pytest -m 'slow and not gpu and not slurm' $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# Regenerate the pinned lock from pyproject.toml (all extras, so the cuda extra cannot move dask).
lock:
	$(BIN)/uv pip compile pyproject.toml --all-extras --universal --python-version 3.11 -o requirements/lock.txt

clean-demo:
	rm -rf $(DEMO_DIR)
