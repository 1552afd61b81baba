"""A live call (one task, answered at once) whose task the upstream refuses with a temporary code at no
charge (50000, 50001, 503xx, 40101, 40202; api-reference §4): nothing was run or charged, so the task is
planned again and sent again after RESEND_DELAYS (made short here; a 40202, the per-minute rate limit:
when the credential's rate limit ends, made short too), as a task task_post refused so, and fails with
the upstream's message only after its RESEND_ATTEMPTS-th send, each refusal on its timeline. One that
reports a charge fails at once, never resent. Over real HTTP against the stand-in (live_server, in this
process): its `internal_error` fault answers a call's task 50000 at cost 0, its `task_refused` fault
40202 at cost 0, and a wrapped `live` answers one with a cost (or a 40202 for the whole call). A live
worker killed at each step of the resend (a real process, SIGKILL) never sends the task past its
refusals, counted at the stand-in."""

from collections import Counter
from decimal import Decimal

import pytest
from django.urls import reverse

from sandbox import envelope, faults, services
from sandbox.models import SandboxRequest, SandboxTask
from tasks.models import SendChunk, SendingLimit, Task, TaskEvent
from tasks.submission import chunks, live, rate_limits, recording
from tests.submission.test_kills import LEASE, finish, stand_in, statuses, worker
from tests.submission.test_live import live_posts, submit_live

__all__ = ["stand_in"]  # the fixture, shared with test_kills.py

pytestmark = pytest.mark.django_db(transaction=True)

SENDS = recording.RESEND_ATTEMPTS
RATE_LIMITED = "Rate limit per minute exceeded."  # the stand-in's message for a task answered 40202


@pytest.fixture(autouse=True)
def short_delays(monkeypatch):
    monkeypatch.setattr(chunks, "RESEND_DELAYS", (0.5, 0.5))
    monkeypatch.setattr(rate_limits, "DEFAULT_RETRY_AFTER", 0.5)  # a 40202's wait for the rate limit


def resend_events(task) -> list[TaskEvent]:
    return list(TaskEvent.objects.filter(task=task, data__has_key=recording.RESEND_KEY).order_by("id"))


def test_a_live_task_answered_50000_at_no_charge_once_is_sent_again_and_completes(
    stand_in, admin_user, client
):
    faults.inject("internal_error", function="live", times=1)
    (task,) = submit_live(stand_in, admin_user, 1)

    live.live_drain(worker="test")  # the refused call; the task now waits its delay

    task.refresh_from_db()
    assert live_posts() == 1
    assert task.status == Task.Status.QUEUED  # not failed: waiting to be sent again
    (event,) = resend_events(task)
    assert event.kind == TaskEvent.Kind.ERROR and event.status_code == 50000
    assert "The upstream answered 50000 Internal Error for this task" in event.message
    assert f"(attempt 2 of {SENDS})" in event.message
    client.force_login(admin_user)
    page = client.get(reverse("history:task_detail", args=[task.pk])).content.decode()
    assert "The upstream answered 50000 Internal Error for this task" in page  # on its timeline

    live.live_drain(worker="test", wait_for_delayed=3)

    task.refresh_from_db()
    assert live_posts() == 2
    assert task.status == Task.Status.COMPLETED, task.status_message
    assert task.answer_text and task.charged > 0 and task.spend_is_final
    assert SandboxTask.objects.count() == 1  # run (and charged) once
    assert len(resend_events(task)) == 1
    assert set(SendChunk.objects.values_list("state", flat=True)) == {SendChunk.State.SENT}


@pytest.mark.parametrize(
    ("fault", "options", "code", "said"),
    [
        ("internal_error", {}, 50000, "Internal Error."),
        ("task_refused", {"status_code": 40202}, 40202, RATE_LIMITED),  # the rate limit waited for each time
    ],
)
def test_a_live_task_refused_for_now_every_time_fails_after_its_last_send_with_the_message(
    stand_in, admin_user, fault, options, code, said
):
    faults.inject(fault, function="live", times=100, **options)
    (task,) = submit_live(stand_in, admin_user, 1)

    live.live_drain(worker="test", wait_for_delayed=3)
    live.live_drain(worker="test", wait_for_delayed=3)

    task.refresh_from_db()
    assert live_posts() == SENDS  # never one more
    assert task.status == Task.Status.FAILED
    assert task.status_message.startswith(said)
    assert f"Sent {SENDS} times, each time refused by the upstream with a temporary error ({code})" in (
        task.status_message
    )
    assert task.spend == 0 and task.spend_is_final
    assert [event.status_code for event in resend_events(task)] == [code] * (SENDS - 1)  # one per refusal
    assert not SendChunk.objects.filter(state__in=(SendChunk.State.PLANNED, SendChunk.State.SENDING)).exists()


@pytest.mark.parametrize(("code", "said"), [(50301, "Engine busy."), (40202, RATE_LIMITED)])
def test_a_live_task_answered_with_a_temporary_code_and_a_charge_fails_at_once(
    stand_in, admin_user, monkeypatch, code, said
):
    def charged_refusal(*, provider, tasks, started, **kwargs):
        answered = envelope.task(
            task_id=envelope.new_task_id(provider),
            status_code=code,
            status_message=said,
            path=envelope.task_path(provider, "live"),
            data=envelope.echo(provider, "llm_responses", tasks[0]),
            cost=Decimal("0.0006"),
            started=started,
        )
        return envelope.envelope([answered], started=started)

    monkeypatch.setattr(services, "live", charged_refusal)
    (task,) = submit_live(stand_in, admin_user, 1)

    live.live_drain(worker="test", wait_for_delayed=3)

    task.refresh_from_db()
    assert live_posts() == 1
    assert task.status == Task.Status.FAILED
    assert task.status_message == said
    assert task.charged == Decimal("0.0006") and task.spend == Decimal("0.0006") and task.spend_is_final
    assert resend_events(task) == []


def test_a_live_task_answered_40202_at_no_charge_once_waits_for_the_rate_limit_and_completes(
    stand_in, admin_user, client
):
    faults.inject("task_refused", function="live", status_code=40202)
    (task,) = submit_live(stand_in, admin_user, 1)

    live.live_drain(worker="test")  # the refused call; the task now waits for the credential's limit

    task.refresh_from_db()
    assert live_posts() == 1
    assert task.status == Task.Status.QUEUED, task.status_message  # not failed: waiting to be sent again
    (event,) = resend_events(task)
    assert event.kind == TaskEvent.Kind.ERROR and event.status_code == 40202
    assert "The upstream answered 40202 Rate limit per minute exceeded for this task" in event.message
    assert f"(attempt 2 of {SENDS})" in event.message
    limit = SendingLimit.objects.get(credential=stand_in)  # every worker waits, as after task_post's 40202
    assert "the live call answered 40202" in limit.limited_message
    (again,) = SendChunk.objects.filter(state=SendChunk.State.PLANNED, mode=Task.Mode.LIVE)
    assert again.not_before == limit.limited_until
    client.force_login(admin_user)
    page = client.get(reverse("history:task_detail", args=[task.pk])).content.decode()
    assert "The upstream answered 40202 Rate limit per minute exceeded for this task" in page

    live.live_drain(worker="test", wait_for_delayed=3)

    task.refresh_from_db()
    assert live_posts() == 2
    assert task.status == Task.Status.COMPLETED, task.status_message
    assert task.answer_text and task.charged > 0 and task.spend_is_final
    assert SandboxTask.objects.count() == 1  # run (and charged) once
    assert set(SendChunk.objects.values_list("state", flat=True)) == {SendChunk.State.SENT}


def test_a_live_call_refused_40202_as_a_whole_waits_for_the_rate_limit_and_is_sent_again(
    stand_in, admin_user, monkeypatch
):
    """The envelope's own status 40202 (no task answered): the call was refused for its rate, nothing was
    run; the credential waits (a 429's Retry-After, or 60 s) and the task is sent again, never failed."""
    answer = services.live

    def refused_once(*, provider, tasks, started, **kwargs):
        if SandboxRequest.objects.filter(function="live").exists():  # logged after its answer
            return answer(provider=provider, tasks=tasks, started=started, **kwargs)
        refused = envelope.task(
            task_id=envelope.new_task_id(provider),
            status_code=40202,
            path=envelope.task_path(provider, "live"),
            data=envelope.echo(provider, "llm_responses", tasks[0]),
            started=started,
        )
        return envelope.envelope([refused], started=started, status_code=40202, message=RATE_LIMITED)

    monkeypatch.setattr(services, "live", refused_once)
    (task,) = submit_live(stand_in, admin_user, 1)

    live.live_drain(worker="test")

    task.refresh_from_db()
    assert live_posts() == 1 and task.status == Task.Status.QUEUED
    assert SendingLimit.objects.get(credential=stand_in).limited_until > task.created_at

    live.live_drain(worker="test", wait_for_delayed=3)

    task.refresh_from_db()
    assert live_posts() == 2
    assert task.status == Task.Status.COMPLETED, task.status_message
    assert SandboxTask.objects.count() == 1


KILL_STEPS = (
    ("step", "call", "posts", "refused", "outcome"),
    [
        # the refused call claimed, never posted: swept back, then refused and sent again by the next worker
        ("claimed", 1, 2, 1, Task.Status.COMPLETED),
        # its POST may have started: unknown, never sent
        ("post_started", 1, 0, 0, Task.Status.UNKNOWN),
        # the refusal came back, not recorded (lost with the worker): unknown, never sent again
        ("posted", 1, 1, 1, Task.Status.UNKNOWN),
        # killed inside the refusal's recording: rolled back, as above
        ("recording", 1, 1, 1, Task.Status.UNKNOWN),
        # the new chunk written, not committed: rolled back with the rest
        ("replanning", 1, 1, 1, Task.Status.UNKNOWN),
        # the send again claimed, its POST not started: swept back to planned, sent once by the next worker
        ("claimed", 2, 2, 1, Task.Status.COMPLETED),
        # the send again's POST may have started: unknown, never sent a third time
        ("post_started", 2, 1, 1, Task.Status.UNKNOWN),
        ("posted", 2, 2, 1, Task.Status.UNKNOWN),
        ("recording", 2, 2, 1, Task.Status.UNKNOWN),
    ],
)


@pytest.mark.parametrize(*KILL_STEPS)
def test_a_live_worker_killed_around_a_refusal_for_now_never_sends_the_task_past_its_refusals(
    stand_in, admin_user, step, call, posts, refused, outcome
):
    faults.inject("internal_error", function="live", times=1)
    (task,) = submit_live(stand_in, admin_user, 1)

    code, output = finish(
        worker("--live", "--kill-at", step, "--kill-call", str(call), "--resend-delay", "0.5", "--wait", "5")
    )
    assert code == -9, output
    code, output = finish(worker("--live", "--wait", str(LEASE * 3), "--resend-delay", "0.5"))
    assert code == 0, output

    assert live_posts() == posts
    runs = SandboxTask.objects.count()
    assert runs <= 1  # run (and charged) at most once
    assert posts == refused + runs  # it reached the upstream once more than it was refused, at most
    assert statuses([task]) == Counter({outcome: 1})
    if outcome == Task.Status.COMPLETED:
        assert len(resend_events(task)) == 1
    else:
        assert "may have been accepted and charged" in Task.objects.get(pk=task.pk).status_message
    assert not SendChunk.objects.filter(state__in=(SendChunk.State.PLANNED, SendChunk.State.SENDING)).exists()


@pytest.mark.parametrize(*KILL_STEPS)
def test_a_live_worker_killed_around_a_40202_resend_never_sends_the_task_past_its_refusals(
    stand_in, admin_user, step, call, posts, refused, outcome
):
    faults.inject("task_refused", function="live", status_code=40202)
    (task,) = submit_live(stand_in, admin_user, 1)
    short = ("--resend-delay", "0.5", "--rate-limit-wait", "0.5")

    code, output = finish(
        worker("--live", "--kill-at", step, "--kill-call", str(call), *short, "--wait", "5")
    )
    assert code == -9, output
    code, output = finish(worker("--live", "--wait", str(LEASE * 3), *short))
    assert code == 0, output

    assert live_posts() == posts
    runs = SandboxTask.objects.count()
    assert runs <= 1  # run (and charged) at most once
    assert posts == refused + runs  # it reached the upstream once more than it was refused, at most
    assert SandboxRequest.objects.filter(function="live", fault="task_refused").count() == refused
    assert statuses([task]) == Counter({outcome: 1})
    if outcome == Task.Status.COMPLETED:
        assert [event.status_code for event in resend_events(task)] == [40202]
    else:
        assert "may have been accepted and charged" in Task.objects.get(pk=task.pk).status_message
    assert not SendChunk.objects.filter(state__in=(SendChunk.State.PLANNED, SendChunk.State.SENDING)).exists()
