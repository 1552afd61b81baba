"""The task list's CSV export of every task, streamed: time to the first row, total time, memory growth,
and PostgreSQL's temporary files, for the product's export (on PostgreSQL written by the server with COPY),
the Python writer it replaced there (`export_csv_rows`, still SQLite's), and the way it read before that
(every column, Django's iterator outside a transaction: a WITH HOLD cursor on PostgreSQL).

    .venv/bin/python bench/bench_export.py                       # 1,000,000 tasks on PostgreSQL
    .venv/bin/python bench/bench_export.py --count 200000 --skip-before
    .venv/bin/python bench/bench_export.py --skip-before --skip-python --json   # COPY, then the JSON export
    .venv/bin/python bench/bench_export.py --database-url sqlite:///var/bench_export.sqlite3

The database (default postgres://postgres@127.0.0.1:5432/bench_history, shared with bench_history.py, or
BENCH_DATABASE_URL) is created when missing, migrated and filled with `manage.py generate_tasks` up to --count
tasks. The export is requested through Django's test client in process as a superuser and its streamed body
consumed line by line, as a download would. Memory growth is the peak resident size during the export minus
the resident size before it (Linux: /proc/self/status). Results print as a Markdown table for
docs/performance.md.
"""

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_history"


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    # Writing 5 to clear_refs resets VmHWM (peak resident size) to the current size (Linux >= 4.0).
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _temp_files(connection) -> tuple[int, int]:
    if connection.vendor != "postgresql":
        return 0, 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT temp_files, temp_bytes FROM pg_stat_database WHERE datname = current_database()"
        )
        return cursor.fetchone()


def measure(lines, connection) -> dict:
    """Consume a streamed export: first data row, total time, rows, memory and temporary files."""
    temp_before = _temp_files(connection)
    _reset_peak()
    rss_before = _status_kb("VmRSS")
    started = time.perf_counter()
    first = None
    rows = -1  # the header
    for chunk in lines:
        rows += chunk.count(b"\n") if isinstance(chunk, bytes) else chunk.count("\n")
        if first is None and rows >= 1:
            first = time.perf_counter() - started
    total = time.perf_counter() - started
    time.sleep(0.6)  # pg_stat_database is updated by the server at most every 500 ms
    temp_after = _temp_files(connection)
    return {
        "first": first or total,
        "total": total,
        "rows": rows,
        "growth_mb": max(0, _status_kb("VmHWM") - rss_before) / 1024,
        "temp_files": temp_after[0] - temp_before[0],
        "temp_mb": (temp_after[1] - temp_before[1]) / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--count", type=int, default=1_000_000, help="tasks to have in the database")
    parser.add_argument("--skip-before", action="store_true", help="skip the every-column reading")
    parser.add_argument("--skip-python", action="store_true", help="skip the Python CSV writer")
    parser.add_argument("--json", action="store_true", help="also measure the JSON export")
    parser.add_argument(
        "--compare", action="store_true", help="only hash the COPY and the Python writer's whole outputs"
    )
    parser.add_argument("--rounds", type=int, default=1, help="measure each way this many times, alternating")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    if args.database_url.startswith("postgres"):
        from _postgres import ensure_database

        ensure_database(args.database_url)

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from tasks.csv_export import csv_lines
    from tasks.history.export import EXPORT_COLUMNS, _export_record, csv_rows, export_csv_rows
    from tasks.history.selectors import task_export_queryset
    from tasks.models import Task

    call_command("migrate", verbosity=0)
    existing = Task.objects.count()
    if existing < args.count:
        print(f"Generating {args.count - existing:,} tasks (found {existing:,}) …", flush=True)
        call_command("generate_tasks", count=args.count - existing, seed=existing or 42)
    total = Task.objects.count()

    User = get_user_model()
    admin = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        "bench-admin", password=None
    )
    from django.test import Client

    client = Client()
    client.force_login(admin)

    def product():
        response = client.get("/tasks/export.csv")
        assert response.status_code == 200 and response.streaming
        return response.streaming_content

    def python_writer():
        # The Python CSV writer: SQLite's path, PostgreSQL's before COPY.
        return csv_lines(EXPORT_COLUMNS, export_csv_rows(task_export_queryset(filters={})), cells=True)

    def json_export():
        response = client.get("/tasks/export.json")
        assert response.status_code == 200 and response.streaming
        return response.streaming_content

    def before():
        # The previous reading: every column, the iterator outside any transaction.
        tasks = task_export_queryset(filters={}).iterator(chunk_size=2000)
        records = (
            _export_record(
                {
                    **vars(task),
                    "submitted_by__username": task.submitted_by and task.submitted_by.username,
                    "credential__name": task.credential.name,
                    "status_shown": task.status,  # the stored status, as that reading wrote it
                },
                [label.name for label in task.label_list],
            )
            for task in tasks
        )
        return csv_lines(EXPORT_COLUMNS, csv_rows(records))

    if args.compare:
        import hashlib

        for name, way in [("product (view)", product), ("Python writer", python_writer)]:
            digest, size = hashlib.sha256(), 0
            for chunk in way():
                data = chunk if isinstance(chunk, bytes) else chunk.encode()
                digest.update(data)
                size += len(data)
            print(f"{name}: {size:,} bytes, sha256 {digest.hexdigest()}", flush=True)
        return

    copy = " (COPY)" if connection.vendor == "postgresql" else ""
    ways = [(f"product CSV{copy}: only the exported columns, in one transaction", product)]
    if not args.skip_python and copy:
        ways.append(("Python CSV writer (export_csv_rows), one transaction", python_writer))
    if not args.skip_before:
        ways.append(("before: every column, iterator outside a transaction", before))
    if args.json:
        ways.append(("product JSON (records, one transaction); lines = records", json_export))

    print(f"\n{total:,} tasks on {connection.vendor}; CSV export of every task.\n")
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    print("| reading | first row s | total s | lines | memory growth MB | temp files | temp MB | load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, way in ways * args.rounds:
        r = measure(way(), connection)
        print(
            f"| {name} | {r['first']:.2f} | {r['total']:.1f} | {r['rows']:,} | {r['growth_mb']:.0f} "
            f"| {r['temp_files']} | {r['temp_mb']:.0f} | {os.getloadavg()[0]:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
