"""The outside failures that callers ride out instead of failing a request or a task.

Redis holds the cache and the Celery broker. When it is down or restarting the database is
still the record, so callers go on without it rather than fail a request or a task whose rows
are committed: a cache read that fails is a miss, a cache write that fails leaves the database
row to serve, and a task that cannot be queued is logged and left to the nightly batch or the
periodic recovery, which redo it.
"""

from kombu.exceptions import OperationalError as BrokerUnavailable
from redis.exceptions import RedisError

CACHE_ERRORS = (RedisError, OSError)
QUEUE_ERRORS = (BrokerUnavailable, RedisError, OSError)
