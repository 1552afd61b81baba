"""A submission stopped at any step, on either path (pipelined or sequential), as a killed process would
leave it: the upstream has received each chunk at most once and nothing after the stop, no task that may
have been sent is recorded as "not sent" (which would invite sending it again), and the restart
(resume_collection, once the submission's lifetime is over) marks what is left `queued` unknown without
posting anything.

The stop is an exception nothing in the product catches (`BaseException`, like the KeyboardInterrupt or
SystemExit of a process told to stop), raised from inside the step; the POSTs are counted at the stand-in
(`FakeUpstream.calls`).
"""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from tasks.models import BudgetHold, Task
from tasks.spend.budgets import SUBMISSION_LIFETIME
from tasks.submission import sending
from tasks.upstream import clients
from tests.factories import make_credential, make_user
from tests.submission.fake_upstream import FakeUpstream

pytestmark = pytest.mark.django_db

TASKS = 250  # three task_post calls: 100, 100, 50


class Stop(BaseException):
    """The process stops here."""


class StoppingUpstream(FakeUpstream):
    """Stops at call `number`: before it reaches the upstream, or once the upstream accepted it."""

    def __init__(self, number: int, *, accepted: bool):
        super().__init__()
        self.stop_at, self.accepted = number, accepted
        self.attempts = 0

    def task_post(self, provider, bodies):
        self.attempts += 1
        if self.attempts == self.stop_at and not self.accepted:
            raise Stop
        outcomes = super().task_post(provider, bodies)
        if self.attempts == self.stop_at:
            raise Stop
        return outcomes


def _stop_on_call(monkeypatch, name: str, number: int) -> None:
    original = getattr(sending, name)
    calls = []

    def stopping(*args, **kwargs):
        calls.append(1)
        if len(calls) == number:
            raise Stop
        return original(*args, **kwargs)

    monkeypatch.setattr(sending, name, stopping)


STEPS = [
    *[(f"before call {n} leaves", n, False, None) for n in (1, 2, 3)],
    *[(f"after call {n} was accepted, before its reply is recorded", n, True, None) for n in (1, 2, 3)],
    *[(f"while writing chunk {n}", None, False, ("_create_tasks", n)) for n in (2, 3)],
    *[(f"while recording chunk {n}", None, False, ("_record_post_outcomes", n)) for n in (1, 2, 3)],
]


@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "sequential"])
@pytest.mark.parametrize(("step", "call", "accepted", "patched"), STEPS, ids=[step[0] for step in STEPS])
def test_a_submission_stopped_at_any_step_never_sends_twice_and_is_resumed_without_sending(
    monkeypatch, pipelined, step, call, accepted, patched
):
    upstream = StoppingUpstream(call or 0, accepted=accepted)
    monkeypatch.setattr(clients, "LLMResponsesClient", upstream)
    if patched:
        _stop_on_call(monkeypatch, *patched)
    specs = [sending.TaskSpec(provider="chat_gpt", body={"user_prompt": f"q{i}"}) for i in range(TASKS)]

    with pytest.raises(Stop):
        sending.submit_task_ids(
            specs=specs, credential=make_credential(), user=make_user(), pipelined=pipelined
        )

    posted = [body["tag"] for call_bodies in upstream.calls for body in call_bodies]
    assert len(posted) == len(set(posted))  # no task reached the upstream twice
    if call is not None:  # nothing is sent after the stop
        assert len(upstream.calls) == (call if accepted else call - 1)
    posted_ids = {tag.removeprefix("aisa-dashboard:") for tag in posted}
    for task in Task.objects.all():
        if str(task.pk) in posted_ids:  # it may have been accepted: never "failed, not sent"
            assert task.status in (Task.Status.SUBMITTED, Task.Status.QUEUED), (step, task.status_message)
        else:
            assert task.status in (Task.Status.QUEUED, Task.Status.FAILED), step
    assert not BudgetHold.objects.exists()  # the rest of the batch's hold was dropped

    # The restart: once the submission's lifetime is over, resume_collection marks what was left queued
    # unknown, and sends nothing.
    sent = len(upstream.calls)
    Task.objects.update(created_at=timezone.now() - SUBMISSION_LIFETIME - timedelta(minutes=1))
    call_command("resume_collection", stdout=None)
    assert len(upstream.calls) == sent
    assert not Task.objects.filter(status=Task.Status.QUEUED).exists()
