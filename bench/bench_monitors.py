"""The monitors' scheduler: a tick's cost at 10 and at 10,000 monitors, making runs, and slot-exactness
under 4 concurrent schedulers.

    .venv/bin/python bench/bench_monitors.py                   # SQLite in a temp dir
    .venv/bin/python bench/bench_monitors.py --database-url postgres://postgres@127.0.0.1:5432/bench_monitors

1. "due query": `monitors_due` (the one indexed query, partial index `monitor_due`), with 10 and then
   10,000 active monitors whose next slots are spread over the coming 30 days (a handful due), median of
   300; and its query plan.
2. "idle tick": a whole `scheduler_tick` with nothing due (due query, planned runs, sent runs' counts,
   budgets' alerts, due deliveries), median of 100, at 10 and 10,000 monitors.
3. "runs": a tick at which 200 monitors (a template of 3 rows on 2 models) are due: claims each slot and
   writes each run's batch (6 tasks, chunks included); time per run.
4. "4 schedulers": 4 processes tick the same 10 simulated days (every 30 minutes) over 100 daily
   monitors; runs counted against the expected 1,000, duplicates (there can be none: a unique key).
A --database-url database is dropped and created afresh.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _builder_setup import make_catalog, make_credential, make_member, setup_django
from _postgres import ensure_database

START = datetime(2026, 3, 25, tzinfo=UTC)


def median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def make_monitors(count: int, *, credential, user, version, now, spread=timedelta(days=30), prefix="m"):
    from datetime import time as clock

    from tasks.models import Monitor

    step = spread / max(count, 1)
    Monitor.objects.bulk_create(
        [
            Monitor(
                name=f"{prefix}{i}",
                slug=f"{prefix}{i}",
                tag=f"{prefix}{i}",
                owner=user,
                template_version=version,
                rows_text="city\nParis\nBerlin\nRome\n",
                targets=[
                    {"model_name": "gpt-4.1", "credential_id": credential.pk},
                    {"model_name": "claude-3-5-haiku", "credential_id": credential.pk},
                ],
                cadence=Monitor.Cadence.DAILY,
                time_of_day=clock(9, 0),
                time_zone="UTC",
                next_run_at=now + step * (i + 1),
            )
            for i in range(count)
        ],
        batch_size=1000,
    )


def child(database_url: str, start_file: str) -> None:
    setup_django(database_url, migrate=False)
    from tasks.monitors.scheduler import scheduler_tick

    while not Path(start_file).exists():
        time.sleep(0.01)
    now, claimed = START, 0
    while now <= START + timedelta(days=10):
        claimed += scheduler_tick(now=now).claimed
        now += timedelta(minutes=30)
    print(claimed)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default="")
    parser.add_argument("--child", default="")
    parser.add_argument(
        "--no-schedulers", action="store_true", help="skip the 4 concurrent schedulers (~10 min)"
    )
    args = parser.parse_args()
    if args.child:
        child(args.database_url, args.child)
        return
    url = ensure_database(args.database_url, fresh=True) if args.database_url else ""
    data_dir = setup_django(url)
    from django.db import connection

    from tasks.models import Monitor, MonitorRun, PromptTemplate, PromptTemplateVersion, Task
    from tasks.monitors.scheduler import monitors_due, scheduler_tick

    vendor = connection.vendor
    make_catalog()
    user = make_member()
    credential = make_credential("http://127.0.0.1:9/unused")  # nothing is sent: runs only plan
    template = PromptTemplate.objects.create(name="Hotels", provider="chat_gpt")
    version = PromptTemplateVersion.objects.create(
        template=template, number=1, fields={"user_prompt": "Best hotel in {{city}}?"}
    )
    now = datetime.now(UTC)
    print(f"database: {vendor}")
    for count in (10, 10_000):
        Monitor.objects.all().delete()
        make_monitors(count, credential=credential, user=user, version=version, now=now)
        if vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE tasks_monitor")
        due = median_ms(lambda: monitors_due(now=now), 300)
        tick = median_ms(lambda: scheduler_tick(now=now), 100)
        print(f"{count:>6} monitors: due query {due:.2f} ms, idle tick {tick:.2f} ms (medians)")
    plan = Monitor.objects.filter(state="active", next_run_at__lte=now).order_by("next_run_at").explain()
    print("due query plan:", " | ".join(line.strip() for line in plan.splitlines()))

    # 200 of the 10,000 due at once: claim and write each run's batch.
    last_slot = now.replace(hour=9, minute=0, second=0, microsecond=0)
    last_slot -= timedelta(days=1) if last_slot > now else timedelta(0)
    Monitor.objects.filter(
        pk__in=list(Monitor.objects.order_by("pk").values_list("pk", flat=True)[:200])
    ).update(next_run_at=last_slot)
    started = time.perf_counter()
    report = scheduler_tick(now=now)
    elapsed = time.perf_counter() - started
    print(
        f"runs: {report.claimed} slots claimed, {report.executed} runs written "
        f"({Task.objects.count()} tasks) "
        f"in {elapsed:.2f} s: {elapsed / max(report.executed, 1) * 1000:.1f} ms a run"
    )

    if args.no_schedulers:
        return
    # 4 schedulers at once over 10 simulated days.
    Monitor.objects.all().delete()
    Task.objects.all().delete()
    make_monitors(100, credential=credential, user=user, version=version, now=START - timedelta(days=1),
                  spread=timedelta(seconds=1), prefix="c")  # fmt: skip
    from tasks.monitors.scheduler import monitor_schedule

    for monitor in Monitor.objects.all():
        monitor_schedule(monitor=monitor, now=START)
    start_file = data_dir / "go"
    env = {**os.environ}
    processes = [
        subprocess.Popen(  # noqa: S603 - this script
            [
                sys.executable,
                __file__,
                "--database-url",
                url or f"sqlite:///{data_dir / 'db.sqlite3'}",
                "--child",
                str(start_file),
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    started = time.perf_counter()
    start_file.touch()
    claimed = [int(p.communicate()[0].split()[-1]) for p in processes]
    elapsed = time.perf_counter() - started
    runs = MonitorRun.objects.count()
    slots = MonitorRun.objects.values("monitor", "slot").distinct().count()
    print(
        f"4 schedulers, 10 days, 100 daily monitors: {runs} runs for {slots} slots (expected 1000), "
        f"claims per scheduler {claimed}, {Task.objects.count()} tasks, {elapsed:.1f} s"
    )


if __name__ == "__main__":
    main()
