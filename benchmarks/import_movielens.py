"""Import MovieLens-100k (users, items, 100,000 interactions) into a fresh database, twice.

The target is under 30 s into PostgreSQL; the second run shows the cost of an idempotent
re-import (nothing created, nothing changed). Each database is made for the run and dropped.

    python benchmarks/import_movielens.py [--postgres postgres://postgres@127.0.0.1:5432]
                                          [--data DIR] [--no-write]
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.results import section_write, stamp  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared/data/movielens-100k"
SCRATCH_DB = "recsite_bench_import"
EXPECTED = {"users": 943, "items": 1682, "interactions": 100_000}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def manage(*args: str, database_url: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=os.environ | {"DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - started, result.stdout


def counts(database_url: str) -> dict[str, int]:
    code = (
        "from recommendations.models import EndUser, Item, Interaction;"
        "print(EndUser.objects.count(), Item.objects.count(), Interaction.objects.count())"
    )
    _, out = manage("shell", "--no-imports", "-c", code, database_url=database_url)
    return dict(zip(EXPECTED, map(int, out.split()), strict=True))


def measure(database_url: str, data: Path) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of the `import_data` process, for the first import and the re-import,
    then of a process that starts Django and does nothing (what the first two include)."""
    manage("migrate", "--noinput", database_url=database_url)
    files = ["--users", str(data / "users.csv"), "--items", str(data / "items.csv")]
    files += ["--interactions", str(data / "interactions.csv")]
    seconds = []
    for _ in range(2):
        cpu = children_cpu()
        elapsed, _ = manage("import_data", "-v0", *files, database_url=database_url)
        seconds.append((elapsed, children_cpu() - cpu))
        found = counts(database_url)
        if found != EXPECTED:
            raise SystemExit(f"expected {EXPECTED}, found {found}")
    cpu = children_cpu()
    elapsed, _ = manage("shell", "--no-imports", "-c", "pass", database_url=database_url)
    seconds.append((elapsed, children_cpu() - cpu))
    return seconds


def postgres(server_url: str, data: Path) -> list[tuple[float, float]]:
    import psycopg

    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB}")
        conn.execute(f"CREATE DATABASE {SCRATCH_DB}")
    try:
        return measure(f"{server_url}/{SCRATCH_DB}", data)
    finally:
        with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)")


def sqlite(data: Path) -> list[tuple[float, float]]:
    with tempfile.TemporaryDirectory() as folder:
        return measure(f"sqlite:///{folder}/import.sqlite3", data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("MOVIELENS_DIR", DEFAULT_DATA))
    )
    parser.add_argument("--no-write", dest="write", action="store_false")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    rows = [("PostgreSQL", postgres(args.postgres, args.data)), ("SQLite", sqlite(args.data))]
    load_after = os.getloadavg()[0]
    lines = [
        "## Importing MovieLens-100k",
        "",
        stamp("python benchmarks/import_movielens.py"),
        "",
        "Seconds of one `manage.py import_data -v0` process (Django's start included, "
        "`migrate` not) for 943 users, 1,682 items and 100,000 interactions into a fresh, "
        "migrated database, wall clock and the process's own CPU; the second run re-imports "
        "the same files and must create and change nothing. The last column is a process "
        "that starts Django and does nothing, which both imports include. Progress bars, "
        "`REDIS_URL` and `DEBUG` change none of these (the import queues no task). "
        "Target: under 30 s into PostgreSQL.",
        "",
        "| database | first import s | its CPU s | re-import s | its CPU s | start only s "
        "| rows after each run |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, ((first, first_cpu), (second, second_cpu), (start, _)) in rows:
        lines.append(
            f"| {name} | {first:.1f} | {first_cpu:.1f} | {second:.1f} | {second_cpu:.1f} "
            f"| {start:.1f} | 943 / 1,682 / 100,000 |"
        )
    lines += [
        "",
        f"PostgreSQL's own CPU is not in the CPU columns. Load average (1 minute) before and "
        f"after: {load_before:.2f} and {load_after:.2f}; on a busy 2-core host the wall-clock "
        "figures grow toward twice these.",
    ]
    body = "\n".join(lines)
    print(body)
    if args.write:
        section_write("import", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
