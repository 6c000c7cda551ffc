"""Which data the served lists come from, as one stamp: the newest recommendation run, the
newest model activation and the state of the marketer rules. A cache that lives in one
process (the embedded local-memory cache) puts the stamp in its keys, so a recompute, a
training or a rule change made by another process (`manage.py recommend --all` beside
`runserver`) reaches this one within `SECONDS`, instead of when its entries expire a day
later. A shared cache (Redis) needs none of this: every process reads what the writer wrote.

The process that makes a change calls `data_generation_forget()`, so it sees its own change at
once."""

import hashlib
import threading
import time

from django.apps import apps
from django.db import DatabaseError, connection

SECONDS = 1.0  # how stale another process's change may be seen here

_lock = threading.Lock()
_state: dict = {"value": None, "read_at": 0.0}


def data_generation() -> str:
    with _lock:
        if _state["value"] is not None and time.monotonic() - _state["read_at"] < SECONDS:
            return _state["value"]
    value = _read()
    with _lock:
        _state["value"], _state["read_at"] = value, time.monotonic()
    return value


def data_generation_forget() -> None:
    with _lock:
        _state["value"] = None


def _read() -> str:
    table = {
        name: connection.ops.quote_name(apps.get_model("recommendations", name)._meta.db_table)
        for name in ("RecommendationRun", "ModelVersion", "Rule")
    }
    sql = (
        f"SELECT (SELECT MAX(id) FROM {table['RecommendationRun']}),"
        f" (SELECT MAX(activated_at) FROM {table['ModelVersion']}),"
        f" (SELECT MAX(updated_at) FROM {table['Rule']}),"
        f" (SELECT COUNT(*) FROM {table['Rule']})"
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            row = cursor.fetchone()
    except (DatabaseError, RuntimeError):  # no tables yet (migrate), or no database allowed
        return "0"
    # A short digest: cache keys must be free of the spaces a timestamp prints.
    return hashlib.blake2b(repr(row).encode(), digest_size=8).hexdigest()


def generation_key(key: str, key_prefix: str, version: int) -> str:
    """Django's cache KEY_FUNCTION for a per-process cache: the stamp before the key."""
    return f"{key_prefix}:{version}:{data_generation()}:{key}"
