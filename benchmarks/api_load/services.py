"""The services a run needs: PostgreSQL (a scratch database), Redis (a database emptied before
and after) and Node.js; the environment the setup, the server and the batch run with."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from benchmarks.api_load.config import BENCH_DB, PLACEMENT, POSTGRES_URL, REDIS_URL, BenchError


def preflight() -> None:
    """Fail at once, with what is missing, when a service or Node.js is not there."""
    import psycopg
    import redis

    problems = []
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg.Error as error:
        problems.append(
            f"PostgreSQL is not reachable at {POSTGRES_URL} ({str(error).strip().splitlines()[0]})."
            " Start it (e.g. `pg_ctlcluster 15 main start`) or set BENCH_POSTGRES_URL."
        )
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        problems.append(
            f"Redis is not reachable at {REDIS_URL} ({error}). Start it (e.g. `redis-server "
            "--daemonize yes`) or set BENCH_REDIS_URL."
        )
    node = shutil.which("node")
    if node is None:
        problems.append("Node.js is not installed; the load generator needs it (node 18+).")
    else:
        version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
        if int(version.strip().lstrip("v").split(".")[0]) < 18:
            problems.append(f"Node.js {version.strip()} is too old; the load generator needs 18+.")
    if problems:
        raise BenchError("cannot run:\n" + "\n".join(f"- {p}" for p in problems))


def database_url_for(name: str) -> str:
    parts = urlsplit(POSTGRES_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


def database_create(stack: contextlib.ExitStack) -> str:
    """A fresh scratch database, dropped when the stack closes (even after a failure)."""
    import psycopg

    def drop() -> None:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')

    drop()
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    stack.callback(drop)
    return database_url_for(BENCH_DB)


def redis_flush(stack: contextlib.ExitStack) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    stack.callback(lambda: redis.Redis.from_url(REDIS_URL).flushdb())


def cached_lists() -> int:
    """How many of the batch's lists are in Redis (another process may empty the database)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    return sum(1 for _ in client.scan_iter(match=f"*recs:v1:{PLACEMENT}:*", count=5000))


def sql_count(database_url: str, query: str) -> int:
    import psycopg

    with psycopg.connect(database_url) as conn:
        return conn.execute(query).fetchone()[0]


def database_settle(database_url: str) -> None:
    """Vacuum, analyse and checkpoint after the import, so autovacuum and the checkpointer do
    not work through the freshly written tables during the first measured steps."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")


def django_env(database_url: str, folder: Path) -> dict[str, str]:
    """The environment both the setup and the server run with: the scratch database and Redis
    database, artifacts in the scratch folder, this run's own Celery queue."""
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    env.update(
        DJANGO_SETTINGS_MODULE="recsite.settings",
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        ARTIFACT_ROOT=str(folder / "artifacts"),
        CELERY_TASK_DEFAULT_QUEUE="bench-api",
        LOG_LEVEL="WARNING",
    )
    return env
