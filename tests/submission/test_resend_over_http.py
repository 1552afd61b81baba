"""Tasks task_post refuses for now (a temporary code, cost 0) while the rest of their chunk is accepted,
end to end over real HTTP: the stand-in's `task_refused` fault refuses the task whose prompt it names
(sandbox/faults.py), and the product's own worker sends it again, alone, after RESEND_DELAYS (made short
here). test_resend.py pins the same rules with mocked outcomes; test_resend_kills.py kills the worker
around them."""

import time
from collections import Counter

import pytest
from django.utils import timezone

from sandbox import faults
from sandbox.models import SandboxRequest
from tasks.models import Task, TaskEvent
from tasks.submission import chunks, collection
from tests.submission.sending import send_planned
from tests.submission.test_kills import stand_in, statuses, submit, times_each_task_reached_the_stand_in

__all__ = ["stand_in"]  # the fixture, shared with test_kills.py

pytestmark = pytest.mark.django_db(transaction=True)

REFUSED = "Question 1?"  # the second task of the chunk


@pytest.fixture(autouse=True)
def short_resend_delays(monkeypatch):
    monkeypatch.setattr(chunks, "RESEND_DELAYS", (0.3, 0.3))


def task_post_calls() -> list[tuple[int, str]]:
    """Each task_post the stand-in received: how many tasks it carried, and the fault that fired on it."""
    calls = SandboxRequest.objects.filter(method="POST", function="task_post").order_by("id")
    return list(calls.values_list("tasks_in_body", "fault"))


def test_a_task_the_stand_in_refuses_once_is_sent_again_alone_and_accepted_the_others_once(
    stand_in, admin_user
):
    faults.inject("task_refused", prompt_contains=REFUSED)
    tasks = submit(stand_in, admin_user, 3)

    send_planned(wait=3)

    assert task_post_calls() == [(3, "task_refused"), (1, "")]
    assert times_each_task_reached_the_stand_in(tasks) == Counter({1: 3})  # each accepted once
    assert statuses(tasks) == Counter({Task.Status.SUBMITTED: 3})
    refused = tasks[1]
    assert refused.user_prompt == REFUSED
    resends = TaskEvent.objects.filter(task=refused, data__has_key="resend_attempt")
    assert [event.status_code for event in resends] == [50000]
    for task in tasks:
        assert TaskEvent.objects.filter(task=task, kind=TaskEvent.Kind.POSTED).count() == 1
    time.sleep(0.6)  # the stand-in's tasks are ready after SANDBOX_TASK_DELAY
    Task.objects.filter(pk__in=[task.pk for task in tasks]).update(next_poll_at=timezone.now())
    collection.tasks_poll(task_ids=[str(task.pk) for task in tasks])
    assert statuses(tasks) == Counter({Task.Status.COMPLETED: 3})


def test_a_task_the_stand_in_refuses_on_every_send_fails_after_three_the_others_sent_once(
    stand_in, admin_user
):
    faults.inject("task_refused", prompt_contains=REFUSED, status_code=50301, times=5)
    tasks = submit(stand_in, admin_user, 3)

    send_planned(wait=3)

    assert task_post_calls() == [(3, "task_refused"), (1, "task_refused"), (1, "task_refused")]
    assert statuses(tasks) == Counter({Task.Status.SUBMITTED: 2, Task.Status.FAILED: 1})
    refused = Task.objects.get(pk=tasks[1].pk)
    assert refused.status == Task.Status.FAILED
    assert "Sent 3 times, each time refused by the upstream with a temporary error (50301)" in (
        refused.status_message
    )
    assert refused.spend == 0 and refused.spend_is_final
    assert times_each_task_reached_the_stand_in(tasks) == Counter({1: 2, 0: 1})
    assert [fault.remaining for fault in faults.pending()] == [2]  # never sent a fourth time
