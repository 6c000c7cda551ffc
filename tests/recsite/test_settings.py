import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each test starts manage.py in a process of its own

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "RECSITE_ENV": "production",
    "SECRET_KEY": "p" * 30 + "-production-secret-key-for-the-check",
    "ALLOWED_HOSTS": "news.example.com",
}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    inherited = ("SECRET_KEY", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")  # the browser tests set it
    clean_env = {k: v for k, v in os.environ.items() if k not in inherited}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean_env | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deploy_check():
    result = _manage("check", "--deploy", "--fail-level", "DEBUG", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("secret_key", ["", "short"])
def test_production_refuses_to_start_without_a_real_secret_key(secret_key):
    result = _manage("check", env=PRODUCTION_ENV | {"SECRET_KEY": secret_key})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_unknown_environment_name_is_refused():
    result = _manage("check", env={"RECSITE_ENV": "staging"})
    assert result.returncode != 0
    assert "RECSITE_ENV must be" in result.stderr


def test_email_platform_and_its_options_come_from_the_environment():
    code = "from integrations.platforms import adapter; print(type(adapter()).__name__)"
    env = {
        "EMAIL_PLATFORM": "webhook",
        "EMAIL_PLATFORM_OPTIONS": '{"url": "http://127.0.0.1:9/hook", "secret": "s"}',
    }
    result = _manage("shell", "--no-imports", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "WebhookAdapter"


def test_the_batch_goes_to_its_own_queue_when_one_is_named():
    script = (
        "import django; django.setup(); from recsite.celery import app; "
        "route = lambda name: app.amqp.router.route({}, name)['queue'].name; "
        "print(route('recommendations.tasks.recommendations_compute_shard_task'), "
        "route('recommendations.tasks.model_train_task'), "
        "route('recommendations.tasks.recommendations_refresh_users_task'), "
        "route('bulletins.tasks.bulletin_shard_task'))"
    )
    env = {"DJANGO_SETTINGS_MODULE": "recsite.settings", "CELERY_TASK_DEFAULT_QUEUE": "main"}
    routed = _python(script, env=env | {"CELERY_BATCH_QUEUE": "main-batch"})
    assert routed.stdout.split() == ["main-batch", "main-batch", "main", "main"], routed.stderr
    unrouted = _python(script, env=env)
    assert unrouted.stdout.split() == ["main"] * 4, unrouted.stderr


def _python(script: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=clean_env | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "name, value",
    [
        ("RECOMMEND_WRITE_CHUNK", "0"),
        ("RECOMMEND_WRITE_PAUSE_RATIO", "-1"),
        ("RECOMMEND_WRITE_PAUSE_RATIO", "nan"),
    ],
)
def test_bad_batch_write_settings_stop_the_start_with_their_name(name, value):
    result = _manage("check", env={name: value})
    assert result.returncode != 0
    assert name in result.stderr
