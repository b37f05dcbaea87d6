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

.PHONY: install dev console run test lint bench bench-instructions clean settings-doc dist image \
	test-image

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r .ci/tools.txt

# What serving needs, and nothing else (docs/deployment.md, "From a wheel"). --inexact: a
# development venv keeps its tools.
$(BIN)/lowart: $(UV) uv.lock pyproject.toml
	$(UV) sync --locked --no-dev --inexact --quiet
	@touch $@

# The development tools (pytest, mypy, ruff, bandit, semgrep...) on top: test, lint and bench.
$(BIN)/pytest: $(BIN)/lowart
	$(UV) sync --locked --group dev --quiet
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

dev: $(BIN)/pytest console

run: install
	$(BIN)/lowart serve

# The README's settings tables, generated from the settings' declarations (a test checks them).
settings-doc: dev
	$(BIN)/python -c "from pathlib import Path; from lowart.settings import update_readme; update_readme(Path('README.md'))"

test: dev $(CHROMIUM)
	$(BIN)/pytest -q -p no:cacheprovider

# Security gates (docs/reliability.md, S16): hash pins and .pth allowlist, bandit, semgrep (offline,
# rules in .ci/semgrep, each rule tested against its examples first).
SEMGREP := SEMGREP_ENABLE_VERSION_CHECK=0 SEMGREP_SEND_METRICS=off $(BIN)/semgrep scan \
	--metrics=off --disable-version-check --quiet

lint: dev
	$(BIN)/python .ci/check_supply_chain.py
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/bandit -c pyproject.toml --quiet -r src
	$(SEMGREP) --test .ci/semgrep
	$(SEMGREP) --error --no-git-ignore --config .ci/semgrep/shared-rules.yml \
		--config .ci/semgrep/lowart-rules.yml src

bench: dev
	$(BIN)/python bench/run.py

# Instructions per request under callgrind (bench/instructions.py): run on two commits to compare.
bench-instructions: dev
	cd bench && ../$(BIN)/python instructions.py

# A wheel and an sdist carrying the built console, and the lock's runtime pins as constraints
# (docs/deployment.md, "From a wheel"). Without hashes: pip's hash-checking mode would then ask
# for the wheel's own hash too, and `pip install -c` takes none.
DIST ?= dist
dist: $(UV) console
	@test -f $(CONSOLE)/index.html || { echo "make: the console is not built: install Node.js 20.19+ and npm"; exit 1; }
	rm -f $(DIST)/lowart-*.whl $(DIST)/lowart-*.tar.gz
	$(UV) build --quiet --out-dir $(DIST)
	$(UV) export --locked --no-dev --no-emit-project --no-hashes --format requirements-txt \
		--quiet -o $(DIST)/requirements.txt

# An OCI image from a debootstrap-ed Debian and the wheel, built with Debian's buildah
# (docs/deployment.md, "Container image"); `make test-image` builds it, runs it and chats.
IMAGE ?= localhost/lowart:latest
IMAGE_WORK ?= build/image
image: dist
	deploy/image/build.sh $(DIST) $(IMAGE_WORK) $(IMAGE)

PODMAN_RUN_OPTIONS ?=
test-image: image
	PODMAN_RUN_OPTIONS="$(PODMAN_RUN_OPTIONS)" deploy/image/test.sh $(IMAGE)

clean:
	rm -rf $(TOOLS) $(VENV) .mypy_cache .ruff_cache $(WEB)/node_modules $(CONSOLE) $(DIST) build
