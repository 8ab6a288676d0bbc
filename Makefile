# Every target installs what it needs into .venv first, so each works on a fresh clone.
# Installs come from requirements.lock (exact versions, every platform's hashes left to pip);
# pyproject.toml keeps the ranges. `make lock` writes the lock again after a range changes.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
SRC     := hub connectors state_machines tests bench alembic tools drills
CHROMIUM := /usr/bin/chromium

.PHONY: install run test lint format bench demo drill specs lock clean browser

# setuptools warns at every editable install about same-named folders in the working directory;
# here they are the package itself, so the banner would only be noise (PYTHONWARNINGS=ignore).
$(STAMP): pyproject.toml requirements.lock
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	PYTHONWARNINGS=ignore $(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## the hub on embedded SQLite: API + worker + scheduler
	$(BIN)/hub serve

test: $(STAMP) browser  ## the whole suite, SQLite and Postgres, and the console in Chromium
	$(BIN)/pytest -n 2 -q

# The console's browser tests drive Debian's chromium (Playwright comes from the lock and uses
# it; it downloads no browser). Installed here when missing; without root outside CI, those
# tests skip.
browser:
	@test -x $(CHROMIUM) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq chromium; } || \
		{ test -z "$$CI" && echo "warning: no $(CHROMIUM); the browser tests will skip" >&2; }

lint: $(STAMP)
	$(BIN)/ruff check $(SRC)
	$(BIN)/ruff format --check $(SRC)
	$(BIN)/mypy hub connectors state_machines tests bench tools drills
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix $(SRC)
	$(BIN)/ruff format $(SRC)

bench: $(STAMP)
	$(BIN)/python -m bench

demo: $(STAMP)
	$(BIN)/hub demo

# The long fault drill on Postgres (docs/reliability.md has its last figures); the short one
# runs in `make test` (tests/drills). HUB_TEST_POSTGRES_URL names the server, as for the tests.
DRILL_ARGS ?= --orders 3000 --concurrency 32 --duration 480 --kill-interval 4 \
	--terminate-interval 2 --settle-timeout 600 --reconcile-cron "*/10 * * * *"
drill: $(STAMP)
	$(BIN)/python -m drills --postgres-url "$${HUB_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/postgres}" $(DRILL_ARGS)

lock: $(STAMP)  ## pin every dependency (with the dev extra) for Python 3.11
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --quiet \
		--no-header --output-file requirements.lock

specs: $(STAMP)  ## re-derive every connector's contract subset from ../shared/specs
	$(BIN)/python -m tools.derive_specs

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache hub.db hub.db-wal hub.db-shm
