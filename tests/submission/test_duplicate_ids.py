"""A task_post reply that gives a task an upstream id another task already has (an earlier task, or a task
of the same chunk): the ids are unique (tasks.models.Task), so recording it as it came would fail the whole
chunk's outcome. The task was accepted and paid for: it is recorded without that id, failed (it cannot be
collected by an id it does not have), its charge at post counted, with an error event naming the task that
has the id; the rest of its chunk is recorded and collected as usual. Over real HTTP against the stand-in,
whose reply is made to carry the taken id; a worker killed around such a reply (SIGKILL, a real process:
tests/submission/worker_process.py) never sends a task twice, and no task is left behind.
"""

import time
from collections import Counter
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from sandbox import envelope, faults, services
from tasks.models import SendChunk, Task, TaskEvent
from tasks.submission import collection, sending
from tests.submission.sending import send_planned
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

TAKEN_ID = "12070615-1535-0600-0000-0000000000bb"
CHARGE_AT_POST = Decimal("0.0102")


def submit(credential, user, count: int, *, start: int = 0) -> list[Task]:
    specs = [
        sending.TaskSpec(
            provider="chat_gpt", body={"user_prompt": f"Question {i}?", "model_name": "gpt-4.1-mini"}
        )
        for i in range(start, start + count)
    ]
    return sending.submit_tasks(specs=specs, credential=credential, user=user)


def an_earlier_task_holding_the_taken_id(credential, user) -> Task:
    """A task sent and recorded before, whose upstream id is TAKEN_ID."""
    (earlier,) = submit(credential, user, 1, start=100)
    send_planned(wait=0)
    Task.objects.filter(pk=earlier.pk).update(upstream_task_id=TAKEN_ID)
    return earlier


def the_stand_in_gives(monkeypatch, position: int, upstream_id: str) -> None:
    """The stand-in's next task_post accepts its task at `position` (0-based) under `upstream_id`."""
    original, calls = envelope.new_task_id, Counter()

    def new_task_id(provider):
        calls["ids"] += 1
        return upstream_id if calls["ids"] == position + 1 else original(provider)

    monkeypatch.setattr(envelope, "new_task_id", new_task_id)


def the_reply_repeats_the_first_id(monkeypatch) -> None:
    """The stand-in's task_post replies give every accepted task the id of the first one (the stand-in
    keeps each under its own id: two rows cannot share one)."""
    original = services.tasks_post

    def tasks_post(**kwargs):
        body = original(**kwargs)
        for answered in body["tasks"][1:]:
            answered["id"] = body["tasks"][0]["id"]
        return body

    monkeypatch.setattr(services, "tasks_post", tasks_post)


def collect(tasks: list[Task]) -> None:
    """Poll the tasks now, once their results are ready at the stand-in."""
    time.sleep(0.6)
    Task.objects.filter(pk__in=[task.pk for task in tasks]).update(next_poll_at=timezone.now())
    collection.tasks_poll(task_ids=[str(task.pk) for task in tasks])


def assert_recorded_without_the_id(task: Task, *, other: Task, upstream_id: str) -> None:
    task.refresh_from_db()
    assert task.status == Task.Status.FAILED
    assert task.upstream_task_id is None
    assert task.charged == CHARGE_AT_POST and task.spend == CHARGE_AT_POST
    assert not task.spend_is_final  # settled with the other accepted tasks that never got a result
    assert task.next_poll_at is None
    assert f"{upstream_id}, which task {other.pk} already has" in task.status_message
    assert "$0.010200" in task.status_message
    error = task.events.get(kind=TaskEvent.Kind.ERROR)
    assert error.data == {"upstream_task_id": upstream_id, "other_task": str(other.pk)}
    assert task.events.filter(kind=TaskEvent.Kind.POSTED, cost_change=CHARGE_AT_POST).exists()


def test_a_reply_giving_a_task_the_id_of_an_earlier_task_records_it_failed_and_the_rest_of_its_chunk(
    stand_in, admin_user, client, monkeypatch
):
    earlier = an_earlier_task_holding_the_taken_id(stand_in, admin_user)
    first, taken, third = submit(stand_in, admin_user, 3)
    the_stand_in_gives(monkeypatch, 1, TAKEN_ID)

    send_planned(wait=0)

    assert task_posts() == 2  # the earlier task's, then this chunk's: nothing sent again
    assert SendChunk.objects.get(pk=Task.objects.get(pk=first.pk).chunk_id).state == SendChunk.State.SENT
    assert_recorded_without_the_id(taken, other=earlier, upstream_id=TAKEN_ID)
    assert Task.objects.get(pk=earlier.pk).upstream_task_id == TAKEN_ID
    collect([first, third])
    assert statuses([first, third]) == Counter({Task.Status.COMPLETED: 2})

    client.force_login(admin_user)
    page = client.get(reverse("history:task_detail", args=[taken.pk])).content.decode()
    assert f"which task {earlier.pk} already has" in page
    assert "Charged at post" in page and "$0.010200" in page
    assert "the charge at post, until it is settled 30 days after sending" in page


def test_two_tasks_of_one_chunk_given_the_same_id_the_first_keeps_it_the_second_is_recorded_without(
    stand_in, admin_user, monkeypatch
):
    first, second, third = submit(stand_in, admin_user, 3)
    the_reply_repeats_the_first_id(monkeypatch)

    send_planned(wait=0)

    first.refresh_from_db()
    assert first.status == Task.Status.SUBMITTED and first.upstream_task_id
    assert_recorded_without_the_id(second, other=first, upstream_id=first.upstream_task_id)
    assert_recorded_without_the_id(third, other=first, upstream_id=first.upstream_task_id)
    assert task_posts() == 1
    collect([first])
    assert statuses([first]) == Counter({Task.Status.COMPLETED: 1})


def test_an_accepted_task_keeps_an_id_the_reply_also_gave_a_refused_task_before_it(
    stand_in, admin_user, monkeypatch
):
    faults.inject("task_refused", position=0, status_code=40501)  # refused for good, nothing charged
    refused, accepted = submit(stand_in, admin_user, 2)
    the_reply_repeats_the_first_id(monkeypatch)  # the accepted task's id is the refused one's

    send_planned(wait=0)

    refused.refresh_from_db()
    accepted.refresh_from_db()
    assert accepted.status == Task.Status.SUBMITTED and accepted.upstream_task_id
    assert refused.status == Task.Status.FAILED and refused.upstream_task_id is None
    assert refused.spend == 0 and refused.spend_is_final
    error = refused.events.get(kind=TaskEvent.Kind.ERROR)
    assert error.data == {"upstream_task_id": accepted.upstream_task_id, "other_task": str(accepted.pk)}


@pytest.mark.parametrize(
    ("step", "recorded"),
    [
        (None, True),  # the reply recorded: the taken id's task failed with its charge, the others submitted
        ("claimed", True),  # claimed, its POST not started: swept back, sent once by the next worker
        ("post_started", False),  # its POST may have started: unknown, never sent
        ("posted", False),  # the reply came, nothing recorded: unknown, never sent again
        ("recording", False),  # inside the outcome's transaction, not committed: rolled back, as above
    ],
)
def test_a_worker_killed_around_a_reply_with_a_taken_id_never_sends_a_task_twice(
    stand_in, admin_user, monkeypatch, step, recorded
):
    earlier = an_earlier_task_holding_the_taken_id(stand_in, admin_user)
    tasks = submit(stand_in, admin_user, 3)
    the_stand_in_gives(monkeypatch, 1, TAKEN_ID)

    if step:
        code, output = finish(worker("--kill-at", step, "--kill-call", "1"))
        assert code == -9, output
    code, output = finish(worker("--wait", str(LEASE * 3)))
    assert code == 0, output

    sent = 0 if step == "post_started" else 1
    assert task_posts() == 1 + sent  # the earlier task's, and this chunk's at most once
    assert times_each_task_reached_the_stand_in(tasks) == Counter({sent: 3})
    if recorded:
        assert statuses(tasks) == Counter({Task.Status.SUBMITTED: 2, Task.Status.FAILED: 1})
        assert_recorded_without_the_id(tasks[1], other=earlier, upstream_id=TAKEN_ID)
    else:  # every task accounted for: none left queued, none sent again
        assert statuses(tasks) == Counter({Task.Status.UNKNOWN: 3})
    assert not SendChunk.objects.filter(state__in=(SendChunk.State.PLANNED, SendChunk.State.SENDING)).exists()
