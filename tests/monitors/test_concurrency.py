"""Four schedulers, each a real process, tick over the same 10 simulated days at once: every slot makes
exactly one run and one batch, on SQLite or PostgreSQL, whichever the suite runs on."""

import os
import subprocess
import sys
from datetime import UTC, datetime, time
from pathlib import Path

import pytest
from django.conf import settings

from tasks.models import Monitor, MonitorRun, Task
from tests import preloaded
from tests.monitors.factories import make_monitor
from tests.submission.killing import _database_url

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 3, 25, tzinfo=UTC)


def scheduler(start_file: Path, *, days: float = 10, step: float = 60) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _database_url(),
        "CREDENTIAL_KEYS": ",".join(settings.CREDENTIAL_KEYS),
        "SECRET_KEY": settings.SECRET_KEY,
        "CONN_MAX_AGE": "0",
    }
    return preloaded.popen(
        [
            sys.executable, "-m", "tests.monitors.scheduler_process", "--start", START.isoformat(),
            "--days", str(days), "--step-minutes", str(step), "--start-file", str(start_file),
        ],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.long
def test_four_concurrent_schedulers_over_ten_days_make_exactly_one_run_per_slot(
    credential, catalog, tmp_path
):
    daily = make_monitor(credential=credential, name="Daily", time_zone="Europe/Berlin", now=START)
    every_six_hours = make_monitor(
        credential=credential, name="Cron", cadence=Monitor.Cadence.CRON, cron="0 */6 * * *", now=START,
        rows_text="city\nParis\n",
    )  # fmt: skip
    weekdays = make_monitor(
        credential=credential, name="Weekdays", cadence=Monitor.Cadence.WEEKDAYS, weekdays=[0, 2, 4],
        time_of_day=time(7, 0), time_zone="America/New_York", now=START,
    )  # fmt: skip
    start_file = tmp_path / "go"
    processes = [scheduler(start_file) for _ in range(4)]
    start_file.touch()
    claimed = 0
    for process in processes:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
        claimed += int(out.split()[-1])

    # 25 March 00:00 UTC to 4 April 00:00 UTC, over Europe's change to summer time on 29 March.
    assert daily.runs.count() == 10
    assert every_six_hours.runs.count() == 40
    # Mon, Wed, Fri at 07:00 in New York: 25, 27, 30 March and 1, 3 April.
    assert weekdays.runs.count() == 5
    assert claimed == 55  # the four processes between them claimed each slot once
    assert set(MonitorRun.objects.values_list("state", flat=True)) == {MonitorRun.State.SENT}
    assert MonitorRun.objects.filter(kind=MonitorRun.Kind.SCHEDULED).count() == 55
    # One batch per run, and each run's tasks written once: 10×6 + 40×2 + 5×6.
    assert Task.objects.count() == 170
    assert Task.objects.values("batch").distinct().count() == 55
