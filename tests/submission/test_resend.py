"""A task that task_post refuses with a temporary code (50000, 40202, ...: api-reference §4) while the
rest of its chunk is accepted: it is not failed but sent again, alone, after a wait, up to three sends
(tasks/submission/replies.py, `_tasks_send_again`). Killed workers around it: test_resend_kills.py.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tasks.models import Budget, SendChunk, SendingLimit, Task, TaskEvent
from tasks.spend.budgets import budget_spent
from tasks.submission import chunks, recording, replies, sending
from tasks.upstream import clients
from tasks.upstream.outcomes import StatusClass, TaskOutcome, classify_status
from tests.factories import make_credential, make_user
from tests.submission.fake_upstream import CHARGE, FakeUpstream
from tests.submission.sending import send_planned

pytestmark = pytest.mark.django_db

MESSAGES = {
    50000: "Internal Error.",
    40202: "Rate limit per minute exceeded.",
    50301: "Unavailable.",
    40101: "Engine error.",
}


class RefusingUpstream(FakeUpstream):
    """Accepts every task but those whose prompt is in `refuse`: each of their sends takes the next code
    of their list (nothing charged), until the list is empty."""

    def __init__(self, refuse: dict[str, list[int]]):
        super().__init__()
        self.refuse = refuse

    def task_post(self, provider, bodies):
        outcomes = super().task_post(provider, bodies)
        return [
            self._refused(self.refuse[body["user_prompt"]].pop(0))
            if self.refuse.get(body["user_prompt"])
            else o
            for body, o in zip(bodies, outcomes, strict=True)
        ]

    @staticmethod
    def _refused(code: int) -> TaskOutcome:
        return TaskOutcome(
            id="07171158-1535-0612-0000-refused",
            status_code=code,
            status_message=MESSAGES[code],
            status_class=classify_status(code),
            cost=0,
            data={},
            result=None,
            raw={},
        )


@pytest.fixture
def credential():
    return make_credential()


def submit(monkeypatch, credential, upstream, count: int) -> list[Task]:
    monkeypatch.setattr(clients, "LLMResponsesClient", upstream)
    specs = [
        sending.TaskSpec(provider="chat_gpt", body={"user_prompt": f"q{i}", "model_name": "gpt-4.1"})
        for i in range(1, count + 1)
    ]
    return sending.submit_tasks(specs=specs, credential=credential, user=make_user())


def planned_chunk_of(task: Task) -> SendChunk:
    task.refresh_from_db()
    return SendChunk.objects.get(pk=task.chunk_id, state=SendChunk.State.PLANNED)


def due_now(chunk: SendChunk) -> None:
    SendChunk.objects.filter(pk=chunk.pk).update(not_before=timezone.now())
    SendingLimit.objects.update(limited_until=None)


def test_a_task_refused_with_50000_is_sent_again_alone_then_fails_after_three_sends(
    monkeypatch, credential, client, admin_user
):
    budget = Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=CHARGE * 10)
    upstream = RefusingUpstream({"q2": [50000, 50000, 50301]})
    one, two, three = submit(monkeypatch, credential, upstream, 3)
    held = budget_spent(budget)

    before = timezone.now()
    assert send_planned(wait=0) == 1
    for task in (one, three):
        task.refresh_from_db()
        assert task.status == Task.Status.SUBMITTED and task.upstream_task_id
    chunk = planned_chunk_of(two)
    assert chunk.task_count == 1 and chunk.batch_id == two.batch_id
    assert before + timedelta(seconds=119) <= chunk.not_before <= timezone.now() + timedelta(seconds=121)
    two.refresh_from_db()
    assert two.status == Task.Status.QUEUED and two.upstream_task_id is None
    assert two.spend == CHARGE and not two.spend_is_final  # the budget still counts it, once
    assert budget_spent(budget) == held
    at = timezone.localtime(chunk.not_before).strftime("%H:%M")
    event = TaskEvent.objects.filter(task=two).latest("id")
    assert event.kind == TaskEvent.Kind.ERROR and event.status_code == 50000
    assert event.message == (
        "The upstream answered 50000 Internal Error for this task; it will be sent again at "
        f"{at} (attempt 2 of 3)."
    )
    assert two.status_message == event.message
    client.force_login(admin_user)
    page = client.get(reverse("history:task_detail", args=[two.pk])).content.decode()
    assert event.message in page  # on the task's timeline
    assert send_planned(wait=0) == 0  # it waits

    due_now(chunk)
    before = timezone.now()
    assert send_planned(wait=0) == 1
    assert [[body["user_prompt"] for body in call] for call in upstream.calls] == [["q1", "q2", "q3"], ["q2"]]
    chunk = planned_chunk_of(two)
    assert before + timedelta(seconds=299) <= chunk.not_before
    assert "(attempt 3 of 3)" in TaskEvent.objects.filter(task=two).latest("id").message

    due_now(chunk)
    assert send_planned(wait=0) == 1
    assert [len(call) for call in upstream.calls] == [3, 1, 1]
    two.refresh_from_db()
    assert two.status == Task.Status.FAILED and two.status_code == 50301
    assert two.status_message == (
        "Unavailable. Sent 3 times, each time refused by the upstream with a temporary error (50301); "
        "not sent again."
    )
    assert two.spend == 0 and two.spend_is_final
    assert budget_spent(budget) == held - CHARGE
    assert not SendChunk.objects.filter(state=SendChunk.State.PLANNED).exists()
    assert send_planned(wait=0) == 0
    assert sorted(body["user_prompt"] for body in upstream.posted) == ["q1", "q2", "q2", "q2", "q3"]


def test_a_task_refused_once_is_accepted_on_its_second_send_and_collected(monkeypatch, credential):
    upstream = RefusingUpstream({"q2": [40101]})
    tasks = submit(monkeypatch, credential, upstream, 3)
    send_planned(wait=0)
    due_now(planned_chunk_of(tasks[1]))
    send_planned(wait=0)

    assert [len(call) for call in upstream.calls] == [3, 1]
    for task in tasks:
        task.refresh_from_db()
        assert task.status == Task.Status.SUBMITTED and task.spend == CHARGE
    assert TaskEvent.objects.filter(task=tasks[1], kind=TaskEvent.Kind.POSTED).count() == 1


def test_a_task_refused_with_40202_waits_for_the_rate_limit_of_its_credential(monkeypatch, credential):
    upstream = RefusingUpstream({"q2": [40202]})
    tasks = submit(monkeypatch, credential, upstream, 3)
    before = timezone.now()
    send_planned(wait=0)

    limit = SendingLimit.objects.get(credential=credential)
    assert before + timedelta(seconds=59) <= limit.limited_until <= timezone.now() + timedelta(seconds=61)
    assert "40202" in limit.limited_message
    chunk = planned_chunk_of(tasks[1])
    assert chunk.not_before == limit.limited_until
    assert "it will be sent again at" in TaskEvent.objects.filter(task=tasks[1]).latest("id").message

    # Another submission of the same credential waits too: the credential is rate-limited.
    later = submit(monkeypatch, credential, upstream, 1)
    SendChunk.objects.filter(pk=chunk.pk).update(not_before=timezone.now())
    assert send_planned(wait=0) == 0
    assert len(upstream.calls) == 1
    SendingLimit.objects.update(limited_until=None)
    assert send_planned(wait=0) == 2
    for task in [*tasks, *later]:
        task.refresh_from_db()
        assert task.status == Task.Status.SUBMITTED


def test_a_refusal_that_reports_a_charge_is_never_sent_again(monkeypatch, credential):
    upstream = RefusingUpstream({})
    tasks = submit(monkeypatch, credential, upstream, 2)
    claimed = chunks.chunk_claim(worker="w")
    assert chunks.chunk_mark_post_started(claimed)
    charged = TaskOutcome(None, 50000, "Internal Error.", StatusClass.TRANSIENT, CHARGE, {}, None, {})
    refused = RefusingUpstream._refused(50000)
    replies.chunk_record_outcome(claimed, [charged, refused])

    first, second = (Task.objects.get(pk=task.pk) for task in tasks)
    assert first.status == Task.Status.FAILED and first.spend == CHARGE
    assert second.status == Task.Status.QUEUED
    assert SendChunk.objects.filter(state=SendChunk.State.PLANNED).count() == 1
    assert recording.RESEND_ATTEMPTS == 3
