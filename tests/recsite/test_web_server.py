"""The web server the README runs in production (granian) serves the project: requests with
and without a body reach Django with production settings, behind the TLS proxy."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.recsite.test_settings import PRODUCTION_ENV, ROOT

pytestmark = pytest.mark.slow  # starts granian with production settings


@pytest.fixture
def granian(tmp_path):
    port = free_port()
    inherited = ("SECRET_KEY", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_SETTINGS_MODULE")
    env = {k: v for k, v in os.environ.items() if k not in inherited} | PRODUCTION_ENV
    env |= {
        "ALLOWED_HOSTS": "127.0.0.1",
        "BEHIND_TLS_PROXY": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    log = (tmp_path / "granian.log").open("wb")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("granian")),
            "--interface",
            "wsgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--blocking-threads",
            "1",
            "recsite.wsgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its workers too are stopped with the group
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                _request(url + "/api/v1/schema/")  # any answer will do
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail((tmp_path / "granian.log").read_text()[-3000:])
                time.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _request(url: str, *, data: bytes | None = None, headers: dict | None = None):
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_granian_serves_the_api_with_production_settings(granian):
    proxied = {"X-Forwarded-Proto": "https"}

    status, headers, body = _request(
        granian + "/api/v1/recommendations/?placement=for-you", headers=proxied
    )
    assert status == 401 and "Authorization" in json.loads(body)["message"]
    assert headers["X-Content-Type-Options"] == "nosniff"

    events = json.dumps([{"user_id": "u1", "item_id": "i1", "event_type": "view"}]).encode()
    status, _, body = _request(
        granian + "/api/v1/events/",
        data=events,
        headers=proxied | {"Content-Type": "application/json"},
    )
    assert status == 401 and "Authorization" in json.loads(body)["message"]

    # Not through the proxy: production sends the browser to HTTPS.
    status, headers, _ = _request(granian + "/api/v1/schema/")
    assert status == 301 and headers["Location"].startswith("https://127.0.0.1")
