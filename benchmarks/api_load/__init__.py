"""The API load benchmark behind `benchmarks/api_latency.py`, by concern.

- `config`: paths, the services' addresses, endpoints, default rates, `BenchError`.
- `services`: PostgreSQL (the scratch database), Redis, the preflight check, `django_env`.
- `fixtures`: the synthetic publisher, model, cached lists and API key (in a child process).
- `servers`: the WSGI server under test (granian or gunicorn), started and stopped.
- `priority`: the batch's CPU priority (`nice`, autogroup, an idle CPU cgroup).
- `load`: the plan, steps and driver of the Node.js open-loop generator (`benchmarks/loadgen/`).
- `scenarios`: `latency`, `latency-batch`, `events` (`SCENARIOS`).
- `report`: the RESULTS.md sections, under one shared `heading`.
- `runner`: one run, everything it starts cleaned up however it ends.
- `cli`: the options and `main`.

Each module imports only from those above it in this list (and `benchmarks.results`).
"""
