# The two commands a newcomer needs: `make demo` and `make test`. Both set up .venv first.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo test lint unit serve clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/.installed  ## play a realistic study on local stand-ins (no account, no network)
	$(BIN)/rallybridge demo

test: $(BIN)/.installed lint  ## the whole suite, on SQLite and on the PostgreSQL at 127.0.0.1:5432/test
	$(BIN)/pytest -q -ra

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy bot adapters storage sandbox

unit: $(BIN)/.installed
	$(BIN)/pytest -q tests/unit

serve: $(BIN)/.installed
	$(BIN)/rallybridge db upgrade
	$(BIN)/rallybridge serve

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache

.PHONY: reliability
reliability: $(BIN)/.installed  ## the full reliability suite (issue 3); writes docs/reliability.md. SEED=n replays a run
	$(BIN)/python -m reliability $(if $(SEED),--seed $(SEED),)
