"""A scheduler in a process of its own, ticking over a simulated clock, for the concurrency tests.

    python -m tests.monitors.scheduler_process --start ISO --days N --step-minutes M [--start-file PATH]

Each process ticks at start, start + M minutes, … for N days (the same moments in every process, so
several of them race for the same slots), after waiting for PATH to exist so they start together. The
environment names the database (DATABASE_URL).
"""

import argparse
import os
import time
from datetime import datetime, timedelta
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--start", required=True)
    parser.add_argument("--days", type=float, default=10)
    parser.add_argument("--step-minutes", type=float, default=30)
    parser.add_argument("--start-file")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from tasks.monitors.scheduler import scheduler_tick

    if args.start_file:
        while not Path(args.start_file).exists():
            time.sleep(0.01)
    now = datetime.fromisoformat(args.start)
    end = now + timedelta(days=args.days)
    claimed = 0
    while now <= end:
        claimed += scheduler_tick(now=now).claimed
        now += timedelta(minutes=args.step_minutes)
    print(f"claimed {claimed}")


if __name__ == "__main__":
    main()
