import os
import subprocess
import sys
from pathlib import Path

import pytest

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
