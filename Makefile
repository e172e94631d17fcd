# tokenrate developer commands. `make test` and `make demo` work on a fresh machine with Python >= 3.10.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tokenrate-installed

.PHONY: test lint demo bench bench-peers clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check src tests benchmarks examples
	$(PY) -m ruff format --check src tests benchmarks examples
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks examples
	$(PY) -m ruff format --check src tests benchmarks examples

demo: $(STAMP)
	$(PY) -m tokenrate demo

# Benchmarks print figures and assert nothing; neither runs in CI (docs/performance.md).
bench: $(STAMP)
	$(PY) benchmarks/bench_overhead.py
	$(PY) benchmarks/bench_view.py
	$(PY) benchmarks/bench_cost.py
	$(PY) benchmarks/bench_rate_limits.py

# tokenrate next to the other GenAI instrumentations (builds their venvs under ~/.cache/tokenrate-bench on first use).
bench-peers: $(STAMP)
	$(PY) benchmarks/compare_peers.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache
