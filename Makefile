# Two commands on a fresh machine: `make demo` (a real drill of a generated backup) and `make test`.
# Both create .venv and install the package with its test extras first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	TESTCONTAINERS_RYUK_DISABLED=true $(BIN)/grimoire-drill demo

test: $(STAMP)
	$(BIN)/lint-imports --no-cache
	TESTCONTAINERS_RYUK_DISABLED=true $(BIN)/python -m pytest tests -q -ra

bench: $(STAMP)
	$(BIN)/python scripts/bench.py

clean:
	rm -rf $(VENV) demo reports/*/ reports/history.jsonl *.egg-info
