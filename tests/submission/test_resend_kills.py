"""Workers killed (SIGKILL, a real process) while recording a task_post reply in which one task was refused
with a temporary code (50000) and the others accepted, and while sending that task again; then a worker
started again. The stand-in (live_server, in this process) counts every task each POST carried, every
refusal and every acceptance: a task is sent exactly once more than it was refused, unless the reply to
its last send was lost (then it is unknown and never sent again), and no accepted task is sent twice.

The workers are tests/submission/worker_process.py (see test_kills.py); `--resend-delay` makes the wait
before a resend half a second instead of minutes.
"""

from collections import Counter

import pytest

from sandbox import faults, services
from sandbox.models import SandboxTask
from tasks.models import SendChunk, Task, TaskEvent
from tests.submission.test_kills import LEASE, finish, stand_in, statuses, submit, task_posts, worker

__all__ = ["stand_in"]  # the fixture, shared with test_kills.py

pytestmark = pytest.mark.django_db(transaction=True)

REFUSED = "Question 1?"  # the second task of the chunk: refused once with 50000


@pytest.fixture
def refusing_stand_in(stand_in, monkeypatch):
    """The stand-in, answering its first task_post with 50000 for REFUSED (its `task_refused` fault:
    nothing processed or charged for it) and as usual for the others. Returns (credential, sends,
    refusals) by prompt, counted as the stand-in answers."""
    sends, refusals = Counter(), Counter()
    original = services.tasks_post

    def tasks_post(*, tasks, refused=None, **kwargs):
        prompts = [fields.get("user_prompt") for fields in tasks]
        sends.update(prompts)
        refusals.update(prompts[i] for i in refused or {})
        return original(tasks=tasks, refused=refused, **kwargs)

    monkeypatch.setattr(services, "tasks_post", tasks_post)
    faults.inject("task_refused", prompt_contains=REFUSED)
    return stand_in, sends, refusals


@pytest.mark.parametrize(
    ("step", "call", "posts", "unknown"),
    [
        # the reply with the refusal was not recorded (lost with the worker): all three unknown, none resent
        ("posted", 1, 1, 3),
        ("recording", 1, 1, 3),
        ("replanning", 1, 1, 3),  # the new chunk written, not committed: rolled back with the rest
        # the resend claimed, its POST not started: swept back to planned, sent once by the next worker
        ("claimed", 2, 2, 0),
        # the resend's POST may have started: the refused task is unknown, never sent a third time
        ("post_started", 2, 1, 1),
        ("posted", 2, 2, 1),
        ("recording", 2, 2, 1),
    ],
)
def test_a_worker_killed_around_a_task_refused_for_now_never_sends_a_task_more_than_once_past_its_refusals(
    refusing_stand_in, admin_user, step, call, posts, unknown
):
    credential, sends, refusals = refusing_stand_in
    tasks = submit(credential, admin_user, 3)

    code, output = finish(
        worker("--kill-at", step, "--kill-call", str(call), "--resend-delay", "0.5", "--wait", "5")
    )
    assert code == -9, output
    code, output = finish(worker("--wait", str(LEASE * 3), "--resend-delay", "0.5"))
    assert code == 0, output

    assert task_posts() == posts
    accepted = Counter(SandboxTask.objects.values_list("data__user_prompt", flat=True))
    prompts = [task.user_prompt for task in tasks]
    assert refusals == Counter({REFUSED: 1})
    assert all(accepted[prompt] <= 1 for prompt in prompts)  # never an accepted task twice
    for prompt in prompts:
        assert sends[prompt] == refusals[prompt] + accepted[prompt], (prompt, sends, accepted)
    assert statuses(tasks) == Counter(
        {Task.Status.SUBMITTED: 3 - unknown, Task.Status.UNKNOWN: unknown}
        if unknown
        else {Task.Status.SUBMITTED: 3}
    )
    if unknown == 0:  # the refused task: refused, planned again (one event), accepted
        refused = next(task for task in tasks if task.user_prompt == REFUSED)
        assert TaskEvent.objects.filter(task=refused, data__has_key="resend_attempt").count() == 1
        assert TaskEvent.objects.filter(task=refused, kind=TaskEvent.Kind.POSTED).count() == 1
    assert not SendChunk.objects.filter(state__in=(SendChunk.State.PLANNED, SendChunk.State.SENDING)).exists()
