"""Server time of the visibility pages on PostgreSQL with a million tasks.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_vis_history \
        .venv/bin/python bench/bench_visibility.py
    (options: --tasks 1000000 --runs 30 --regenerate --no-rollup --only TEXT --profile)

Uses (and keeps) the database named in DATABASE_URL: it must be a scratch database. The first run migrates
it and fills it with `manage.py generate_tasks` (a year of tasks, the demo brand set reading every tag and
the mentions of each answer), then VACUUM ANALYZE; later runs reuse the rows. The spend and visibility
rollups are brought up to date (idempotent); --no-rollup makes the pages read every mention instead.
Pages are requested through Django's test client in this process (server time: middleware, queries,
template). Prints p50/p95 per page, its SELECTs replayed (bench/_sql_replay.py) and the answers behind it.
--profile instead runs cProfile over --runs requests of each chosen page and prints the functions with the
most own time, and the share of the time in the database driver.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--regenerate", action="store_true", help="Delete the tasks and generate them again.")
    parser.add_argument("--no-rollup", action="store_true", help="Read every mention, ignoring the rollup.")
    parser.add_argument(
        "--only", default="", help="Run only the pages whose name contains this text (TEXT|TEXT: either)."
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the pages instead of timing them.")
    parser.add_argument("--top", type=int, default=25, help="Functions shown per page with --profile.")
    parser.add_argument("--sort", default="tottime", choices=["tottime", "cumtime"], help="With --profile.")
    args = parser.parse_args()

    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit(
            "Set DATABASE_URL to a scratch PostgreSQL database, e.g. postgres://postgres@127.0.0.1:5432/bench_vis"
        )
    django.setup()

    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db.models import Count
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from tasks.models import BrandMention, BrandSet, Task, VisibilityDay
    from tasks.visibility import selectors
    from tasks.visibility.rollup import visibility_rollup

    total = tasks_filled(
        args.tasks,
        regenerate=args.regenerate,
        analyze=("tasks_task", "tasks_brandmention", "tasks_visibilityday"),
    )
    call_command("rollup_spend", stdout=io.StringIO())
    started = time.perf_counter()
    visibility_rollup()
    brand_set = BrandSet.objects.get(name="Demo brands")
    print(
        f"Visibility rollup up to date in {time.perf_counter() - started:.1f} s: "
        f"{VisibilityDay.objects.count():,} rows through {brand_set.rolled_through}; "
        f"{BrandMention.objects.count():,} mention rows"
    )
    if args.no_rollup:
        selectors.rolled_through = lambda: None

    admin, _ = get_user_model().objects.get_or_create(username="bench-admin")
    admin.groups.add(Group.objects.get(name="Admins"))
    client = Client()
    client.force_login(admin)

    today = timezone.localdate()
    d90 = (today - timedelta(days=89)).isoformat()
    largest = Task.objects.exclude(tag="").values("tag").annotate(n=Count("pk")).order_by("-n").first()["tag"]
    set_url = reverse("visibility:set_page", args=[brand_set.pk])
    acme = brand_set.brands.get(name="Acme")
    pages = [
        (
            "set, 90 days by week",
            set_url,
            {"period": "custom", "date_from": d90, "date_to": today, "by": "week"},
        ),
        (
            "set, 90 days by day",
            set_url,
            {"period": "custom", "date_from": d90, "date_to": today, "by": "day"},
        ),
        ("set, this month (default)", set_url, {}),
        ("largest tag, this month", reverse("visibility:tag_page", kwargs={"tag": largest}), {}),
        (
            "largest tag, 90 days by week",
            reverse("visibility:tag_page", kwargs={"tag": largest}),
            {"period": "custom", "date_from": d90, "date_to": today, "by": "week"},
        ),
        (
            "answers behind Acme, 90 days",
            reverse("visibility:answers", args=[brand_set.pk]),
            {"brand": acme.pk, "figure": "mentioned", "date_from": d90, "date_to": today},
        ),
        (
            "CSV export, 90 days by day",
            reverse("visibility:set_export", args=[brand_set.pk]),
            {"period": "custom", "date_from": d90, "date_to": today, "by": "day"},
        ),
        ("tags index (/tags/)", reverse("history:tag_list"), {}),
        ("largest tag's history page", reverse("history:tag_detail", kwargs={"tag": largest}), {}),
    ]
    if args.only:
        pages = [page for page in pages if any(part in page[0] for part in args.only.split("|"))]
    if args.profile:
        for name, url, params in pages:
            _profile(
                client,
                name,
                url,
                {k: str(v) for k, v in params.items()},
                runs=args.runs,
                top=args.top,
                sort=args.sort,
            )
        return
    source = "every mention read (--no-rollup)" if args.no_rollup else "rollup for settled days"
    print(f"\nVisibility pages, {total:,} tasks on PostgreSQL, {source}; largest tag {largest}")
    print(f"{args.runs} requests per page (after 3 warm-ups)")
    print(f"{'page':34} {'p50 ms':>8} {'p95 ms':>8} {'SQL p50':>8} {'ratio':>6} {'queries':>8}")
    for name, url, params in pages:
        params = {k: str(v) for k, v in params.items()}
        r = page_and_sql(client, url, rounds=args.runs, params=params)
        print(
            f"{name:34} {r['p50']:8.1f} {r['p95']:8.1f} {r['sql_p50']:8.1f} {r['ratio']:7.1f}× "
            f"{r['queries']:8d}",
            flush=True,
        )


def _profile(client, name: str, url: str, params: dict, *, runs: int, top: int, sort: str) -> None:
    """cProfile over `runs` requests (after 3 warm-ups): time per request, the database driver's share,
    and the functions with the most own (or cumulative) time."""
    import cProfile
    import pstats

    def request():
        response = client.get(url, params)
        if getattr(response, "streaming", False):
            b"".join(response.streaming_content)  # a CSV is written as it is read

    for _ in range(3):
        request()
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(runs):
        request()
    profiler.disable()
    elapsed = (time.perf_counter() - started) / runs * 1000
    stats = pstats.Stats(profiler)
    driver = sum(
        row[2]
        for func, row in stats.stats.items()
        if "psycopg" in func[0] or (func[0] == "~" and "psycopg" in func[2])
    )
    print(
        f"\n{name}: {elapsed:.1f} ms per request under cProfile, "
        f"database driver {driver / runs * 1000:.1f} ms"
    )
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats(sort).print_stats(top)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    print("\n".join(lines[start : start + top + 1]), flush=True)


if __name__ == "__main__":
    main()
