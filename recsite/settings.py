"""Settings, read from the environment (12-factor).

Every knob is listed here once and documented in the README's configuration table.
With no environment at all the project runs on embedded defaults: SQLite under var/,
Celery in eager mode, a local-memory cache and the file email backend.
"""

import os
import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

RECSITE_ENV = env.str("RECSITE_ENV", default="development")
if RECSITE_ENV not in ("development", "production"):
    raise ImproperlyConfigured("RECSITE_ENV must be 'development' or 'production'")
PRODUCTION = RECSITE_ENV == "production"

DEBUG = env.bool("DEBUG", default=not PRODUCTION)


def _development_secret_key() -> str:
    """A per-checkout key kept in var/, so sessions survive restarts without configuration."""
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY", default="")
    if len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("SECRET_KEY must be set to 50 or more characters in production")
else:
    SECRET_KEY = env.str("SECRET_KEY", default="") or _development_secret_key()

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=[] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "django_celery_beat",
    "recommendations",
    "bulletins",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "recsite.urls"
WSGI_APPLICATION = "recsite.wsgi.application"
ASGI_APPLICATION = "recsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "recsite" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: DATABASE_URL, e.g. postgres://user:pass@host:5432/name; SQLite under var/ by default.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Import writes and API writes may overlap; wait for the lock instead of failing at once.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: broker, result backend and cache. Absent: eager Celery and a local-memory cache.
REDIS_URL = env.str("REDIS_URL", default="")
_xdist_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if (
    REDIS_URL
    and _xdist_worker.startswith("gw")
    and (os.environ.get("REDIS_URL_TEST_WORKER") != _xdist_worker)
):
    # Parallel test workers share one Redis server: each takes the database below the URL's
    # by its number (gw1 of /15 uses /14), so one worker's cache.clear() never empties another's.
    # The environment keeps the result, so the processes a test starts inherit it as it is.
    _base, _, _db = REDIS_URL.rpartition("/")
    _worker_db = int(_db or 0) - int(_xdist_worker[2:])
    if _worker_db < 0:
        raise ImproperlyConfigured(f"REDIS_URL {REDIS_URL} leaves no database for {_xdist_worker}")
    REDIS_URL = f"{_base}/{_worker_db}"
    os.environ["REDIS_URL"] = REDIS_URL
    os.environ["REDIS_URL_TEST_WORKER"] = _xdist_worker
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "recsite.cache.RedisCache",  # Django's, reusing its client
            "LOCATION": env.str("CACHE_URL", default=REDIS_URL),
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="recsite"),
            "TIMEOUT": env.int("CACHE_TIMEOUT", default=24 * 3600),
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "TIMEOUT": env.int("CACHE_TIMEOUT", default=24 * 3600),
            # This cache lives in one process: its keys carry the data's generation, so a
            # recompute or a rule change made by another process reaches it within a second.
            "KEY_FUNCTION": "recsite.data_generation.generation_key",
            # Every user's lists are cached; the default of 300 entries would cull them.
            "OPTIONS": {"MAX_ENTRIES": env.int("LOCMEM_CACHE_MAX_ENTRIES", default=1_000_000)},
        }
    }

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://localhost/")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL or "cache+memory://")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
# One queue per deployment sharing a broker (staging and production, or test runs).
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
# When set, the CPU-heavy batch goes to a queue of its own, so the workers that read it can run
# at low priority beside the web server (README, Scaling out) while real-time refreshes,
# sends and clicks keep workers at normal priority. Some worker must then read this queue.
CELERY_BATCH_QUEUE = env.str("CELERY_BATCH_QUEUE", default="")
BATCH_TASKS = [
    "recommendations.tasks.data_import_task",
    "recommendations.tasks.model_train_task",
    "recommendations.tasks.recommendations_compute_all_task",
    "recommendations.tasks.recommendations_compute_shard_task",
    "recommendations.tasks.recommendation_run_finish_task",
    "recommendations.tasks.recommendation_run_fail_task",
    "recommendations.tasks.segments_refresh_task",
]
CELERY_TASK_ROUTES = (
    {name: {"queue": CELERY_BATCH_QUEUE} for name in BATCH_TASKS} if CELERY_BATCH_QUEUE else {}
)
# Acknowledgement is set per task (`recsite.task_options.recsite_task`): late only where a
# second delivery is harmless. A late task whose worker is lost goes back to the queue.
CELERY_TASK_ACKS_LATE = False
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# A worker that loses the broker stops its late-acknowledged tasks: their messages go back to
# the queue, and a second copy must not run beside the first (Celery 6's default).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# No task may run longer than this (training, the longest, is given all of it). Redis hands an
# unacknowledged message to another worker after the visibility timeout, so it is kept above
# every task's time limit: a task still running is never delivered a second time. Countdowns
# (Personalize polls, bulletin retries) stay far below it too, for the same reason.
CELERY_TASK_TIME_LIMIT_MAX = env.int("CELERY_TASK_TIME_LIMIT_MAX", default=4 * 3600)
CELERY_TASK_TIME_LIMIT = min(
    env.int("CELERY_TASK_TIME_LIMIT", default=3600), CELERY_TASK_TIME_LIMIT_MAX
)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_BROKER_VISIBILITY_TIMEOUT = env.int(
    "CELERY_BROKER_VISIBILITY_TIMEOUT", default=CELERY_TASK_TIME_LIMIT_MAX + 1800
)
if CELERY_BROKER_VISIBILITY_TIMEOUT <= CELERY_TASK_TIME_LIMIT_MAX:
    raise ImproperlyConfigured(
        f"CELERY_BROKER_VISIBILITY_TIMEOUT ({CELERY_BROKER_VISIBILITY_TIMEOUT} s) must be above "
        f"CELERY_TASK_TIME_LIMIT_MAX ({CELERY_TASK_TIME_LIMIT_MAX} s): Redis would deliver a "
        "task that is still running a second time"
    )
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_BROKER_VISIBILITY_TIMEOUT}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

# Email: the file backend under var/emails by default; EMAIL_URL (smtp://user:pass@host:587)
# switches to SMTP.
EMAIL_URL = env.str("EMAIL_URL", default="")
if EMAIL_URL:
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "emails"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="newsletter@localhost")
# The public address tracked links, the open pixel and unsubscribe links point to (HTTPS in
# production: one-click unsubscribe requires it); an optional mailto for List-Unsubscribe.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://localhost:8000")
UNSUBSCRIBE_MAILTO = env.str("UNSUBSCRIBE_MAILTO", default="")
# Where bulletins are pushed: smtp (Django's email backend above), sendgrid, webhook, ...;
# EMAIL_PLATFORM_OPTIONS holds the platform's own settings as JSON, e.g. {"api_key": "..."}.
EMAIL_PLATFORM = {
    "name": env.str("EMAIL_PLATFORM", default="smtp"),
    **env.json("EMAIL_PLATFORM_OPTIONS", default={}),
}
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Bulletin runs: users per shard task; how long a claimed delivery may stay "being sent"
# before a resume treats it as in doubt and sends it again with the same idempotency key;
# attempts per delivery and the wait before retrying the platform's retryable failures.
BULLETIN_SHARD_USERS = env.int("BULLETIN_SHARD_USERS", default=5000)
BULLETIN_CLAIM_LEASE_SECONDS = env.int("BULLETIN_CLAIM_LEASE_SECONDS", default=900)
BULLETIN_MAX_ATTEMPTS = env.int("BULLETIN_MAX_ATTEMPTS", default=5)
BULLETIN_RETRY_SECONDS = env.int("BULLETIN_RETRY_SECONDS", default=300)
# Tracked links: hits this soon after sending, or this many on one email this fast, are
# machines (link scanners), kept but left out of reports (bulletins/machines.py).
TRACKING_TOO_SOON_SECONDS = env.float("TRACKING_TOO_SOON_SECONDS", default=10.0)
TRACKING_BURST_HITS = env.int("TRACKING_BURST_HITS", default=3)
TRACKING_BURST_SECONDS = env.float("TRACKING_BURST_SECONDS", default=2.0)

# Object storage: s3:// URIs go to S3 or any S3-compatible endpoint.
AWS_ENDPOINT_URL = env.str("AWS_ENDPOINT_URL", default="") or None
AWS_REGION = env.str("AWS_REGION", default="us-east-1")
# Where artifacts (trained models, exports) go: a local folder or an s3://bucket/prefix URI.
ARTIFACT_ROOT = env.str("ARTIFACT_ROOT", default=str(VAR_DIR / "artifacts"))

# Recommendations: batch shards, how long cached lists live, refresh after new events.
RECOMMEND_SHARD_USERS = env.int("RECOMMEND_SHARD_USERS", default=5000)
# A recommendation run none of whose shards has reported for this long is resumed by beat
# (`recommendation_runs_recover_task`): its workers died. Above a shard's time limit (30 min).
RECOMMEND_RUN_LEASE_SECONDS = env.int("RECOMMEND_RUN_LEASE_SECONDS", default=2400)
# A shard's lists are written (PostgreSQL, then Redis) this many users at a time, each chunk its
# own transaction; with a pause ratio above 0 the batch rests that many times as long as each
# chunk's write took, to spread the load it puts on the services the API shares.
RECOMMEND_WRITE_CHUNK = env.int("RECOMMEND_WRITE_CHUNK", default=500)
RECOMMEND_WRITE_PAUSE_RATIO = env.float("RECOMMEND_WRITE_PAUSE_RATIO", default=0.0)
if RECOMMEND_WRITE_CHUNK < 1:
    raise ImproperlyConfigured(
        f"RECOMMEND_WRITE_CHUNK must be 1 or more, not {RECOMMEND_WRITE_CHUNK}"
    )
if not 0 <= RECOMMEND_WRITE_PAUSE_RATIO <= 100:
    raise ImproperlyConfigured(
        f"RECOMMEND_WRITE_PAUSE_RATIO must be from 0 to 100, not {RECOMMEND_WRITE_PAUSE_RATIO}"
    )
RECOMMENDATIONS_CACHE_SECONDS = env.int("RECOMMENDATIONS_CACHE_SECONDS", default=7 * 24 * 3600)
REALTIME_REFRESH = env.bool("REALTIME_REFRESH", default=True)
REFRESH_DEBOUNCE_SECONDS = env.int("REFRESH_DEBOUNCE_SECONDS", default=2)

# Amazon Personalize (docs/PERSONALIZE.md). Off unless enabled and configured.
PERSONALIZE_ENABLED = env.bool("PERSONALIZE_ENABLED", default=False)
PERSONALIZE_ROLE_ARN = env.str("PERSONALIZE_ROLE_ARN", default="")
PERSONALIZE_BUCKET = env.str("PERSONALIZE_BUCKET", default="")
PERSONALIZE_PREFIX = env.str("PERSONALIZE_PREFIX", default="recsite/personalize")
PERSONALIZE_RECIPE = env.str("PERSONALIZE_RECIPE", default="user-personalization")
PERSONALIZE_DATASET_GROUP = env.str("PERSONALIZE_DATASET_GROUP", default="recsite")
PERSONALIZE_CAMPAIGN_ARN = env.str("PERSONALIZE_CAMPAIGN_ARN", default="")
PERSONALIZE_FILTER_ARN = env.str("PERSONALIZE_FILTER_ARN", default="")
PERSONALIZE_NUM_RESULTS = env.int("PERSONALIZE_NUM_RESULTS", default=25)
PERSONALIZE_POLL_SECONDS = env.int("PERSONALIZE_POLL_SECONDS", default=120)
PERSONALIZE_REALTIME_TIMEOUT_SECONDS = env.float(
    "PERSONALIZE_REALTIME_TIMEOUT_SECONDS", default=0.3
)

# Event intake limits (POST /api/v1/events/).
EVENTS_MAX_BATCH = env.int("EVENTS_MAX_BATCH", default=1000)
EVENTS_MAX_BODY_BYTES = env.int("EVENTS_MAX_BODY_BYTES", default=1024 * 1024)
# Leave room for the events API's own limit so it can answer 413 itself.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(EVENTS_MAX_BODY_BYTES * 2, 2621440)

# The demo page (/demo/): the website widget on this installation's own data.
DEMO_PAGE_ENABLED = env.bool("DEMO_PAGE_ENABLED", default=DEBUG)

# Widget-facing endpoints (public keys): most items per list, events per request, requests
# per key and client address; how long a key lookup, and a list computed on a cache miss, are
# cached (saving or revoking a key drops its lookup at once).
API_MAX_K = env.int("API_MAX_K", default=50)
EVENTS_MAX_BATCH_PUBLIC = env.int("EVENTS_MAX_BATCH_PUBLIC", default=100)
API_PUBLIC_RATE = env.str("API_PUBLIC_RATE", default="600/min")
API_KEY_CACHE_SECONDS = env.int("API_KEY_CACHE_SECONDS", default=300)
API_SERVED_CACHE_SECONDS = env.int("API_SERVED_CACHE_SECONDS", default=300)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["recommendations.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["recommendations.authentication.HasSecretKey"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"public": API_PUBLIC_RATE},
    # Behind a proxy, how many X-Forwarded-For hops to trust for the client address.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=None),
    "EXCEPTION_HANDLER": "recsite.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Recsite API",
    "DESCRIPTION": "Recommendations, behaviour events and identity for websites and servers. "
    "Keys go in `Authorization: Bearer <key>`; public keys may go in `?key=`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}
# Browsers may call the widget endpoints from the origins of active public keys
# (recommendations/cors.py); no other URL answers cross-origin requests.
CORS_URLS_REGEX = r"^/api/v1/(recommendations|events|identify)/$"
CORS_PREFLIGHT_MAX_AGE = 86400

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(VAR_DIR / "static"))
# WhiteNoise serves collected files in production; in development it serves from the finders.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Production hardening: `manage.py check --deploy` is clean with RECSITE_ENV=production.
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if env.bool("BEHIND_TLS_PROXY", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Run in-process (eager), every task's success would be a line of the command's output.
        "celery.app.trace": {"level": "WARNING" if CELERY_TASK_ALWAYS_EAGER else "INFO"},
    },
}
