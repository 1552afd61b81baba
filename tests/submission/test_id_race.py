"""An upstream id given to another task while a task_post reply carrying it is being recorded: the recording
reads who holds each id, then writes the ids; a pingback (or tasks_ready, or an admin's resolve) that
records the same id for a task whose reply was lost can commit in between. On PostgreSQL it does (READ
COMMITTED: nothing locks a row that does not hold the id yet), and the chunk's write would break the
unique id: the whole chunk's outcome rolled back, the worker's job failed, its accepted tasks left
`unknown`. The recording survives it: the task is recorded without that id, as for an id taken before,
and the rest of its chunk as usual. On SQLite the recording holds the write lock from its first statement
(IMMEDIATE), so the pingback waits, then finds the id taken and changes nothing.

The other transaction is made to run at that exact point (tests.concurrency.AnotherTransactionFirst),
in this process and in a worker of its own killed at each step (tests/submission/worker_process.py).
"""

from collections import Counter

import pytest
from django.db import connection
from django.db.models import QuerySet
from django.test import Client
from django.urls import reverse

from sandbox import envelope
from sandbox.models import SandboxRequest
from tasks.models import SendChunk, Task, TaskEvent
from tasks.submission import callbacks, live, recording
from tests.concurrency import AnotherTransactionFirst
from tests.submission.sending import send_planned
from tests.submission.stand_in import aisa, lost_reply_task, stand_in
from tests.submission.test_duplicate_ids import CHARGE_AT_POST, collect, submit, the_stand_in_gives
from tests.submission.test_kills import LEASE, finish, statuses, times_each_task_reached_the_stand_in, worker
from tests.submission.test_live import live_posts, submit_live

__all__ = ["aisa", "stand_in"]  # the fixtures

pytestmark = pytest.mark.django_db(transaction=True)

RACED_ID = "12070615-1535-0600-0000-0000000000cc"


def pingback_path(task: Task, upstream_id: str) -> str:
    """The task's own pingback URL as the upstream would call it, naming `upstream_id`."""
    kwargs = {"task_id": task.pk, "token": callbacks.callback_token(task.pk)}
    return reverse("submission:callback_pingback", kwargs=kwargs) + f"?id={upstream_id}"


def task_posts() -> int:
    return SandboxRequest.objects.filter(method="POST", function="task_post").count()


def assert_one_holds_the_id_and_the_other_is_told(raced: Task, lost: Task) -> None:
    """The id is recorded once. PostgreSQL lets the pingback commit first: the reply's task is recorded
    without it (failed, its charge at post counted). SQLite makes the pingback wait for the recording: the
    reply's task keeps it, and the pingback is refused with an event on the lost task."""
    raced.refresh_from_db()
    lost.refresh_from_db()
    if connection.vendor == "postgresql":
        assert lost.upstream_task_id == RACED_ID and lost.status == Task.Status.SUBMITTED
        assert raced.upstream_task_id is None and raced.status == Task.Status.FAILED
        assert f"{RACED_ID}, which task {lost.pk} already has" in raced.status_message
        assert raced.charged == CHARGE_AT_POST and raced.spend == CHARGE_AT_POST
        error = raced.events.get(kind=TaskEvent.Kind.ERROR)
        assert error.data == {"upstream_task_id": RACED_ID, "other_task": str(lost.pk)}
    else:
        assert raced.upstream_task_id == RACED_ID and raced.status == Task.Status.SUBMITTED
        assert lost.upstream_task_id is None and lost.status == Task.Status.UNKNOWN
        refused = lost.events.filter(kind=TaskEvent.Kind.ERROR).last()
        assert f"The upstream id {RACED_ID} belongs to another task ({raced.pk})" in refused.message


def test_an_id_a_pingback_records_while_the_reply_is_being_recorded_leaves_the_chunk_recorded(
    stand_in, aisa, admin_user, monkeypatch
):
    lost = lost_reply_task(aisa)
    first, raced, third = submit(aisa, admin_user, 3)
    the_stand_in_gives(monkeypatch, 1, RACED_ID)
    pingback = AnotherTransactionFirst(
        recording.update_rows, lambda: Client().get(pingback_path(lost, RACED_ID)).status_code
    )
    monkeypatch.setattr(recording, "update_rows", pingback)

    send_planned(wait=0)

    assert pingback.join() == 200  # a callback never gets a 500
    assert task_posts() == 2  # the lost task's, then this chunk's: nothing sent again
    assert SendChunk.objects.get(pk=Task.objects.get(pk=first.pk).chunk_id).state == SendChunk.State.SENT
    assert_one_holds_the_id_and_the_other_is_told(raced, lost)
    collect([first, third])
    assert statuses([first, third]) == Counter({Task.Status.COMPLETED: 2})


@pytest.mark.parametrize(
    ("step", "recorded"),
    [
        (None, True),  # the reply recorded, the pingback slipped in before its ids were written
        ("claimed", True),  # claimed, its POST not started: swept back, sent once by the next worker
        ("post_started", False),  # its POST may have started: unknown, never sent
        ("posted", False),  # the reply came, nothing recorded: unknown, never sent again
        ("recording", False),  # killed inside the outcome's transaction, after the pingback: rolled back
    ],
)
def test_a_worker_killed_around_a_reply_whose_id_a_pingback_takes_never_sends_a_task_twice(
    stand_in, aisa, admin_user, monkeypatch, step, recorded
):
    lost = lost_reply_task(aisa)
    tasks = submit(aisa, admin_user, 3)
    the_stand_in_gives(monkeypatch, 1, RACED_ID)
    pingback = ("--pingback-before-recording", pingback_path(lost, RACED_ID))

    if step:
        code, output = finish(worker(*pingback, "--kill-at", step, "--kill-call", "1"))
        assert code == -9, output
    code, output = finish(worker(*pingback, "--wait", str(LEASE * 3)))
    assert code == 0, output

    sent = 0 if step == "post_started" else 1
    assert task_posts() == 1 + sent  # the lost task's, and this chunk's at most once
    assert times_each_task_reached_the_stand_in(tasks) == Counter({sent: 3})
    if recorded:
        assert_one_holds_the_id_and_the_other_is_told(tasks[1], lost)
        assert statuses([tasks[0], tasks[2]]) == Counter({Task.Status.SUBMITTED: 2})
    else:  # every task accounted for: none left queued, none sent again
        assert statuses(tasks) == Counter({Task.Status.UNKNOWN: 3})
    assert not SendChunk.objects.filter(state__in=(SendChunk.State.PLANNED, SendChunk.State.SENDING)).exists()


def a_pingback_before_the_id_is_written(lost: Task, monkeypatch) -> AnotherTransactionFirst:
    """The lost task's pingback naming RACED_ID, run just before the first write of an upstream id (a live
    answer's is one UPDATE of its task)."""
    pingback = AnotherTransactionFirst(lambda: None, lambda: Client().get(pingback_path(lost, RACED_ID)))
    original = QuerySet.update

    def update(queryset, **fields):
        if queryset.model is Task and fields.get("upstream_task_id"):
            pingback()
        return original(queryset, **fields)

    monkeypatch.setattr(QuerySet, "update", update)
    return pingback


def test_an_id_a_pingback_records_while_a_live_answer_carrying_it_is_recorded_keeps_the_answer(
    stand_in, aisa, admin_user, monkeypatch
):
    lost = lost_reply_task(aisa)
    (answered,) = submit_live(aisa, admin_user, 1)
    original_id = envelope.new_task_id
    monkeypatch.setattr(envelope, "new_task_id", lambda provider: RACED_ID)
    pingback = a_pingback_before_the_id_is_written(lost, monkeypatch)

    live.live_drain(worker="test")
    monkeypatch.setattr(envelope, "new_task_id", original_id)

    assert pingback.join().status_code == 200
    assert live_posts() == 1
    answered.refresh_from_db()
    lost.refresh_from_db()
    assert answered.status == Task.Status.COMPLETED and answered.answer_text  # the paid answer is kept
    assert answered.charged > 0 and answered.spend_is_final
    if connection.vendor == "postgresql":
        assert lost.upstream_task_id == RACED_ID and answered.upstream_task_id is None
        assert answered.events.filter(
            message__contains=f"{RACED_ID}, which task {lost.pk} already has"
        ).exists()
    else:
        assert answered.upstream_task_id == RACED_ID and lost.upstream_task_id is None
        refused = lost.events.filter(kind=TaskEvent.Kind.ERROR).last()
        assert f"The upstream id {RACED_ID} belongs to another task ({answered.pk})" in refused.message


@pytest.mark.parametrize(
    ("step", "completed"),
    [
        (None, 1),  # the answer recorded, the pingback slipped in before its id was written
        ("posted", 0),  # killed before recording it: unknown, never sent again
        ("recording", 0),  # killed inside the recording transaction, after the pingback: rolled back
    ],
)
def test_a_live_worker_killed_around_an_answer_whose_id_a_pingback_takes_never_sends_it_again(
    stand_in, aisa, admin_user, monkeypatch, step, completed
):
    lost = lost_reply_task(aisa)
    tasks = submit_live(aisa, admin_user, 1)
    monkeypatch.setattr(envelope, "new_task_id", lambda provider: RACED_ID)
    pingback = ("--live", "--pingback-before-recording", pingback_path(lost, RACED_ID))

    if step:
        code, output = finish(worker(*pingback, "--kill-at", step, "--kill-call", "1"))
        assert code == -9, output
    code, output = finish(worker(*pingback, "--wait", str(LEASE * 3)))
    assert code == 0, output

    assert live_posts() == 1
    assert times_each_task_reached_the_stand_in(tasks) == Counter({1: 1})
    assert statuses(tasks) == Counter({Task.Status.COMPLETED: 1} if completed else {Task.Status.UNKNOWN: 1})
    if completed:
        answered, lost = Task.objects.get(pk=tasks[0].pk), Task.objects.get(pk=lost.pk)
        holder = lost if connection.vendor == "postgresql" else answered
        assert holder.upstream_task_id == RACED_ID
        assert answered.answer_text and answered.charged > 0
