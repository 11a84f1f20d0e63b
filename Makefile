# Two commands for a fresh machine: `make run` starts the service on an embedded SQLite file
# (`make run PORT=8080` for another port), `make test` runs the whole test suite against the local
# PostgreSQL, or a throwaway one it starts when none answers (scripts/with_postgres.py).
PYTHON ?= python3
PORT ?= 8000
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint openapi client bench-ingest bench-matching bench-pipeline bench-unmatched clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(BIN)/.bench-installed: $(BIN)/.installed
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/cme serve --port $(PORT)

test: $(BIN)/.installed
	$(BIN)/ruff check app tests bench migrations scripts
	$(BIN)/ruff format --check app tests bench migrations scripts
	$(BIN)/mypy
	$(BIN)/python scripts/with_postgres.py $(BIN)/pytest

openapi: $(BIN)/.installed
	$(BIN)/cme openapi > openapi/openapi.json

# A Python client generated from the committed document (openapi-python-client 0.29, docs/clients.md),
# into a directory git ignores; `pip install build/client` installs it as `cme_hub_client`.
CLIENT_DIR ?= build/client
client: $(BIN)/.installed
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/openapi-python-client generate --path openapi/openapi.json \
		--config openapi/client-config.yaml --output-path $(CLIENT_DIR) --meta setup --overwrite

bench-ingest: $(BIN)/.bench-installed
	$(BIN)/python bench/ingest.py

bench-matching: $(BIN)/.bench-installed
	$(BIN)/python bench/matching.py

bench-pipeline: $(BIN)/.bench-installed
	$(BIN)/python bench/pipeline.py

bench-unmatched: $(BIN)/.bench-installed
	$(BIN)/python bench/unmatched_list.py

clean:
	rm -rf $(VENV) var

# The JSON Schema of each submission kind, generated from the service's models (a test fails on drift).
.PHONY: schemas
schemas: $(BIN)/.installed
	$(BIN)/cme schemas --out openapi/schemas
