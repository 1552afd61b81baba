"""Server time of the spend page on PostgreSQL with a million tasks.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_spend .venv/bin/python bench/bench_spend.py
    (options: --tasks 1000000 --runs 30 --regenerate --no-rollup)

Uses (and keeps) the database named in DATABASE_URL: it must be a scratch database. The first run
migrates it and fills it with `manage.py generate_tasks` (a year of realistic tasks), then VACUUM
ANALYZE; later runs reuse the rows. Then it brings the daily spend rollup up to date
(`manage.py rollup_spend`, idempotent) and times it; --no-rollup makes the page ignore the rollup
and read every task, as before it existed. Each variant of the page is requested through Django's test client
in this process, so the time is the server's: middleware, the queries and the template rendering,
without the network. Prints p50/p95 per variant, the page's own SELECTs replayed alternately on the same
connection (p50, bench/_sql_replay.py), their ratio and the number of SQL queries.
"""

import argparse
import io
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django
from _postgres import tasks_filled
from _sql_replay import page_and_sql

VARIANTS = [
    ("this month (default)", {}),
    ("last month", {"period": "last_month"}),
    ("last 30 days, by week", {"period": "last_30", "by": "week"}),
    ("last 7 days", {"period": "last_7"}),
    (
        "custom 90 days, by month",
        {"period": "custom", "date_from": "{d90}", "date_to": "{today}", "by": "month"},
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--regenerate", action="store_true", help="Delete the tasks and generate them again.")
    parser.add_argument("--no-rollup", action="store_true", help="Read every task, ignoring the rollup.")
    args = parser.parse_args()

    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit(
            "Set DATABASE_URL to a scratch PostgreSQL database, e.g. postgres://postgres@127.0.0.1:5432/bench_spend"
        )
    django.setup()

    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from tasks.models import SpendDay
    from tasks.spend import figures
    from tasks.spend.forms import SpendFilterForm
    from tasks.spend.reports import spend_total

    total = tasks_filled(args.tasks, regenerate=args.regenerate)

    started = time.perf_counter()
    call_command("rollup_spend", stdout=io.StringIO())
    print(
        f"Spend rollup brought up to date in {time.perf_counter() - started:.1f} s: "
        f"{SpendDay.objects.count():,} rows through {figures.rolled_through()}"
    )
    if args.no_rollup:
        figures.rolled_through = lambda: None

    admin, _ = get_user_model().objects.get_or_create(username="bench-admin")
    admin.groups.add(Group.objects.get(name="Admins"))
    client = Client()
    client.force_login(admin)

    today = timezone.localdate()
    source = "every task read (--no-rollup)" if args.no_rollup else "rollup for settled days"
    print(f"\nSpend page, {total:,} tasks on PostgreSQL, {source}")
    print(f"{args.runs} requests per variant (after 3 warm-ups)")
    print(
        f"{'variant':32} {'p50 ms':>8} {'p95 ms':>8} {'SQL p50':>8} {'ratio':>6} {'queries':>8} {'tasks':>10}"
    )
    for name, params in VARIANTS:
        query = {k: v.format(today=today, d90=today - timedelta(days=89)) for k, v in params.items()}
        r = page_and_sql(client, reverse("spend:page"), rounds=args.runs, params=query)
        form = SpendFilterForm(query)
        tasks_in_period = spend_total(period=form.chosen_period()).tasks
        print(
            f"{name:32} {r['p50']:8.1f} {r['p95']:8.1f} {r['sql_p50']:8.1f} {r['ratio']:7.1f}× "
            f"{r['queries']:8d} {tasks_in_period:8,}",
            flush=True,
        )


if __name__ == "__main__":
    main()
