# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOME_DIR ?= $(CURDIR)/.circle-node-home

.PHONY: run test lint unit bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	CIRCLE_NODE_HOME=$${CIRCLE_NODE_HOME:-$(HOME_DIR)} $(BIN)/circle-node run

lint: $(VENV)/.installed
	$(BIN)/ruff check node tests bench
	$(BIN)/ruff format --check node tests bench
	$(BIN)/mypy node

unit: $(VENV)/.installed
	$(BIN)/pytest

test: lint unit

# The comparison with automerge-repo and pycrdt-websocket installs them into
# bench/compare/.work/ on first use (npm and PyPI); BENCH_REPS=5 for the documented run.
BENCH_REPS ?= 1
bench: $(VENV)/.installed
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/sync.py --small
	$(BIN)/python bench/compare/run.py --small --reps $(BENCH_REPS) \
		--out bench/compare/.work/last-small.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
