"""A task_post reply that says a task is already handed over or in queue (40601, 40602) or even done (20000)
instead of 20100: the upstream has it, and may have charged it (api-reference §3, §4). It is collected like
an accepted task, by the id the reply gives, never failed, never sent again; one such task with no id that
task_get could be asked about is a lost reply (`unknown`), as an accepted one without an id is. Over real
HTTP against the stand-in, whose reply is rewritten; a worker killed around such a reply (SIGKILL, a real
process: tests/submission/worker_process.py) never sends a task twice.
"""

from collections import Counter

import pytest

from sandbox import services
from tasks.models import SendChunk, Task
from tests.submission.sending import send_planned
from tests.submission.test_duplicate_ids import CHARGE_AT_POST, collect, submit
from tests.submission.test_kills import (
    LEASE,
    finish,
    stand_in,
    statuses,
    task_posts,
    times_each_task_reached_the_stand_in,
    worker,
)

__all__ = ["stand_in"]  # the fixture, shared with test_kills.py

pytestmark = pytest.mark.django_db(transaction=True)


def the_reply_says(monkeypatch, position: int, **fields) -> None:
    """The stand-in's task_post replies change the task object at `position` (the stand-in keeps the task,
    under the id it gave it)."""
    original = services.tasks_post

    def tasks_post(**kwargs):
        body = original(**kwargs)
        body["tasks"][position].update(fields)
        return body

    monkeypatch.setattr(services, "tasks_post", tasks_post)


@pytest.mark.parametrize(
    ("code", "message"), [(40601, "Task Handed."), (40602, "Task In Queue."), (20000, "Ok.")]
)
def test_a_task_the_reply_says_is_already_queued_upstream_is_collected_not_failed(
    stand_in, admin_user, monkeypatch, code, message
):
    first, queued = submit(stand_in, admin_user, 2)
    the_reply_says(monkeypatch, 1, status_code=code, status_message=message)

    send_planned(wait=0)

    queued.refresh_from_db()
    assert queued.status == Task.Status.SUBMITTED and queued.upstream_task_id
    assert queued.charged == CHARGE_AT_POST and not queued.spend_is_final
    collect([first, queued])
    assert statuses([first, queued]) == Counter({Task.Status.COMPLETED: 2})
    assert Task.objects.get(pk=queued.pk).answer_text
    assert task_posts() == 1


def test_a_task_the_reply_says_is_in_queue_without_an_id_is_unknown_not_failed(
    stand_in, admin_user, monkeypatch
):
    tasks = submit(stand_in, admin_user, 2)
    the_reply_says(monkeypatch, 1, status_code=40602, status_message="Task In Queue.", id=None)

    send_planned(wait=0)

    assert statuses(tasks) == Counter({Task.Status.UNKNOWN: 2})  # the reply cannot be matched: lost
    assert all(
        "may have accepted and charged" in task.status_message
        for task in Task.objects.filter(pk__in=[task.pk for task in tasks])
    )
    assert task_posts() == 1


@pytest.mark.parametrize(
    ("step", "recorded"),
    [
        (None, True),  # the reply recorded: both submitted, collected
        ("claimed", True),  # claimed, its POST not started: swept back, sent once by the next worker
        ("post_started", False),  # its POST may have started: unknown, never sent
        ("posted", False),  # the reply came, nothing recorded: unknown, never sent again
        ("recording", False),  # inside the outcome's transaction, not committed: rolled back, as above
    ],
)
def test_a_worker_killed_around_a_reply_with_a_task_in_queue_never_sends_a_task_twice(
    stand_in, admin_user, monkeypatch, step, recorded
):
    tasks = submit(stand_in, admin_user, 3)
    the_reply_says(monkeypatch, 1, status_code=40602, status_message="Task In Queue.")

    if step:
        code, output = finish(worker("--kill-at", step, "--kill-call", "1"))
        assert code == -9, output
    code, output = finish(worker("--wait", str(LEASE * 3)))
    assert code == 0, output

    sent = 0 if step == "post_started" else 1
    assert task_posts() == sent
    assert times_each_task_reached_the_stand_in(tasks) == Counter({sent: 3})
    if recorded:
        assert statuses(tasks) == Counter({Task.Status.SUBMITTED: 3})
    else:
        assert statuses(tasks) == Counter({Task.Status.UNKNOWN: 3})
    assert not SendChunk.objects.filter(state__in=(SendChunk.State.PLANNED, SendChunk.State.SENDING)).exists()
