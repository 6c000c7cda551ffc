"""The WSGI server under test (granian, or gunicorn with a worker class): starting it with
production settings, waiting until it answers, stopping it; CPU accounting from /proc."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from benchmarks.api_load.config import PROXY_HEADERS, REPO, BenchError
from benchmarks.api_load.services import django_env


@dataclass(frozen=True)
class WorkerModel:
    """The server and its workers: `granian:2:1` (granian, 2 worker processes with 1 Python
    thread each), or a gunicorn worker class: `sync:3`, `gthread:2:4`."""

    worker_class: str  # "granian", or gunicorn's worker class
    workers: int
    threads: int

    @classmethod
    def parse(cls, text: str) -> WorkerModel:
        name, workers, *threads = text.split(":")
        return cls(name, int(workers), int(threads[0]) if threads else 1)

    @property
    def server(self) -> str:
        return "granian" if self.worker_class == "granian" else "gunicorn"

    def __str__(self) -> str:
        threads = f" × {self.threads} threads" if self.threads > 1 else ""
        if self.server == "granian":
            return f"granian, {self.workers} workers{threads or ' × 1 thread'}"
        return f"gunicorn, {self.workers} `{self.worker_class}` workers{threads}"

    def command(self, port: int, log: Path) -> list[str]:
        bin_dir = Path(sys.executable).parent
        if self.server == "granian":
            return [
                str(bin_dir / "granian"),
                "--interface",
                "wsgi",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(self.workers),
                "--blocking-threads",
                str(self.threads),
                "--backlog",
                "2048",
                "--no-ws",
                "--log-level",
                "warning",
                "recsite.wsgi:application",
            ]
        return [
            str(bin_dir / "gunicorn"),
            "recsite.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            self.worker_class,
            "--threads",
            str(self.threads),
            "--backlog",
            "2048",
            "--log-level",
            "warning",
            "--error-logfile",
            str(log),
        ]


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    log: Path
    command: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The master and its workers."""
        pids = [self.process.pid]
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            pids += [int(pid) for pid in children.read_text().split()]
        except OSError:
            pass
        return pids

    def cpu_seconds(self) -> float:
        return sum(process_cpu_seconds(pid) for pid in self.pids())


def process_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds over all cores since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / tick, sum(values) / tick


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_start(
    stack: contextlib.ExitStack, database_url: str, folder: Path, model: WorkerModel
) -> Server:
    port = free_port()
    env = django_env(database_url, folder)
    # Production settings, as behind the TLS proxy the README asks for: DEBUG off, the
    # production middleware and headers; the proxy's X-Forwarded-Proto is sent by the client.
    env.update(
        RECSITE_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        BEHIND_TLS_PROXY="true",
    )
    env.pop("DEBUG", None)
    log = folder / f"{model.server}-{port}.log"
    command = model.command(port, log)
    with log.open("ab") as output:  # granian logs to its standard error
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process=process, port=port, log=log, command=command)
    stack.callback(server_stop, server)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{model.server} exited with {process.returncode}:\n{log_tail(log)}")
        try:
            http_get(server, "/api/v1/events/", {})
            return server
        except urllib.error.HTTPError:
            return server  # it answers (405 or 401 is fine here)
        except OSError:
            time.sleep(0.25)
    raise BenchError(f"{model.server} did not answer within 60 s:\n{log_tail(log)}")


def background_stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def server_stop(server: Server) -> None:
    if server.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=10)


def log_tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text().splitlines()[-lines:])
    except OSError:
        return "(no log)"


def http_get(server: Server, path: str, headers: dict) -> tuple[int, bytes]:
    request = urllib.request.Request(server.url + path, headers={**PROXY_HEADERS, **headers})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()
