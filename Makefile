# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOME_DIR ?= $(CURDIR)/.circle-node-home

.PHONY: run demo test lint unit bench fuzz soak clean

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
	$(BIN)/ruff check node tests bench fuzz
	$(BIN)/ruff format --check node tests bench fuzz
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

# Long runs, not part of `make test` (docs/security.md). Each fuzz target runs FUZZ_SECONDS;
# atheris is installed into the venv on first use.
FUZZ_SECONDS ?= 300
FUZZ_TARGETS ?= ops frames bundle card config
fuzz: $(VENV)/.installed
	$(BIN)/python -c "import atheris" 2>/dev/null || $(BIN)/pip install --quiet atheris
	for target in $(FUZZ_TARGETS); do \
		$(BIN)/python fuzz/run.py $$target --seconds $(FUZZ_SECONDS) || exit 1; \
	done

# Crash and partition soak: many more SIGKILL rounds and partition phases than `make test`.
SOAK_CRASH_ROUNDS ?= 500
SOAK_PARTITION_PHASES ?= 30
soak: $(VENV)/.installed
	CIRCLE_NODE_CRASH_ROUNDS=$(SOAK_CRASH_ROUNDS) \
	CIRCLE_NODE_PARTITION_PHASES=$(SOAK_PARTITION_PHASES) \
		$(BIN)/pytest tests/reliability -x -q -s

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
