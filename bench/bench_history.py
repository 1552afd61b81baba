"""Server time of the task history pages on PostgreSQL with a million generated tasks.

    .venv/bin/python bench/bench_history.py                      # create/fill the database, then measure
    .venv/bin/python bench/bench_history.py --count 200000 --requests 50

The database (default postgres://postgres@127.0.0.1:5432/bench_history, or BENCH_DATABASE_URL) is created
when missing, migrated, and filled with `manage.py generate_tasks` up to --count tasks (an existing fill is
reused). Each page is requested through Django's test client, in process, as a logged-in superuser:
the time covers URL routing, middleware (sessions, auth, CSP), the view, its queries and the template,
but not a network or a WSGI server. Beside each page, its own SELECTs replayed on the same connection,
alternating with the page for the same rounds (bench/_sql_replay.py), and the ratio of the two p50s.
Results are printed as a Markdown table for docs/performance.md. Three floors come first: an empty view
through the whole middleware stack, base.html with nothing in it, and the task list's selector with no
template (bench/_floor_urls.py). --only TEXT runs the pages whose name contains TEXT.
"""

import argparse
import os
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

from _postgres import ensure_database
from _sql_replay import page_and_sql

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_history"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--count", type=int, default=1_000_000, help="tasks to have in the database")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--only", default="", help="run only the pages whose name contains this text")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    ensure_database(args.database_url)

    import django

    django.setup()
    from django.conf import settings

    settings.ROOT_URLCONF = "_floor_urls"  # the site, plus the empty-view and page-chrome floors
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count
    from django.test import Client

    from tasks.history.selectors import _cursor_encode
    from tasks.history.tags import tag_answers
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
    # The other benches' "bench-admin" may be a plain Admin: this one also opens the Django admin.
    admin, _ = User.objects.update_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(admin)

    tags = list(Task.objects.exclude(tag="").values("tag").annotate(n=Count("id")).order_by("-n"))
    big_tag, typical_tag = tags[0], tags[len(tags) // 2]
    task = Task.objects.filter(status="completed", result__isnull=False, events__isnull=False).first()
    deep = Task.objects.order_by("-created_at", "-id").only("id", "created_at")[total // 2]
    deep_cursor = _cursor_encode(deep.created_at, deep.pk)

    # The typical tag's least recently run prompt: what someone picks in its timeline's prompt picker.
    other_prompt = tag_answers(tag=typical_tag["tag"]).prompts[-1]["user_prompt"]

    def tag_url(tag: str) -> str:
        return f"/tags/{quote(tag, safe=':/')}/"

    admin_filter = "provider__exact=claude&status__exact=completed"
    person = Task.objects.exclude(submitted_by=None).values_list("submitted_by", flat=True).first()
    month_ago = (deep.created_at - timedelta(days=30)).date()
    dates = f"date_from={month_ago}&date_to={deep.created_at.date()}"
    pages = [
        ("Floor: empty view through the middleware", "/__floor__/empty/"),
        ("Floor: page chrome (base.html, nothing in it)", "/__floor__/chrome/"),
        ("Floor: the task list's data (its selector, no template, no form)", "/__floor__/list-data/"),
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
        (
            "Tag page, typical tag: picking another prompt (the htmx swap of its timeline)",
            f"{tag_url(typical_tag['tag'])}?prompt={quote(other_prompt)}",
            {"HX-Request": "true"},
        ),
        (f"Tags index ({len(tags):,} tags)", "/tags/"),
        ("Home", "/"),
        ("Django admin changelist, same filter as above", f"/admin/tasks/task/?{admin_filter}"),
        ("Django admin changelist, no filter", "/admin/tasks/task/"),
    ]

    print(f"\n{total:,} tasks on PostgreSQL {connection.cursor().connection.info.server_version}; "
          f"{args.requests} timed requests per page (after 3 warm-up requests).\n")  # fmt: skip
    print("| page | page p50 ms | p95 ms | its SQL p50 ms | page ÷ SQL | queries |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, url, *headers in pages:
        if args.only.lower() not in name.lower():
            continue
        r = page_and_sql(client, url, rounds=args.requests, headers=headers[0] if headers else None)
        print(
            f"| {name} | {r['p50']:.1f} | {r['p95']:.1f} | {r['sql_p50']:.1f} | {r['ratio']:.1f}× "
            f"| {r['queries']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
