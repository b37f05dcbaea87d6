# Lowart: the two commands are `make run` and `make test`.
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install run test lint bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r .ci/tools.txt

$(BIN)/lowart: $(UV) uv.lock pyproject.toml
	$(UV) sync --locked --quiet
	@touch $@

install: $(BIN)/lowart

run: install
	$(BIN)/lowart serve

test: install
	$(BIN)/pytest -q -p no:cacheprovider

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(TOOLS) $(VENV) .mypy_cache .ruff_cache
