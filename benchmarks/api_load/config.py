"""What every part of the API load benchmark shares: where things are, the services' addresses,
the endpoints and default rates, and the error that stops a run."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The command-line entry point; the data setup runs it again in a child (`--setup-child`).
ENTRY_POINT = REPO / "benchmarks" / "api_latency.py"
LOADGEN = REPO / "benchmarks" / "loadgen" / "openloop.js"
BENCH_DB = "recsite_bench_api"
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
PLACEMENT = "for-you"
RECOMMENDATIONS_PATH = "/api/v1/recommendations/"
EVENTS_PATH = "/api/v1/events/"
LATENCY_RATES = [100, 250, 500, 750, 1000, 1500, 2000]
EVENT_RATES = [1000, 2500, 5000, 7500, 10000]

# Sent with every request, as the TLS proxy the README asks for would.
PROXY_HEADERS = {"X-Forwarded-Proto": "https"}


class BenchError(Exception):
    """The benchmark cannot run or went wrong; the message says why."""
