"""Workers killed (SIGKILL, a real process) at each step of a chunk whose first task_post the upstream
refuses as a whole with a temporary code (a top-level 40101, nothing accepted) and of its send again;
then a worker started again. The stand-in (live_server, in this process) counts every task each POST
carried and every refusal: a task reaches the upstream once more than it was refused at most, is accepted
at most once, and a task whose POST may have started and whose reply was not recorded is unknown, never
sent again.

The workers are tests/submission/worker_process.py (see test_kills.py); `--unreachable-delay` makes the
wait before the send again half a second instead of seconds to minutes.
"""

from collections import Counter

import pytest

from sandbox import envelope, services
from sandbox.models import SandboxTask
from tasks.models import SendChunk, Task, TaskEvent
from tests.submission.test_kills import LEASE, finish, stand_in, statuses, submit, task_posts, worker

__all__ = ["stand_in"]  # the fixture, shared with test_kills.py

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def refusing_stand_in(stand_in, monkeypatch):
    """The stand-in, answering its first task_post with a top-level 40101 (tasks null, nothing processed
    or charged) and the later ones as usual. Returns (credential, sends, refusals) by prompt, counted as
    the stand-in answers."""
    sends, refusals = Counter(), Counter()
    original = services.tasks_post

    def tasks_post(*, tasks, started, **kwargs):
        prompts = [fields.get("user_prompt") for fields in tasks]
        sends.update(prompts)
        if not refusals:
            refusals.update(prompts)
            return envelope.envelope(
                None, started=started, status_code=40101, message="Engine error.", cost=0
            )
        return original(tasks=tasks, started=started, **kwargs)

    monkeypatch.setattr(services, "tasks_post", tasks_post)
    return stand_in, sends, refusals


@pytest.mark.parametrize(
    ("step", "call", "posts", "unknown"),
    [
        # the first send claimed, never posted: swept back, then refused and sent again by the next worker
        ("claimed", 1, 2, 0),
        # the first POST may have started: unknown, never sent
        ("post_started", 1, 0, 3),
        # the refusal came back, not recorded (lost with the worker): unknown, never sent again
        ("posted", 1, 1, 3),
        # killed inside the refusal's recording (tasks queued again, not committed): rolled back, as above
        ("recording", 1, 1, 3),
        # the send again claimed, its POST not started: swept back to planned, sent once by the next worker
        ("claimed", 2, 2, 0),
        # the send again's POST may have started: unknown, never sent a third time
        ("post_started", 2, 1, 3),
        ("posted", 2, 2, 3),
        ("recording", 2, 2, 3),
    ],
)
def test_a_worker_killed_around_a_task_post_refused_as_a_whole_never_sends_a_task_past_its_refusals(
    refusing_stand_in, admin_user, step, call, posts, unknown
):
    credential, sends, refusals = refusing_stand_in
    tasks = submit(credential, admin_user, 3)

    code, output = finish(
        worker("--kill-at", step, "--kill-call", str(call), "--unreachable-delay", "0.5", "--wait", "5")
    )
    assert code == -9, output
    code, output = finish(worker("--wait", str(LEASE * 3), "--unreachable-delay", "0.5"))
    assert code == 0, output

    assert task_posts() == posts
    accepted = Counter(SandboxTask.objects.values_list("data__user_prompt", flat=True))
    prompts = [task.user_prompt for task in tasks]
    assert set(refusals.values()) <= {1}  # the stand-in refuses one POST
    for prompt in prompts:
        assert accepted[prompt] <= 1  # never accepted twice
        assert sends[prompt] == refusals[prompt] + accepted[prompt], (prompt, sends, accepted)
        assert sends[prompt] <= refusals[prompt] + 1
    assert statuses(tasks) == Counter(
        {Task.Status.UNKNOWN: unknown} if unknown else {Task.Status.SUBMITTED: 3}
    )
    if unknown == 0:  # refused, queued again (one event each), then accepted once
        for task in tasks:
            assert (
                TaskEvent.objects.filter(task=task, kind=TaskEvent.Kind.ERROR, status_code=40101).count() == 1
            )
            assert TaskEvent.objects.filter(task=task, kind=TaskEvent.Kind.POSTED).count() == 1
    assert not SendChunk.objects.filter(state__in=(SendChunk.State.PLANNED, SendChunk.State.SENDING)).exists()
