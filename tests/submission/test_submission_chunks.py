"""A submission of several task_post chunks: each chunk's rows are committed before it is posted and
the next chunk's while it is in flight, each chunk's outcome lands on its own tasks, a failed chunk
stops the sending, a failure while recording never lets the sender run on, and the budget stays
reserved for the chunks not written yet.

The upstream here is fake_upstream.FakeUpstream, which answers per call; the same paths over real HTTP
against the stand-in are in test_services.py and, for the client's own chunking, test_clients.py.
"""

import time
import uuid

import pytest
from django.db import DatabaseError, connection, transaction

from tasks.models import Budget, BudgetHold, Task, TaskEvent
from tasks.spend.budgets import BudgetExceeded, budget_spent, budgets_reserve
from tasks.submission import sending
from tasks.upstream import clients
from tasks.upstream.outcomes import UpstreamReplyLost, UpstreamUnavailable
from tests.factories import make_credential, make_user
from tests.submission.fake_upstream import CHARGE, FakeUpstream

pytestmark = pytest.mark.django_db


@pytest.fixture
def submit(monkeypatch):
    credential = make_credential()
    user = make_user()

    def submit(upstream: FakeUpstream, count: int) -> list[Task]:
        monkeypatch.setattr(clients, "LLMResponsesClient", upstream)
        specs = [
            sending.TaskSpec(provider="chat_gpt", body={"user_prompt": f"q{i}", "model_name": "gpt-4.1"})
            for i in range(count)
        ]
        return sending.submit_tasks(specs=specs, credential=credential, user=user)

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
    tasks = submit(upstream, 500)
    assert len(upstream.calls) == 2
    # Chunk 3 was written while chunk 2 was in flight, chunks 4 and 5 only after it failed: all
    # 400 say the same thing.
    assert statuses(tasks) == [Task.Status.SUBMITTED] * 100 + [Task.Status.FAILED] * 400
    assert all("Could not reach" in task.status_message and task.spend == 0 for task in tasks[100:])
    assert TaskEvent.objects.filter(kind=TaskEvent.Kind.ERROR).count() == 400
    assert not BudgetHold.objects.exists()


def test_a_failure_while_recording_stops_the_sender_and_leaves_the_rest_for_resume(submit, monkeypatch):
    upstream = FakeUpstream()

    def fail(tasks, outcomes):
        raise DatabaseError("disk I/O error")

    monkeypatch.setattr(sending, "_record_post_outcomes", fail)
    with pytest.raises(DatabaseError):
        submit(upstream, 500)
    # The sender runs at most one chunk ahead of the recording: it stopped long before the fifth call.
    assert len(upstream.calls) <= 2
    # The first chunk's outcome and the third chunk's rows were one transaction: neither is there. The
    # two chunks written stay `queued` (they may have been sent): resume_collection marks them unknown,
    # never resends them. The chunks after them were never written, and their hold is dropped.
    assert Task.objects.filter(status=Task.Status.QUEUED).count() == 200
    assert Task.objects.count() == 200
    assert not BudgetHold.objects.exists()


def test_a_failure_while_writing_the_next_chunk_keeps_the_outcome_recorded_with_it(submit, monkeypatch):
    upstream = FakeUpstream()
    create = sending._create_tasks

    def fail_at_the_third_chunk(submission, start, end, **state):
        if start == 200 and not state:
            raise DatabaseError("disk I/O error")
        return create(submission, start, end, **state)

    monkeypatch.setattr(sending, "_create_tasks", fail_at_the_third_chunk)
    with pytest.raises(DatabaseError):
        submit(upstream, 500)
    assert len(upstream.calls) <= 2
    # The first chunk's outcome was committed though the write beside it failed.
    assert Task.objects.filter(status=Task.Status.SUBMITTED).count() == 100
    assert TaskEvent.objects.filter(kind=TaskEvent.Kind.POSTED).count() == 100
    # The second chunk was in flight: its outcome was not recorded, so it stays `queued` for resume.
    assert Task.objects.filter(status=Task.Status.QUEUED).count() == 100
    assert Task.objects.count() == 200
    assert not BudgetHold.objects.exists()


class WatchingUpstream(FakeUpstream):
    """At each call, reads from its own database connection (the sending thread's) which tasks are
    committed: as the call arrives, and again after taking a moment to answer, as an upstream does."""

    def __init__(self, failures=None):
        super().__init__(failures)
        self.seen: list[tuple[set, dict, int]] = []  # per call: posted, committed by status, count later

    def task_post(self, provider, bodies):
        posted = {uuid.UUID(body["tag"].removeprefix("aisa-dashboard:")) for body in bodies}
        try:
            committed = dict(Task.objects.values_list("pk", "status"))
            time.sleep(0.05)
            later = Task.objects.count()
        finally:
            connection.close()
        self.seen.append((posted, committed, later))
        return super().task_post(provider, bodies)


def test_each_chunk_is_committed_before_its_post_and_at_most_one_more_is_written_ahead(transactional_db):
    upstream = WatchingUpstream()
    credential, user = make_credential(), make_user()
    specs = [
        sending.TaskSpec(provider="chat_gpt", body={"user_prompt": f"q{i}", "model_name": "gpt-4.1"})
        for i in range(450)
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clients, "LLMResponsesClient", upstream)
        sending.submit_tasks(specs=specs, credential=credential, user=user)

    assert [len(posted) for posted, _, _ in upstream.seen] == [100, 100, 100, 100, 50]
    for call, (posted, committed, later) in enumerate(upstream.seen, start=1):
        assert all(committed.get(pk) == Task.Status.QUEUED for pk in posted), f"call {call}"
        # While a chunk is in flight, the chunks before it, it, and at most the next one exist.
        assert later <= min(450, (call + 1) * 100), f"call {call}"
    # The next chunk was written while the first was in flight, not after.
    assert upstream.seen[0][2] == 200
    assert Task.objects.filter(status=Task.Status.SUBMITTED).count() == 450


def test_a_batch_in_flight_keeps_its_whole_reservation_until_its_rows_take_it_over(transactional_db):
    """While the first of three chunks is in flight, only it (and perhaps the next) has rows: the rest
    of the batch is held, so another submission cannot take the budget the batch was promised."""
    credential, user, other = make_credential(), make_user(), make_user("other")
    budget = Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=CHARGE * 300)
    during: dict = {}

    class Upstream(FakeUpstream):
        def task_post(self, provider, bodies):
            if not self.calls:
                try:
                    during["spent"] = budget_spent(budget)
                    for count in (51, 50):
                        try:
                            with transaction.atomic():
                                budgets_reserve(user=other, charges=[("", CHARGE)] * count)
                            during[count] = "fits"
                        except BudgetExceeded:
                            during[count] = "refused"
                finally:
                    connection.close()
            return super().task_post(provider, bodies)

    specs = [
        sending.TaskSpec(provider="chat_gpt", body={"user_prompt": f"q{i}", "model_name": "gpt-4.1"})
        for i in range(250)
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clients, "LLMResponsesClient", Upstream())
        sending.submit_tasks(specs=specs, credential=credential, user=user)

    assert during == {"spent": CHARGE * 250, 51: "refused", 50: "fits"}
    assert not BudgetHold.objects.exists()
    assert budget_spent(budget) == CHARGE * 250


def test_the_tasks_of_one_submission_list_in_the_order_they_were_given(submit):
    submit(FakeUpstream(), 120)
    oldest_first = Task.objects.order_by("created_at").values_list("user_prompt", flat=True)
    assert list(oldest_first) == [f"q{i}" for i in range(120)]


def test_task_ids_grow_with_time_so_new_rows_append_to_the_indexes(submit):
    """UUIDv7: the ids of a submission's tasks, and of the next submission's, sort in the order the
    tasks were written (a random id would put each new row on a random page of every index holding it)."""
    tasks = submit(FakeUpstream(), 150) + submit(FakeUpstream(), 20)
    ids = [task.pk for task in tasks]
    assert {pk.version for pk in ids} == {7}
    assert ids == sorted(ids)


def test_a_credential_the_keys_cannot_open_fails_every_task_of_a_batch_as_not_sent(settings):
    from cryptography.fernet import Fernet

    credential, user = make_credential(), make_user()
    settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode()]  # not the key it was encrypted with
    specs = [
        sending.TaskSpec(provider="chat_gpt", body={"user_prompt": f"q{i}", "model_name": "gpt-4.1"})
        for i in range(250)
    ]

    tasks = sending.submit_tasks(specs=specs, credential=credential, user=user)

    assert statuses(tasks) == [Task.Status.FAILED] * 250
    assert all("CREDENTIAL_KEYS" in task.status_message and task.spend == 0 for task in tasks)
    assert TaskEvent.objects.filter(kind=TaskEvent.Kind.ERROR).count() == 250
    assert not BudgetHold.objects.exists()
