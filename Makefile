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
	$(BIN)/mypy core bridge storage adapters bot sandbox playground rallybridge
	$(BIN)/lint-imports --no-cache
	$(BIN)/hadolint Dockerfile

unit: $(BIN)/.installed
	$(BIN)/pytest -q tests/unit

serve: $(BIN)/.installed
	$(BIN)/rallybridge db upgrade
	$(BIN)/rallybridge serve

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache

.PHONY: reliability
reliability: $(BIN)/.installed  ## the full reliability suite; writes docs/reliability.md. SEED=n replays a run
	$(BIN)/python -m reliability $(if $(SEED),--seed $(SEED),)

# Benchmarks: each bench/<name>.py that exists runs the real `serve` on SQLite and PostgreSQL and writes
# its section of docs/performance.md. BENCH_ARGS passes options to every one (e.g. BENCH_ARGS="--databases sqlite").
BENCHES := ack_latency drain relay_overhead scale retention reconcile throughput
.PHONY: bench bench-quick
bench: $(BIN)/.installed  ## every benchmark, full length; writes docs/performance.md
	@set -e; for b in $(BENCHES); do if [ -f bench/$$b.py ]; then echo "== bench/$$b.py"; \
		$(BIN)/python -m bench.$$b $(BENCH_ARGS); fi; done

bench-quick: $(BIN)/.installed  ## the same with short runs (a couple of minutes)
	@set -e; for b in $(BENCHES); do if [ -f bench/$$b.py ]; then echo "== bench/$$b.py --quick"; \
		$(BIN)/python -m bench.$$b --quick $(BENCH_ARGS); fi; done

.PHONY: playground
playground: $(BIN)/.installed  ## straight to the browser playground on a fresh study (no script); Ctrl-C stops
	$(BIN)/rallybridge demo --no-script
