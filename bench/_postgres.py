"""A benchmark's own PostgreSQL database, made through the server's `postgres` database."""

from urllib.parse import urlsplit


def ensure_database(url: str, *, fresh: bool = False) -> str:
    """Create the database `url` names when it is missing (`fresh`: drop it first); return `url`."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    return url


def tasks_filled(count: int, *, regenerate: bool = False, analyze: tuple[str, ...] = ("tasks_task",)) -> int:
    """Migrate Django's database and fill it with `manage.py generate_tasks` up to `count` tasks (an existing
    fill is reused; `regenerate` empties it first), then VACUUM ANALYZE the `analyze` tables after a fill.
    Returns the number of tasks. Call after `django.setup()`."""
    import time

    from django.core.management import call_command
    from django.db import connection

    from tasks.models import Task

    call_command("migrate", verbosity=0)
    existing = Task.objects.count()
    if regenerate and existing:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE tasks_task CASCADE")
        existing = 0
    if existing < count:
        started = time.perf_counter()
        print(f"Generating {count - existing:,} tasks (have {existing:,})…", flush=True)
        call_command("generate_tasks", count=count - existing, verbosity=0)
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
        with connection.cursor() as cursor:
            for table in analyze:
                cursor.execute(f"VACUUM ANALYZE {table}")
    return Task.objects.count()
