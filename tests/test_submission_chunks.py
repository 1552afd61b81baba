"""A submission of several task_post chunks: each chunk's outcome lands on its own tasks, a failed
chunk stops the sending, and a failure while recording never lets the sender run on.

The upstream here is tests.fake_upstream.FakeUpstream, which answers per call; the same paths over real
HTTP against the stand-in are in test_services.py and, for the client's own chunking, test_clients.py.
"""

import pytest
from django.db import DatabaseError

from tasks import services
from tasks.clients import UpstreamReplyLost, UpstreamUnavailable
from tasks.models import Task, TaskEvent
from tests.factories import make_credential, make_user
from tests.fake_upstream import CHARGE, FakeUpstream

pytestmark = pytest.mark.django_db


@pytest.fixture
def submit(monkeypatch):
    credential = make_credential()
    user = make_user()

    def submit(upstream: FakeUpstream, count: int) -> list[Task]:
        monkeypatch.setattr(services, "LLMResponsesClient", upstream)
        specs = [
            services.TaskSpec(provider="chat_gpt", body={"user_prompt": f"q{i}", "model_name": "gpt-4.1"})
            for i in range(count)
        ]
        return services.submit_tasks(specs=specs, credential=credential, user=user)

    return submit


def statuses(tasks: list[Task]) -> list[str]:
    return [task.status for task in tasks]


def answered_own_body(upstream: FakeUpstream, tasks: list[Task]) -> bool:
    """Each task holds the upstream id the fake gave to that task's own body."""
    return all(upstream.answered[task.upstream_task_id]["user_prompt"] == task.user_prompt for task in tasks)


def test_250_tasks_go_in_three_calls_and_each_task_gets_the_outcome_of_its_own_body(submit):
    upstream = FakeUpstream()
    tasks = submit(upstream, 250)
    assert [len(call) for call in upstream.calls] == [100, 100, 50]
    assert [task.user_prompt for task in tasks] == [f"q{i}" for i in range(250)]
    assert answered_own_body(upstream, tasks)
    assert statuses(tasks) == [Task.Status.SUBMITTED] * 250
    assert TaskEvent.objects.filter(kind=TaskEvent.Kind.POSTED).count() == 250
    assert all(task.spend == CHARGE and task.next_poll_at for task in tasks)


def test_a_lost_reply_in_the_second_chunk_keeps_the_first_and_never_sends_the_third(submit):
    upstream = FakeUpstream({2: UpstreamReplyLost("the reply was lost", lost_range=(0, 100))})
    tasks = submit(upstream, 250)
    assert len(upstream.calls) == 2
    assert statuses(tasks) == (
        [Task.Status.SUBMITTED] * 100 + [Task.Status.UNKNOWN] * 100 + [Task.Status.FAILED] * 50
    )
    assert answered_own_body(upstream, tasks[:100])
    assert all("not sent again" in task.status_message for task in tasks[100:200])
    assert all(task.spend == CHARGE for task in tasks[100:200])  # may have been charged
    assert all(task.status_message.startswith("Not sent") and task.spend == 0 for task in tasks[200:])


def test_a_refused_second_chunk_keeps_the_first_and_fails_the_rest_as_not_sent(submit):
    upstream = FakeUpstream({2: UpstreamUnavailable("Could not reach the upstream. Nothing was sent.")})
    tasks = submit(upstream, 250)
    assert len(upstream.calls) == 2
    assert statuses(tasks) == [Task.Status.SUBMITTED] * 100 + [Task.Status.FAILED] * 150
    assert all("Could not reach" in task.status_message and task.spend == 0 for task in tasks[100:])
    assert TaskEvent.objects.filter(kind=TaskEvent.Kind.ERROR).count() == 150


def test_a_failure_while_recording_stops_the_sender_and_leaves_the_rest_for_resume(submit, monkeypatch):
    upstream = FakeUpstream()
    record = services._record_post_outcomes

    def record_then_fail(tasks, outcomes):
        record(tasks, outcomes)
        raise DatabaseError("disk I/O error")

    monkeypatch.setattr(services, "_record_post_outcomes", record_then_fail)
    with pytest.raises(DatabaseError):
        submit(upstream, 500)
    # The sender runs at most one chunk ahead of the recording: it stopped long before the fifth call.
    assert len(upstream.calls) <= 2
    sent = sum(len(call) for call in upstream.calls)
    assert Task.objects.filter(status=Task.Status.SUBMITTED).count() == 100
    # Whatever was not recorded stays `queued`: resume_collection marks those unknown, never resends.
    assert Task.objects.filter(status=Task.Status.QUEUED).count() == 400
    assert sent <= 200


def test_the_tasks_of_one_submission_list_in_the_order_they_were_given(submit):
    submit(FakeUpstream(), 120)
    oldest_first = Task.objects.order_by("created_at").values_list("user_prompt", flat=True)
    assert list(oldest_first) == [f"q{i}" for i in range(120)]
