# The two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# `make test` runs the fast everyday tier; `make test TIER=all` (what .ci/run runs) adds the
# browser, fault and slow tests. Tests run in parallel over TEST_WORKERS processes (pytest-xdist),
# and the slowest 15 are listed at the end.
TIER ?= fast
TEST_WORKERS ?= auto
FAST_TIER := -m "not browser and not faults and not slow"

.PHONY: demo test lint bench bench-movielens bench-import bench-rules bench-refresh bench-bulletins bench-uplift bench-api bench-scale clean

# uv installs the pinned dependencies in seconds where pip takes about a minute.
UV_VERSION := 0.13.9

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest -n $(TEST_WORKERS) --durations=15 $(if $(filter all,$(TIER)),,$(FAST_TIER))

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Benchmarks write their tables into benchmarks/RESULTS.md. bench-scale (about 12 minutes,
# 1M users) is left out of `bench`.
bench: bench-movielens bench-import bench-rules bench-refresh bench-bulletins bench-uplift bench-api

bench-movielens: $(STAMP)
	$(BIN)/python benchmarks/movielens.py

bench-import: $(STAMP)
	$(BIN)/python benchmarks/import_movielens.py

bench-rules: $(STAMP)
	$(BIN)/python benchmarks/rules.py

bench-refresh: $(STAMP)
	$(BIN)/python benchmarks/refresh.py
	$(BIN)/python benchmarks/refresh_service.py

bench-bulletins: $(STAMP)
	$(BIN)/python benchmarks/bulletins_render.py

bench-uplift: $(STAMP)
	$(BIN)/python benchmarks/uplift_coverage.py

# bench-api (about 25 minutes) needs PostgreSQL on 127.0.0.1:5432 (role postgres, allowed to
# create databases; or BENCH_POSTGRES_URL), Redis on 127.0.0.1:6379 (its database 14 is
# emptied; or BENCH_REDIS_URL) and Node.js 18+ for the load generator; it says which is missing
# and stops before doing anything. It creates and drops the database recsite_bench_api and runs
# granian (and gunicorn, for comparison) on free ports of 127.0.0.1. `--scenario events`
# measures the events API; `--scenario latency-batch` (about 7 minutes) the latency while
# `manage.py recommend --all` recomputes every list beside it.
bench-api: $(STAMP)
	$(BIN)/python benchmarks/api_latency.py
	$(BIN)/python benchmarks/api_latency.py --scenario events --batch 500 --rates 2500,5000,7500,10000
	$(BIN)/python benchmarks/api_latency.py --scenario latency-batch

bench-scale: $(STAMP)
	$(BIN)/python benchmarks/scale.py

clean:
	rm -rf $(VENV) var/db.sqlite3 var/demo var/rejects
