# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOME_DIR ?= $(CURDIR)/.circle-node-home

.PHONY: run demo test lint unit bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	CIRCLE_NODE_HOME=$${CIRCLE_NODE_HOME:-$(HOME_DIR)} $(BIN)/circle-node run

# Three nodes of a small federation on loopback, with the TUI on one (docs/demo.md).
demo: $(VENV)/.installed
	$(BIN)/circle-node demo

lint: $(VENV)/.installed
	$(BIN)/ruff check node tests bench
	$(BIN)/ruff format --check node tests bench
	$(BIN)/mypy node

unit: $(VENV)/.installed
	$(BIN)/pytest

test: lint unit

bench: $(VENV)/.installed
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/sync.py --small

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
