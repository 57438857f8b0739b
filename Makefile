# Flywheel — `make run` and `make test` work on a bare machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-crash lint format typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/flywheel db upgrade
	$(BIN)/flywheel run

test: $(STAMP)
	$(BIN)/python -m pytest -m "not crash" $(PYTEST_ARGS)

# Real processes killed -9, PostgreSQL restarted, the platform API taken down (a few
# minutes; needs PostgreSQL, and CI=true or FLYWHEEL_TEST_RESTART_POSTGRES=1 for the restart).
test-crash: $(STAMP)
	$(BIN)/python -m pytest -m crash -s tests/test_crash.py $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy bot handlers adapters storage

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
