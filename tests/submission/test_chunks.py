"""Submissions are plans of chunks; workers claim, post and record each chunk on its own.

The upstream here is tests.submission.fake_upstream.FakeUpstream, which answers per call, inside this
process; the worker is the real loop (tasks.submission.workers.chunks_drain). Killed workers (real
processes, the stand-in over HTTP) are in test_kills.py.
"""

import dataclasses
import itertools
import uuid
from datetime import timedelta

import pytest
from django.db import DatabaseError
from django.utils import timezone

from tasks.models import Budget, Credential, SendChunk, SendingLimit, Task, TaskEvent
from tasks.spend.budgets import budget_spent
from tasks.submission import chunks, recording, sending, workers
from tasks.submission.rate_limits import sending_slot_take
from tasks.upstream import clients
from tasks.upstream.outcomes import UpstreamRateLimited, UpstreamRejected, UpstreamReplyLost
from tests.factories import make_credential, make_user
from tests.submission.fake_upstream import CHARGE, FakeUpstream
from tests.submission.sending import send_planned

pytestmark = pytest.mark.django_db


@pytest.fixture
def submit(monkeypatch):
    credential = make_credential()
    user = make_user()

    def submit(upstream: FakeUpstream, count: int, *, prefix: str = "q") -> list[Task]:
        monkeypatch.setattr(clients, "LLMResponsesClient", upstream)
        specs = [
            sending.TaskSpec(
                provider="chat_gpt", body={"user_prompt": f"{prefix}{i}", "model_name": "gpt-4.1"}
            )
            for i in range(count)
        ]
        return sending.submit_tasks(specs=specs, credential=credential, user=user)

    return submit


def reloaded(tasks: list[Task]) -> list[Task]:
    saved = Task.objects.in_bulk([task.pk for task in tasks])
    return [saved[task.pk] for task in tasks]


def statuses(tasks: list[Task]) -> list[str]:
    return [task.status for task in reloaded(tasks)]


def answered_own_body(upstream: FakeUpstream, tasks: list[Task]) -> bool:
    """Each task holds the upstream id the fake gave to that task's own body."""
    return all(
        upstream.answered[task.upstream_task_id]["user_prompt"] == task.user_prompt
        for task in reloaded(tasks)
    )


def test_a_submission_is_planned_in_chunks_and_nothing_is_posted_until_a_worker_runs(submit):
    upstream = FakeUpstream()
    tasks = submit(upstream, 250)

    assert upstream.calls == []
    assert statuses(tasks) == [Task.Status.QUEUED] * 250
    assert sorted(SendChunk.objects.values_list("task_count", flat=True)) == [50, 100, 100]
    assert set(SendChunk.objects.values_list("state", flat=True)) == {SendChunk.State.PLANNED}
    assert all(task.chunk_id for task in reloaded(tasks))


def test_250_tasks_go_in_three_calls_and_each_task_gets_the_outcome_of_its_own_body(submit):
    upstream = FakeUpstream()
    tasks = submit(upstream, 250)

    assert send_planned() == 3

    assert [len(call) for call in upstream.calls] == [100, 100, 50]
    assert [body["user_prompt"] for body in upstream.posted] == [f"q{i}" for i in range(250)]
    assert answered_own_body(upstream, tasks)
    assert statuses(tasks) == [Task.Status.SUBMITTED] * 250
    assert TaskEvent.objects.filter(kind=TaskEvent.Kind.POSTED).count() == 250
    assert all(task.spend == CHARGE and task.next_poll_at for task in reloaded(tasks))
    assert set(SendChunk.objects.values_list("state", flat=True)) == {SendChunk.State.SENT}


def test_a_lost_reply_leaves_only_its_chunk_unknown_and_it_is_never_sent_again(submit):
    upstream = FakeUpstream({2: UpstreamReplyLost("the reply was lost", lost_range=(0, 100))})
    tasks = submit(upstream, 250)

    send_planned()
    send_planned()  # a second worker run finds nothing to resend

    assert len(upstream.calls) == 3
    assert statuses(tasks) == (
        [Task.Status.SUBMITTED] * 100 + [Task.Status.UNKNOWN] * 100 + [Task.Status.SUBMITTED] * 50
    )
    lost = reloaded(tasks[100:200])
    assert all("not sent again" in task.status_message for task in lost)
    assert all(task.spend == CHARGE and not task.spend_is_final for task in lost)  # may have been charged
    assert SendChunk.objects.filter(state=SendChunk.State.UNKNOWN).count() == 1


def test_a_chunk_refused_as_a_whole_fails_its_own_tasks_as_not_sent_and_the_others_go(submit):
    refusal = UpstreamRejected("AIsa rejected the request (HTTP 400): bad request.", status_code=400)
    upstream = FakeUpstream({1: refusal})
    tasks = submit(upstream, 150)

    send_planned()

    assert statuses(tasks) == [Task.Status.FAILED] * 100 + [Task.Status.SUBMITTED] * 50
    failed = reloaded(tasks[:100])
    assert all(task.status_message.startswith("Not sent") and task.spend == 0 for task in failed)
    assert all(task.spend_is_final for task in failed)
    assert SendChunk.objects.filter(state=SendChunk.State.REJECTED).count() == 1


@pytest.mark.parametrize("retry_after", [1e13, 30 * 24 * 3600])
def test_an_absurd_retry_after_delays_the_chunk_an_hour_at_most_and_fails_nothing(submit, retry_after):
    upstream = FakeUpstream({1: UpstreamRateLimited("Slow down.", retry_after=retry_after)})
    tasks = submit(upstream, 10)

    workers.chunks_drain(worker="w")

    chunk = SendChunk.objects.get()
    assert chunk.state == SendChunk.State.PLANNED  # certainly not accepted: never "unknown"
    assert timezone.now() < chunk.not_before <= timezone.now() + timedelta(hours=1)
    assert SendingLimit.objects.get().limited_until <= timezone.now() + timedelta(hours=1)
    assert statuses(tasks) == [Task.Status.QUEUED] * 10


def test_a_rate_limit_delays_the_chunk_and_fails_nothing(submit):
    upstream = FakeUpstream({2: UpstreamRateLimited("AIsa is limiting the rate of requests.", retry_after=1)})
    tasks = submit(upstream, 300)

    workers.chunks_drain(worker="w")  # returns when only the delayed chunk is left

    # The chunk that met the limit waits for its Retry-After, and the credential's next chunk with it.
    limited = SendChunk.objects.get(last_error__contains="limiting the rate")
    assert limited.state == SendChunk.State.PLANNED and limited.not_before > timezone.now()
    assert SendingLimit.objects.get().limited_until > timezone.now()
    assert SendChunk.objects.filter(state=SendChunk.State.PLANNED).count() == 2
    assert Task.objects.filter(status=Task.Status.QUEUED).count() == 200
    assert not Task.objects.filter(status=Task.Status.FAILED).exists()

    send_planned(wait=3)  # after Retry-After the same worker code sends it

    assert statuses(tasks) == [Task.Status.SUBMITTED] * 300
    assert len(upstream.calls) == 4


def test_a_failure_while_recording_leaves_the_chunk_in_flight_and_the_sweep_never_resends_it(
    submit, monkeypatch
):
    upstream = FakeUpstream()
    tasks = submit(upstream, 100)

    def fail(**kwargs):
        raise DatabaseError("disk I/O error")

    monkeypatch.setattr(recording, "tasks_record_post_outcomes", fail)
    with pytest.raises(DatabaseError):
        send_planned()
    monkeypatch.undo()
    monkeypatch.setattr(clients, "LLMResponsesClient", upstream)

    # The outcome was one transaction: nothing of it is there, not even the chunk's own update, which
    # comes first in it. The chunk says its POST started; its tasks are as the claim left them, queued.
    chunk = SendChunk.objects.get()
    assert chunk.state == SendChunk.State.SENDING and chunk.post_started_at is not None
    assert chunk.finished_at is None
    assert statuses(tasks) == [Task.Status.QUEUED] * 100

    assert chunks.chunks_sweep(now=timezone.now() + chunks.sending_lease() * 2) == (0, 1)
    send_planned()
    assert len(upstream.calls) == 1
    assert statuses(tasks) == [Task.Status.UNKNOWN] * 100
    assert all("may have been accepted and charged" in task.status_message for task in reloaded(tasks))


def test_a_claimed_chunk_whose_post_never_started_goes_back_to_planned_after_its_lease(submit):
    upstream = FakeUpstream()
    tasks = submit(upstream, 100)
    claimed = chunks.chunk_claim(worker="killed")
    assert SendChunk.objects.get(pk=claimed.chunk.pk).state == SendChunk.State.SENDING
    assert statuses(tasks) == [Task.Status.QUEUED] * 100  # the claim writes the chunk, not its tasks

    assert chunks.chunks_sweep() == (0, 0)  # its lease still runs
    assert chunks.chunks_sweep(now=timezone.now() + chunks.sending_lease() * 2) == (1, 0)

    assert SendChunk.objects.get(pk=claimed.chunk.pk).state == SendChunk.State.PLANNED
    assert statuses(tasks) == [Task.Status.QUEUED] * 100
    # The worker that claimed it, if it was only slow, finds it is no longer its own and posts nothing.
    assert chunks.chunk_mark_post_started(claimed) is False
    send_planned()
    assert len(upstream.calls) == 1
    assert statuses(tasks) == [Task.Status.SUBMITTED] * 100
    assert not TaskEvent.objects.filter(kind=TaskEvent.Kind.UNKNOWN).exists()


def test_two_claims_take_two_different_chunks_and_a_third_finds_none(submit):
    submit(FakeUpstream(), 200)

    first = chunks.chunk_claim(worker="a")
    second = chunks.chunk_claim(worker="b")

    assert first.chunk.pk != second.chunk.pk
    assert chunks.chunk_claim(worker="c") is None
    assert {task.pk for task in first.tasks}.isdisjoint({task.pk for task in second.tasks})
    assert len(first.tasks) == len(second.tasks) == 100


def test_the_whole_batch_counts_against_the_budget_from_the_moment_it_is_planned(submit):
    budget = Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=CHARGE * 300)
    submit(FakeUpstream(), 250)

    assert budget_spent(budget) == CHARGE * 250  # before any worker has sent anything
    send_planned()
    assert budget_spent(budget) == CHARGE * 250


def test_the_tasks_of_one_submission_list_in_the_order_they_were_given(submit):
    submit(FakeUpstream(), 120)
    oldest_first = Task.objects.order_by("created_at").values_list("user_prompt", flat=True)
    assert list(oldest_first) == [f"q{i}" for i in range(120)]


def test_task_ids_grow_with_time_so_new_rows_append_to_the_indexes(submit):
    """UUIDv7: the ids of a submission's tasks, and of the next submission's, sort in the order the
    tasks were written (a random id would put each new row on a random page of every index holding it)."""
    tasks = submit(FakeUpstream(), 150) + submit(FakeUpstream(), 20, prefix="r")
    ids = [task.pk for task in tasks]
    assert {pk.version for pk in ids} == {7}
    assert ids == sorted(ids)
    assert all(isinstance(pk, uuid.UUID) for pk in ids)


def test_a_credential_the_keys_cannot_open_fails_every_task_as_not_sent(settings):
    from cryptography.fernet import Fernet

    credential, user = make_credential(), make_user()
    specs = [
        sending.TaskSpec(provider="chat_gpt", body={"user_prompt": f"q{i}", "model_name": "gpt-4.1"})
        for i in range(250)
    ]
    tasks = sending.submit_tasks(specs=specs, credential=credential, user=user)
    settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode()]  # not the key it was encrypted with

    send_planned()

    assert statuses(tasks) == [Task.Status.FAILED] * 250
    assert all("CREDENTIAL_KEYS" in task.status_message and task.spend == 0 for task in reloaded(tasks))
    assert TaskEvent.objects.filter(kind=TaskEvent.Kind.ERROR).count() == 250


def test_a_live_task_is_sent_by_the_worker_with_the_live_call(monkeypatch):
    from tasks.upstream.outcomes import StatusClass, TaskOutcome

    class LiveUpstream(FakeUpstream):
        def live(self, provider, body):
            self.calls.append([body])
            return TaskOutcome(
                id=str(uuid.uuid4()), status_code=20000, status_message="Ok.", status_class=StatusClass.DONE,
                cost=CHARGE, data={}, result=[{"items": []}], raw={"status_code": 20000},
            )  # fmt: skip

    upstream = LiveUpstream()
    monkeypatch.setattr(clients, "LLMResponsesClient", upstream)
    spec = sending.TaskSpec(provider="chat_gpt", body={"user_prompt": "now", "model_name": "gpt-4.1"})
    (task,) = sending.submit_tasks(
        specs=[spec], credential=make_credential(), user=make_user(), mode=Task.Mode.LIVE
    )
    assert task.status == Task.Status.QUEUED and upstream.calls == []

    send_planned()

    task.refresh_from_db()
    assert len(upstream.calls) == 1
    assert task.status == Task.Status.COMPLETED
    assert task.spend_is_final


def test_dataforseo_allows_2000_calls_a_minute_and_no_more():
    credential = make_credential(kind=Credential.Kind.DATAFORSEO, login="me")
    now = timezone.now()
    waits = [sending_slot_take(credential=credential, max_wait=120, now=now) for _ in range(2001)]

    assert waits[:21] == [0.0] * 21  # a burst of 1 % goes at once
    assert all(later >= earlier for earlier, later in itertools.pairwise(waits))
    # The 2,001st call waits a full minute after the first.
    assert waits[2000] >= 60 - 0.001
    assert waits[1999] < 60


def test_a_limit_set_on_an_aisa_key_is_kept_and_a_key_without_one_is_not_limited():
    limited = make_credential(calls_per_minute=60)
    free = make_credential()
    now = timezone.now()

    assert [sending_slot_take(credential=free, max_wait=0, now=now) for _ in range(500)] == [0.0] * 500
    assert sending_slot_take(credential=limited, max_wait=0.5, now=now) == 0.0
    assert sending_slot_take(credential=limited, max_wait=0.5, now=now) is None  # the next is a second away
    assert sending_slot_take(credential=limited, max_wait=0.5, now=now + timedelta(seconds=1)) == 0.0


def test_the_submission_enqueues_sending_jobs_and_a_job_hands_over_what_it_leaves(
    submit, django_capture_on_commit_callbacks
):
    from django.tasks import default_task_backend

    default_task_backend.clear()
    upstream = FakeUpstream({2: UpstreamRateLimited("Slow down.", retry_after=30)})
    with django_capture_on_commit_callbacks(execute=True):
        tasks = submit(upstream, 250)

    enqueued = [r for r in default_task_backend.results if r.task.name == "send_chunks"]
    assert len(enqueued) == workers.SEND_JOBS  # on commit: one per worker that may help

    default_task_backend.clear()
    workers.send_chunks.call()  # what a worker runs

    assert statuses(tasks).count(Task.Status.SUBMITTED) == 100
    follow_up = [r for r in default_task_backend.results if r.task.name == "send_chunks"]
    assert len(follow_up) == 1  # for when the rate limit ends, not before
    assert follow_up[0].task.run_after >= timezone.now() + timedelta(seconds=25)


class LongIdUpstream(FakeUpstream):
    """Accepts every task with the longest id the client takes as an id it can ask about (128 characters)."""

    def task_post(self, provider, bodies):
        outcomes = super().task_post(provider, bodies)
        return [
            dataclasses.replace(outcome, id=f"{index:04d}-" + "a" * 123)
            for index, outcome in enumerate(outcomes)
        ]


def test_a_task_accepted_with_the_longest_id_the_client_takes_is_recorded_and_can_be_asked_about(submit):
    """An accepted task's id must fit its column, or recording fails (PostgreSQL refuses the value) and the
    chunk, charged, is later swept to unknown with its ids lost."""
    upstream = LongIdUpstream()
    tasks = submit(upstream, 3)

    send_planned()

    assert statuses(tasks) == [Task.Status.SUBMITTED] * 3
    assert [task.upstream_task_id for task in reloaded(tasks)] == [f"{i:04d}-" + "a" * 123 for i in range(3)]
    assert len(upstream.calls) == 1
