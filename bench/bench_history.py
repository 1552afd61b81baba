"""Server time of the task history pages on PostgreSQL with a million generated tasks.

    .venv/bin/python bench/bench_history.py                      # create/fill the database, then measure
    .venv/bin/python bench/bench_history.py --count 200000 --requests 50

The database (default postgres://postgres@127.0.0.1:5432/bench_history, or BENCH_DATABASE_URL) is created
when missing, migrated, and filled with `manage.py generate_tasks` up to --count tasks (an existing fill is
reused). Each page is requested through Django's test client, in process, as a logged-in superuser:
the time covers URL routing, middleware (sessions, auth, CSP), the view, its queries and the template,
but not a network or a WSGI server. Results are printed as a Markdown table for docs/performance.md.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

from _postgres import ensure_database

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_history"


def measure(client, url: str, requests: int) -> dict:
    from django.db import connection

    for _ in range(3):  # warm caches, connection and template loading
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        client.get(url)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url)
        if getattr(response, "streaming", False):
            b"".join(response.streaming_content)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "p50": statistics.median(times),
        "p95": times[min(len(times) - 1, int(len(times) * 0.95))],
        "queries": len(queries),
        "bytes": len(response.content),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--count", type=int, default=1_000_000, help="tasks to have in the database")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    ensure_database(args.database_url)

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count
    from django.test import Client

    from tasks.history.selectors import _cursor_encode
    from tasks.models import Task

    assert connection.vendor == "postgresql", "the benchmark is meant for PostgreSQL"
    call_command("migrate", verbosity=0)
    existing = Task.objects.count()
    if existing < args.count:
        print(f"Generating {args.count - existing:,} tasks (found {existing:,}) …", flush=True)
        call_command("generate_tasks", count=args.count - existing, seed=existing or 42)
    total = Task.objects.count()
    # Home reads this month's spend through the spend rollup, as a running worker keeps it (idempotent).
    call_command("rollup_spend", verbosity=0)

    User = get_user_model()
    admin = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        "bench-admin", password=None
    )
    client = Client()
    client.force_login(admin)

    tags = list(Task.objects.exclude(tag="").values("tag").annotate(n=Count("id")).order_by("-n"))
    big_tag, typical_tag = tags[0], tags[len(tags) // 2]
    task = Task.objects.filter(status="completed", result__isnull=False, events__isnull=False).first()
    deep = Task.objects.order_by("-created_at", "-id").only("id", "created_at")[total // 2]
    deep_cursor = _cursor_encode(deep.created_at, deep.pk)

    def tag_url(tag: str) -> str:
        return f"/tags/{quote(tag, safe=':/')}/"

    admin_filter = "provider__exact=claude&status__exact=completed"
    person = Task.objects.exclude(submitted_by=None).values_list("submitted_by", flat=True).first()
    month_ago = (deep.created_at - timedelta(days=30)).date()
    dates = f"date_from={month_ago}&date_to={deep.created_at.date()}"
    pages = [
        ("Task list, first page", "/tasks/"),
        ("Task list, page in the middle (seek cursor)", f"/tasks/?after={deep_cursor}"),
        ("Filtered: provider=claude&status=completed", "/tasks/?provider=claude&status=completed"),
        (f"Filtered: tag with {big_tag['n']:,} tasks", f"/tasks/?tag={quote(big_tag['tag'])}"),
        ("Filtered: person + date range + cost_min", f"/tasks/?person={person}&{dates}&cost_min=0.001"),
        ("Filtered: text search, common word (q=Globex)", "/tasks/?q=Globex"),
        ("Filtered: text search, rare word (q=zeppelin)", "/tasks/?q=zeppelin"),
        ("Sorted by cost (-cost)", "/tasks/?sort=-cost"),
        ("Task page (completed, with events and raw JSON)", f"/tasks/{task.pk}/"),
        (f"Tag page, largest tag ({big_tag['n']:,} tasks)", tag_url(big_tag["tag"])),
        (f"Tag page, typical tag ({typical_tag['n']:,} tasks)", tag_url(typical_tag["tag"])),
        (f"Tags index ({len(tags):,} tags)", "/tags/"),
        ("Home", "/"),
        ("Django admin changelist, same filter as above", f"/admin/tasks/task/?{admin_filter}"),
        ("Django admin changelist, no filter", "/admin/tasks/task/"),
    ]

    print(f"\n{total:,} tasks on PostgreSQL {connection.cursor().connection.info.server_version}; "
          f"{args.requests} timed requests per page (after 3 warm-up requests).\n")  # fmt: skip
    print("| page | p50 ms | p95 ms | queries |")
    print("|---|---:|---:|---:|")
    for name, url in pages:
        result = measure(client, url, args.requests)
        print(f"| {name} | {result['p50']:.1f} | {result['p95']:.1f} | {result['queries']} |", flush=True)


if __name__ == "__main__":
    main()
