# Lowart: the two commands are `make run` and `make test`.
PYTHON ?= python3
NPM ?= npm
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
WEB := web
CONSOLE := src/lowart/ui/dist
CHROMIUM := /usr/bin/chromium
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install console run test lint bench bench-instructions clean settings-doc

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r .ci/tools.txt

$(BIN)/lowart: $(UV) uv.lock pyproject.toml
	$(UV) sync --locked --quiet
	@touch $@

# The web console (docs/ui.md): npm packages pinned by package-lock.json, built into the package.
$(WEB)/node_modules/.package-lock.json: $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && $(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

$(CONSOLE)/index.html: $(WEB)/node_modules/.package-lock.json $(WEB)/index.html \
		$(WEB)/vite.config.js $(shell find $(WEB)/src $(WEB)/public -type f 2>/dev/null)
	cd $(WEB) && $(NPM) run --silent build -- --logLevel warn
	@touch $@

# The console's browser tests drive Debian's Chromium; `run` never needs it.
$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# Without npm the gateway still installs and serves; /ui answers 503 until the console is built.
HAVE_NPM := $(shell command -v $(NPM) 2>/dev/null)
ifeq ($(HAVE_NPM),)
console:
	@echo "make: $(NPM) not found: skipping the web console build (/ui answers 503 until it is built; install Node.js 20.19+ and npm, then run make install again)"
else
console: $(CONSOLE)/index.html
endif

install: $(BIN)/lowart console

run: install
	$(BIN)/lowart serve

# The README's settings tables, generated from the settings' declarations (a test checks them).
settings-doc: install
	$(BIN)/python -c "from pathlib import Path; from lowart.settings import update_readme; update_readme(Path('README.md'))"

test: install $(CHROMIUM)
	$(BIN)/pytest -q -p no:cacheprovider

# Security gates (docs/reliability.md, S16): hash pins and .pth allowlist, bandit, semgrep (offline,
# rules in .ci/semgrep, each rule tested against its examples first).
SEMGREP := SEMGREP_ENABLE_VERSION_CHECK=0 SEMGREP_SEND_METRICS=off $(BIN)/semgrep scan \
	--metrics=off --disable-version-check --quiet

lint: install
	$(BIN)/python .ci/check_supply_chain.py
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/bandit -c pyproject.toml --quiet -r src
	$(SEMGREP) --test .ci/semgrep
	$(SEMGREP) --error --no-git-ignore --config .ci/semgrep/shared-rules.yml \
		--config .ci/semgrep/lowart-rules.yml src

bench: install
	$(BIN)/python bench/run.py

# Instructions per request under callgrind (bench/instructions.py): run on two commits to compare.
bench-instructions: install
	cd bench && ../$(BIN)/python instructions.py

clean:
	rm -rf $(TOOLS) $(VENV) .mypy_cache .ruff_cache $(WEB)/node_modules $(CONSOLE)
