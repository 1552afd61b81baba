"""A task_post (or live call) the upstream refuses AS A WHOLE with a temporary code: a top-level 40101
("upstream engine error", api-reference §4: transient) and no task in the reply accepted or pending.
Nothing was taken or charged, so the chunk goes back to planned and is sent again after the delays of an
unreachable upstream (chunks.UNREACHABLE_DELAYS, made short here), and its tasks fail as not sent only
after those attempts, each refusal on their timeline. A top-level 40100 (not authorised) still fails at
once. Over real HTTP against the stand-in (live_server, in this process), whose task_post and live are
wrapped to answer the envelope's 40101; killed workers around it: test_whole_refusal_kills.py."""

import time
from collections import Counter

import pytest
from django.urls import reverse
from django.utils import timezone

from sandbox import envelope, services
from sandbox.models import SandboxRequest
from tasks.models import SendChunk, Task, TaskEvent
from tasks.submission import chunks, collection, live
from tests.submission.sending import send_planned
from tests.submission.test_kills import stand_in, statuses, submit, times_each_task_reached_the_stand_in
from tests.submission.test_live import live_posts, submit_live

__all__ = ["stand_in"]  # the fixture, shared with test_kills.py

pytestmark = pytest.mark.django_db(transaction=True)

SENDS = len(chunks.UNREACHABLE_DELAYS) + 1  # the first send and one after each delay


@pytest.fixture(autouse=True)
def short_delays(monkeypatch):
    monkeypatch.setattr(chunks, "UNREACHABLE_DELAYS", (1.0,) * len(chunks.UNREACHABLE_DELAYS))


def refuse_whole(monkeypatch, function: str, times: int, code: int = 40101) -> Counter:
    """The stand-in's next `times` calls of `function` answer a top-level `code`, tasks null, nothing
    processed (as DataForSEO answers an engine error); later ones as usual. Returns the prompts sent and
    refused, counted as the stand-in answers."""
    counted = Counter()
    original = getattr(services, {"task_post": "tasks_post", "live": "live"}[function])

    def answering(*, tasks, started, **kwargs):
        counted["calls"] += 1
        if counted["calls"] <= times:
            counted["refused"] += 1
            message = {40101: "Engine error.", 40100: "You are not authorized to access this resource."}
            return envelope.envelope(None, started=started, status_code=code, message=message[code], cost=0)
        return original(tasks=tasks, started=started, **kwargs)

    monkeypatch.setattr(services, {"task_post": "tasks_post", "live": "live"}[function], answering)
    return counted


def task_posts() -> int:
    return SandboxRequest.objects.filter(method="POST", function="task_post").count()


def collect(tasks):
    time.sleep(0.6)  # the stand-in's tasks are ready after SANDBOX_TASK_DELAY
    Task.objects.filter(pk__in=[task.pk for task in tasks]).update(next_poll_at=timezone.now())
    collection.tasks_poll(task_ids=[str(task.pk) for task in tasks])


def test_a_task_post_refused_as_a_whole_with_40101_once_is_sent_again_and_every_task_completes(
    stand_in, admin_user, client, monkeypatch
):
    counted = refuse_whole(monkeypatch, "task_post", times=1)
    tasks = submit(stand_in, admin_user, 3)

    assert send_planned(wait=0) == 1  # the refused send; the chunk now waits its delay
    assert task_posts() == 1
    assert statuses(tasks) == Counter({Task.Status.QUEUED: 3})  # not failed: waiting to be sent again
    chunk = SendChunk.objects.get()
    assert chunk.state == SendChunk.State.PLANNED and chunk.attempts == 1
    for task in tasks:
        event = TaskEvent.objects.filter(task=task).latest("id")
        assert event.kind == TaskEvent.Kind.ERROR and event.status_code == 40101
        assert "rejected the request (status 40101: Engine error.)" in event.message
        assert "Nothing was accepted or charged" in event.message
        assert f"(attempt 2 of {SENDS})" in event.message
    client.force_login(admin_user)
    page = client.get(reverse("history:task_detail", args=[tasks[0].pk])).content.decode()
    assert "status 40101: Engine error." in page  # on the task's timeline

    send_planned(wait=3)

    assert task_posts() == 2 and counted == Counter({"calls": 2, "refused": 1})
    assert times_each_task_reached_the_stand_in(tasks) == Counter({1: 3})  # each accepted once
    assert statuses(tasks) == Counter({Task.Status.SUBMITTED: 3})
    assert SendChunk.objects.get().state == SendChunk.State.SENT
    collect(tasks)
    assert statuses(tasks) == Counter({Task.Status.COMPLETED: 3})


def test_a_task_post_refused_as_a_whole_with_40101_every_time_fails_as_not_sent_after_the_cap(
    stand_in, admin_user, monkeypatch
):
    counted = refuse_whole(monkeypatch, "task_post", times=100)
    tasks = submit(stand_in, admin_user, 3)

    send_planned(wait=3)

    assert task_posts() == SENDS and counted["refused"] == SENDS  # never sent a sixth time
    assert send_planned(wait=1) == 0
    assert task_posts() == SENDS
    assert times_each_task_reached_the_stand_in(tasks) == Counter({0: 3})
    assert SendChunk.objects.get().state == SendChunk.State.REJECTED
    for task in Task.objects.filter(pk__in=[task.pk for task in tasks]):
        assert task.status == Task.Status.FAILED
        assert task.status_message.startswith("Not sent: ")
        assert "status 40101: Engine error." in task.status_message
        assert (
            f"refused the whole request with a temporary error; after {SENDS} attempts it is not sent again"
            in (task.status_message)
        )
        assert task.spend == 0 and task.spend_is_final
        waits = TaskEvent.objects.filter(task=task, kind=TaskEvent.Kind.ERROR, status_code=40101)
        assert waits.count() == SENDS - 1  # one per refusal that was followed by another send


def test_a_task_post_refused_as_a_whole_with_40100_fails_at_once(stand_in, admin_user, monkeypatch):
    refuse_whole(monkeypatch, "task_post", times=100, code=40100)
    tasks = submit(stand_in, admin_user, 2)

    send_planned(wait=1)

    assert task_posts() == 1
    assert statuses(tasks) == Counter({Task.Status.FAILED: 2})
    assert SendChunk.objects.get().state == SendChunk.State.REJECTED
    task = Task.objects.get(pk=tasks[0].pk)
    assert task.status_message.startswith("Not sent: ") and "40100" in task.status_message
    assert "temporary" not in task.status_message


def test_a_live_call_refused_as_a_whole_with_40101_once_is_sent_again_and_completes(
    stand_in, admin_user, monkeypatch
):
    counted = refuse_whole(monkeypatch, "live", times=1)
    (task,) = submit_live(stand_in, admin_user, 1)

    live.live_drain(worker="test", wait_for_delayed=3)

    assert live_posts() == 2 and counted == Counter({"calls": 2, "refused": 1})
    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED, task.status_message
    assert task.answer_text
    assert TaskEvent.objects.filter(task=task, kind=TaskEvent.Kind.ERROR, status_code=40101).count() == 1
