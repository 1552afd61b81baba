"""A monitor may mix all four providers and both modes: each model queued where it can be, live otherwise,
as a batch sends it; every task of the run completes against the stand-in, each POSTed once."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from sandbox import stats
from tasks.models import MonitorRun, Task
from tasks.monitors.scheduler import scheduler_tick
from tasks.submission import collection
from tests.factories import make_catalog
from tests.monitors.factories import make_monitor
from tests.submission.sending import send_planned

pytestmark = pytest.mark.django_db(transaction=True)

MODELS = ["gpt-4.1-mini", "claude-3-5-haiku", "gemini-2.5-flash", "gemini-2.5-pro", "sonar"]


def test_a_monitor_on_four_providers_queues_what_it_can_and_sends_the_rest_live(live_credential, settings):
    settings.SANDBOX_TASK_DELAY = 0
    make_catalog()
    monitor = make_monitor(
        credential=live_credential,
        targets=[{"model_name": model, "credential_id": live_credential.pk} for model in MODELS],
    )
    stats.clear()

    scheduler_tick(now=datetime(2026, 1, 1, 9, 0, tzinfo=UTC) + timedelta(minutes=1))
    run = monitor.runs.get()
    assert run.state == MonitorRun.State.SENT, run.reason
    # 3 rows × 5 models; gemini-2.5-pro and sonar are live (6 tasks), the others queued (9 tasks)
    assert run.estimated_charge == 9 * Decimal("0.0102") + 6 * Decimal("0.0106")
    send_planned()
    for task in run.batch.tasks.filter(status=Task.Status.SUBMITTED):
        collection.task_fetch(task_id=task.pk)

    tasks = list(run.batch.tasks.all())
    assert Counter((t.provider, t.mode) for t in tasks) == Counter(
        {("chat_gpt", "task_post"): 3, ("claude", "task_post"): 3, ("gemini", "task_post"): 3,
         ("gemini", "live"): 3, ("perplexity", "live"): 3}
    )  # fmt: skip
    assert {t.status for t in tasks} == {Task.Status.COMPLETED}, [t.status_message for t in tasks]
    assert {t.tag for t in tasks} == {monitor.tag}
    assert stats.request_count(function="live", method="POST") == 6
