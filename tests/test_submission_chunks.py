"""A submission of several task_post chunks: each chunk's outcome lands on its own tasks, a failed
chunk stops the sending, and a failure while recording never lets the sender run on.

The upstream here is a fake client that answers per call; the same paths over real HTTP against the
stand-in are in test_services.py and, for the client's own chunking, test_clients.py.
"""

import threading
from decimal import Decimal

import pytest
from django.db import DatabaseError

from tasks import services
from tasks.clients import StatusClass, TaskOutcome, UpstreamReplyLost, UpstreamUnavailable
from tasks.models import Task, TaskEvent
from tests.factories import make_credential, make_user

pytestmark = pytest.mark.django_db

CHARGE = Decimal("0.0102")


def accepted(body: dict) -> TaskOutcome:
    """The upstream's id names the prompt it was given, so a test can see which task got which outcome."""
    return TaskOutcome(
        id=f"up-{body['user_prompt']}",
        status_code=20100,
        status_message="Task Created.",
        status_class=StatusClass.CREATED,
        cost=CHARGE,
        data={},
        result=None,
        raw={},
    )


class ChunkedUpstream:
    """Answers each task_post call in turn; `failures` maps a call number (from 1) to what it raises."""

    def __init__(self, failures: dict[int, Exception] | None = None):
        self.failures = failures or {}
        self.calls: list[list[dict]] = []
        self.lock = threading.Lock()

    def for_credential(self, credential, **kwargs):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        pass

    def task_post(self, provider, bodies):
        with self.lock:
            self.calls.append(bodies)
            number = len(self.calls)
        if number in self.failures:
            raise self.failures[number]
        return [accepted(body) for body in bodies]


@pytest.fixture
def submit(monkeypatch):
    credential = make_credential()
    user = make_user()

    def submit(upstream: ChunkedUpstream, count: int) -> list[Task]:
        monkeypatch.setattr(services, "LLMResponsesClient", upstream)
        specs = [
            services.TaskSpec(provider="chat_gpt", body={"user_prompt": f"q{i}", "model_name": "gpt-4.1"})
            for i in range(count)
        ]
        return services.submit_tasks(specs=specs, credential=credential, user=user)

    return submit


def statuses(tasks: list[Task]) -> list[str]:
    return [task.status for task in tasks]


def test_250_tasks_go_in_three_calls_and_each_task_gets_the_outcome_of_its_own_body(submit):
    upstream = ChunkedUpstream()
    tasks = submit(upstream, 250)
    assert [len(call) for call in upstream.calls] == [100, 100, 50]
    assert [task.user_prompt for task in tasks] == [f"q{i}" for i in range(250)]
    assert all(task.upstream_task_id == f"up-{task.user_prompt}" for task in tasks)
    assert statuses(tasks) == [Task.Status.SUBMITTED] * 250
    assert TaskEvent.objects.filter(kind=TaskEvent.Kind.POSTED).count() == 250
    assert all(task.spend == CHARGE and task.next_poll_at for task in tasks)


def test_a_lost_reply_in_the_second_chunk_keeps_the_first_and_never_sends_the_third(submit):
    upstream = ChunkedUpstream({2: UpstreamReplyLost("the reply was lost", lost_range=(0, 100))})
    tasks = submit(upstream, 250)
    assert len(upstream.calls) == 2
    assert statuses(tasks) == (
        [Task.Status.SUBMITTED] * 100 + [Task.Status.UNKNOWN] * 100 + [Task.Status.FAILED] * 50
    )
    assert all(task.upstream_task_id == f"up-{task.user_prompt}" for task in tasks[:100])
    assert all("not sent again" in task.status_message for task in tasks[100:200])
    assert all(task.spend == CHARGE for task in tasks[100:200])  # may have been charged
    assert all(task.status_message.startswith("Not sent") and task.spend == 0 for task in tasks[200:])


def test_a_refused_second_chunk_keeps_the_first_and_fails_the_rest_as_not_sent(submit):
    upstream = ChunkedUpstream({2: UpstreamUnavailable("Could not reach the upstream. Nothing was sent.")})
    tasks = submit(upstream, 250)
    assert len(upstream.calls) == 2
    assert statuses(tasks) == [Task.Status.SUBMITTED] * 100 + [Task.Status.FAILED] * 150
    assert all("Could not reach" in task.status_message and task.spend == 0 for task in tasks[100:])
    assert TaskEvent.objects.filter(kind=TaskEvent.Kind.ERROR).count() == 150


def test_a_failure_while_recording_stops_the_sender_and_leaves_the_rest_for_resume(submit, monkeypatch):
    upstream = ChunkedUpstream()
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
    submit(ChunkedUpstream(), 120)
    oldest_first = Task.objects.order_by("created_at").values_list("user_prompt", flat=True)
    assert list(oldest_first) == [f"q{i}" for i in range(120)]
