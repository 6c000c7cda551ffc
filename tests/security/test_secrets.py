"""Secrets come from the environment only: production settings hold none of their own, platform
connections store the name of a variable (never its value), and no file of the project holds
a real-looking key."""

import ast
import collections
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from bulletins.models import PlatformConnection
from bulletins.services.platforms import PlatformNotConfigured, platform_config

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_SECRET_KEY = "p" * 30 + "-production-secret-key-for-the-scan"
PRODUCTION_ENV = {
    "RECSITE_ENV": "production",
    "SECRET_KEY": PRODUCTION_SECRET_KEY,
    "ALLOWED_HOSTS": "news.example.com",
}
# A setting (or a key inside one) named like this holds a secret.
SECRET_NAME = re.compile(
    r"(SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL)", re.IGNORECASE
)
# What a real key, token or credential looks like in text.
SECRET_SHAPES = {
    "recsite secret API key": re.compile(r"rs_sk_[A-Za-z0-9_-]{20,}"),
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"),
    "SendGrid key": re.compile(r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\b"),
    "Stripe live key": re.compile(r"\b[sr]k_live_[A-Za-z0-9]{20,}"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "password in a URL": re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:[^/\s@'\"]+@"),
}
# Folders of the project tree that are not the project's own files.
NOT_SCANNED = {".venv", "var", "node_modules", ".git", "__pycache__", ".ruff_cache",
               ".pytest_cache", "build", "dist"}  # fmt: skip

# Dumps every setting's string leaves as [path, value] pairs.
SETTINGS_DUMP = """
import json
from pathlib import PurePath
from django.conf import settings

def leaves(value, path):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from leaves(inner, f"{path}.{key}")
    elif isinstance(value, (list, tuple, set)):
        for index, inner in enumerate(value):
            yield from leaves(inner, f"{path}[{index}]")
    elif isinstance(value, (str, PurePath)):
        yield path, str(value)

names = [name for name in dir(settings) if name.isupper()]
print(json.dumps([pair for name in names for pair in leaves(getattr(settings, name), name)]))
"""


def _production_settings() -> list[tuple[str, str]]:
    """Every string in the settings, as production loads them with nothing but the three
    required variables set (the process's own environment left out, as a server's would)."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR"}
    env = {key: value for key, value in os.environ.items() if key in keep} | PRODUCTION_ENV
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", SETTINGS_DUMP],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return [tuple(pair) for pair in json.loads(result.stdout.strip().splitlines()[-1])]


def _looks_random(text: str) -> list[str]:
    """Runs that look like generated keys: long hex, or long base64 with a key's entropy
    (class names such as `BCryptSHA256PasswordHasher` stay well below it)."""
    found = re.findall(r"\b[0-9a-f]{32,}\b", text)
    for run in re.findall(r"[A-Za-z0-9+/_=-]{32,}", text):
        counts = collections.Counter(run)
        entropy = -sum(n / len(run) * math.log2(n / len(run)) for n in counts.values())
        if entropy >= 4.3:
            found.append(run)
    return found


@pytest.fixture(scope="module")
def production_settings() -> list[tuple[str, str]]:
    return _production_settings()


def test_production_settings_hold_no_secret_but_the_one_from_the_environment(
    production_settings,
):
    held = []
    for path, value in production_settings:
        last = re.split(r"[.\[]", path)[-1]
        if path.endswith("]") or not SECRET_NAME.search(last):
            continue  # list entries (hasher class paths) and names that are no secret
        if value and not (path == "SECRET_KEY" and value == PRODUCTION_SECRET_KEY):
            held.append(f"{path} = {value[:12]}…")
    assert not held, f"secrets with a default in production: {held}"
    assert ("SECRET_KEY", PRODUCTION_SECRET_KEY) in production_settings


def test_no_production_setting_looks_like_a_key_or_holds_a_credential(production_settings):
    suspicious = []
    for path, value in production_settings:
        if path == "SECRET_KEY":
            continue
        suspicious += [
            f"{path}: {kind}" for kind, shape in SECRET_SHAPES.items() if shape.search(value)
        ]
        suspicious += [f"{path}: looks like a key ({run[:8]}…)" for run in _looks_random(value)]
    assert not suspicious, suspicious


def test_settings_read_every_secret_from_the_environment_without_a_default():
    """In the source: each `env.<type>("NAME", default=...)` whose NAME is a secret's has an
    empty default, so a missing variable is an empty secret, never a built-in one."""
    tree = ast.parse((ROOT / "recsite" / "settings.py").read_text())
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "env"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ]
    assert len(calls) > 40  # the walk sees the settings
    numbers = {"int", "float", "bool"}  # API_KEY_CACHE_SECONDS is no secret
    secret_calls = [
        call
        for call in calls
        if SECRET_NAME.search(call.args[0].value) and call.func.attr not in numbers
    ]
    assert "SECRET_KEY" in {call.args[0].value for call in secret_calls}
    for call in secret_calls:
        defaults = [kw.value for kw in call.keywords if kw.arg == "default"]
        for default in defaults:
            assert isinstance(default, ast.Constant) and default.value in ("", None), (
                f"{call.args[0].value} has a built-in default"
            )


def test_the_development_key_file_is_never_committed():
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "/var/" in ignored or "var/" in ignored


def test_no_file_of_the_project_holds_a_real_looking_secret():
    found = []
    scanned = 0
    for path in _project_files(ROOT):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary
        scanned += 1
        for kind, shape in SECRET_SHAPES.items():
            for match in shape.finditer(text):
                if kind == "password in a URL" and _placeholder_credentials(match.group(0)):
                    continue
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(ROOT)}:{line}: {kind}")
    assert scanned > 100  # the walk reaches the project's files
    assert not found, "\n".join(found)


def _project_files(root: Path):
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [
            name
            for name in subdirectories
            if name not in NOT_SCANNED and not name.endswith(".egg-info")
        ]
        for name in files:
            path = Path(directory) / name
            if path.stat().st_size <= 2_000_000:
                yield path


def _placeholder_credentials(url: str) -> bool:
    """Documentation's `postgres://user:pass@host`, `smtp://user:...@`: placeholders."""
    credentials = url.split("://", 1)[1].rsplit("@", 1)[0]
    user, _, password = credentials.partition(":")
    placeholders = {"user", "pass", "password", "...", "…", "secret", "recsite", "postgres"}
    return password in placeholders or password.startswith(("$", "<", "{", "...", "…"))


def test_the_shapes_catch_what_they_are_meant_to():
    """The scanner's own check: made-up secrets of each kind are caught."""
    samples = {
        "recsite secret API key": "rs_sk_" + "Zq3_x9" * 7,
        "AWS access key id": "AKIA" + "Q7ZP2M4K8W6N3R5T",
        "private key": "-----BEGIN RSA " + "PRIVATE KEY-----",
        "password in a URL": "postgres://app:" + "hunter22@db:5432/x",
    }
    for kind, sample in samples.items():
        assert SECRET_SHAPES[kind].search(sample), kind
    assert _looks_random("a7f3c9e2b1d04f6a8c5e7b9d2f1a3c5e")
    assert _looks_random("Xk9_pQ2vL7-mZ4rT8wY1nB6cJ3hF0sD5gA2eU9iO")
    assert not _looks_random("django.contrib.auth.hashers.BCryptSHA256PasswordHasher")


# Platform connections -------------------------------------------------------------------


def test_platform_connections_store_the_name_of_a_variable_never_a_secret():
    names = {field.name for field in PlatformConnection._meta.get_fields()}
    secret_named = {name for name in names if SECRET_NAME.search(name)}
    assert secret_named == {"credential_env"}
    field = PlatformConnection._meta.get_field("credential_env")
    assert field.max_length <= 100


@pytest.mark.django_db
def test_a_connections_secret_is_read_from_the_environment_when_sending(monkeypatch):
    connection = PlatformConnection(
        name="esp",
        kind=PlatformConnection.Kind.SENDGRID,
        options={"from_email": "news@example.com"},
        credential_env="RECSITE_TEST_SENDGRID_KEY",
    )
    monkeypatch.delenv("RECSITE_TEST_SENDGRID_KEY", raising=False)
    with pytest.raises(PlatformNotConfigured, match="RECSITE_TEST_SENDGRID_KEY"):
        platform_config(connection)
    monkeypatch.setenv("RECSITE_TEST_SENDGRID_KEY", "from-the-environment")
    assert platform_config(connection)["api_key"] == "from-the-environment"


@pytest.mark.django_db
@pytest.mark.parametrize("option", ["api_key", "secret"])
def test_a_secret_in_a_connections_options_is_refused(option):
    connection = PlatformConnection(
        name="hook",
        kind=PlatformConnection.Kind.WEBHOOK,
        options={"url": "https://hooks.example.com/x", option: "s3cr3t"},
        credential_env="HOOK_SECRET",
    )
    with pytest.raises(ValidationError, match="environment variable"):
        connection.full_clean()


@pytest.mark.django_db
def test_admin_shows_whether_the_secret_is_set_never_its_value(admin_client, monkeypatch):
    monkeypatch.setenv("RECSITE_TEST_HOOK_SECRET", "never-shown-in-admin")
    connection = PlatformConnection.objects.create(
        name="hook",
        kind=PlatformConnection.Kind.WEBHOOK,
        options={"url": "https://hooks.example.com/x"},
        credential_env="RECSITE_TEST_HOOK_SECRET",
    )
    for url in (
        "/admin/bulletins/platformconnection/",
        f"/admin/bulletins/platformconnection/{connection.pk}/change/",
    ):
        response = admin_client.get(url)
        assert response.status_code == 200
        assert b"never-shown-in-admin" not in response.content


@pytest.mark.django_db
def test_a_secret_pasted_instead_of_a_variable_name_is_refused():
    connection = PlatformConnection(
        name="esp",
        kind=PlatformConnection.Kind.SENDGRID,
        options={"from_email": "news@example.com"},
        credential_env="SG.k3y-pasted-here.Zq9xVb2",
    )
    with pytest.raises(ValidationError):
        connection.full_clean()


@pytest.mark.django_db
@pytest.mark.parametrize("variable", ["SECRET_KEY", "DATABASE_URL", "AWS_SECRET_ACCESS_KEY"])
def test_a_connection_cannot_borrow_the_services_own_secrets(variable):
    connection = PlatformConnection(
        name="esp",
        kind=PlatformConnection.Kind.SENDGRID,
        options={"from_email": "news@example.com", "base_url": "https://collector.example"},
        credential_env=variable,
    )
    with pytest.raises(ValidationError):
        connection.full_clean()
