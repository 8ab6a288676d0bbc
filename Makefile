# Every target installs what it needs into .venv first, so each works on a fresh clone.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install run test lint format bench demo specs clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## the hub on embedded SQLite: API + worker + scheduler
	$(BIN)/hub serve

test: $(STAMP)  ## the whole suite, SQLite and Postgres
	$(BIN)/pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check hub connectors state_machines tests bench alembic tools
	$(BIN)/ruff format --check hub connectors state_machines tests bench alembic tools
	$(BIN)/mypy hub connectors state_machines tests bench tools

format: $(STAMP)
	$(BIN)/ruff check --fix hub connectors state_machines tests bench alembic tools
	$(BIN)/ruff format hub connectors state_machines tests bench alembic tools

bench: $(STAMP)
	$(BIN)/python -m bench

demo: $(STAMP)
	$(BIN)/hub demo

specs: $(STAMP)  ## re-derive every connector's contract subset from ../shared/specs
	$(BIN)/python -m tools.derive_specs

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache hub.db hub.db-wal hub.db-shm
