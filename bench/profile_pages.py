"""Where each page's time goes: cProfile over repeated requests, the top functions per page.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_history .venv/bin/python bench/profile_pages.py
    (options: --only list,task --requests 20 --top 25 --sort tottime|cumtime)

Uses an existing database (fill it with bench/bench_history.py first). Each page is requested through
Django's test client as a logged-in superuser, after warm-up requests, with cProfile on for --requests
requests; prints the time per request, the share spent in SQL (the database driver's calls) and the
functions with the most own time (or cumulative time with --sort cumtime). Three floors are profiled the same
way: an empty view through the whole middleware stack, base.html with nothing in it, and the task list's
selector with no template (bench/_floor_urls.py).
"""

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")


def pages() -> dict[str, str]:
    """Page name → URL, on whatever data the database holds."""
    from django.db.models import Count

    from tasks.models import Task

    tags = list(Task.objects.exclude(tag="").values("tag").annotate(n=Count("id")).order_by("-n"))
    typical = tags[len(tags) // 2]["tag"] if tags else "none"
    task = Task.objects.filter(status="completed", result__isnull=False).order_by("-created_at").first()
    return {
        "empty": "/__floor__/empty/",
        "chrome": "/__floor__/chrome/",
        "list-data": "/__floor__/list-data/",
        "list": "/tasks/",
        "filtered": "/tasks/?provider=claude&status=completed",
        "task": f"/tasks/{task.pk}/" if task else "/tasks/",
        "tag": f"/tags/{quote(typical, safe=':/')}/",
        "tags": "/tags/",
        "home": "/",
        "spend": "/spend/",
        "spend-last-month": "/spend/?period=last_month",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="", help="comma-separated page names (default: all)")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="tottime", choices=["tottime", "cumtime"])
    args = parser.parse_args()

    import django
    from django.conf import settings

    django.setup()
    settings.ROOT_URLCONF = "_floor_urls"
    from django.contrib.auth import get_user_model
    from django.test import Client

    User = get_user_model()
    admin = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        "bench-admin", password=None
    )
    client = Client()
    client.force_login(admin)

    chosen = {name for name in args.only.split(",") if name}
    for name, url in pages().items():
        if chosen and name not in chosen:
            continue
        for _ in range(3):
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.enable()
        for _ in range(args.requests):
            client.get(url)
        profile.disable()
        per_request = (time.perf_counter() - started) * 1000 / args.requests
        stats = pstats.Stats(profile)
        sql = sum(
            row[3]
            for (filename, _line, func), row in stats.stats.items()  # type: ignore[attr-defined]
            if "psycopg" in filename and func in ("execute", "fetchall", "fetchmany", "fetchone", "__next__")
        )
        sql_ms = sql * 1000 / args.requests
        print(f"\n## {name}  {url}\n{per_request:.1f} ms per request under the profiler; "
              f"{sql_ms:.1f} ms in the driver's execute/fetch calls")  # fmt: skip
        out = io.StringIO()
        pstats.Stats(profile, stream=out).strip_dirs().sort_stats(args.sort).print_stats(args.top)
        lines = out.getvalue().splitlines()
        start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
        print("\n".join(lines[start:]))


if __name__ == "__main__":
    main()
