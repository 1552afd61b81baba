"""Collecting results when the upstream sends garbage, and polling chains after a worker was killed.

The upstream is `responses` (through the real client) where the HTTP matters, and a small in-process
stand-in where only timing does (a slow task_get, to hold a poll in flight).
"""

import copy
import json
import threading
import time
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
import responses
from django.core.management import call_command
from django.db import DatabaseError, connection
from django.tasks import default_task_backend
from django.utils import timezone

from tasks.models import Credential, Task, TaskEvent
from tasks.submission import collection
from tasks.upstream import clients
from tasks.upstream.outcomes import StatusClass, TaskOutcome
from tests.factories import make_task
from tests.upstream.test_results import FINISHED

AISA = "https://api.aisa.one/apis/v1/dataforseo"


def task_get_url(task: Task) -> str:
    return f"{AISA}/ai_optimization/chat_gpt/llm_responses/task_get/{task.upstream_task_id}"


def reply(task: Task, **fields) -> str:
    """A task_get envelope about `task`, as JSON text (NaN allowed, as Python writes it)."""
    one = {"id": task.upstream_task_id, "status_code": 20000, "status_message": "Ok.", "cost": 0}
    one |= {"result": None, **fields}
    return json.dumps({"status_code": 20000, "status_message": "Ok.", "tasks": [one]})


def finished(**first_fields) -> list:
    result = copy.deepcopy(FINISHED)
    result[0].update(first_fields)
    return result


@pytest.fixture
def credential(db):
    credential = Credential(name="AIsa", kind=Credential.Kind.AISA, base_url=AISA, is_default=True)
    credential.set_secret("sandbox-key-long-enough")
    credential.save()
    return credential


def waiting_task(credential, **fields) -> Task:
    fields.setdefault("next_poll_at", timezone.now() - timedelta(seconds=1))
    return make_task(credential=credential, status=Task.Status.SUBMITTED, **fields)


def scheduled_collections() -> list:
    return [r for r in default_task_backend.results if r.task.name == "collect_results"]


# --- a malformed result never stops collection ---------------------------------------------------------

GARBAGE_RESULTS = {
    "fan_out_queries is a number": finished(fan_out_queries=7),
    "items is a number": finished(items=5),
    "sections is text": finished(items=[{"type": "message", "sections": "text"}]),
    "annotations is an object": finished(
        items=[{"type": "message", "sections": [{"text": "Hi", "annotations": {"url": "x"}}]}]
    ),
    "money_spent is text": finished(money_spent="abc"),
    "money_spent is NaN": finished(money_spent=float("nan")),
    "money_spent is huge": finished(money_spent=1e30),
    "tokens are huge": finished(input_tokens=10**12, output_tokens=-5),
    "model_name is an object": finished(model_name={"a": 1}),
    "result[0] is a number": [7],
}


@pytest.mark.parametrize("garbage", GARBAGE_RESULTS.values(), ids=GARBAGE_RESULTS.keys())
def test_a_result_that_cannot_be_read_completes_with_an_error_event_and_the_chunk_goes_on(
    credential, garbage
):
    before, broken, after = (waiting_task(credential) for _ in range(3))
    default_task_backend.clear()
    with responses.RequestsMock() as upstream:
        upstream.get(task_get_url(before), body=reply(before, result=FINISHED))
        upstream.get(task_get_url(broken), body=reply(broken, result=garbage))
        upstream.get(task_get_url(after), body=reply(after, status_code=40602, result=None))

        collection.tasks_poll(task_ids=[str(before.pk), str(broken.pk), str(after.pk)])

    before, broken, after = (Task.objects.get(pk=t.pk) for t in (before, broken, after))
    assert before.status == Task.Status.COMPLETED
    assert broken.status == Task.Status.COMPLETED
    assert broken.spend_is_final
    error = broken.events.get(kind=TaskEvent.Kind.ERROR)
    assert error.message.startswith("Parts of the result could not be read")
    assert after.status == Task.Status.PENDING
    assert [r.args[0] for r in scheduled_collections()] == [[str(after.pk)]]


TOLERATED_RESULTS = {
    "a citation url that is not a URL": finished(
        items=[{"type": "message", "sections": [{"text": "Hi", "annotations": [{"url": "http://[::1"}]}]}]
    ),
    "text with a NUL": finished(items=[{"type": "message", "sections": [{"text": "nul\u0000here"}]}]),
    "a lone surrogate": finished(model_name="gpt-\ud800"),
    "nesting deeper than any result": finished(extra=json.loads("[" * 500 + "]" * 500)),
}


@pytest.mark.parametrize("odd", TOLERATED_RESULTS.values(), ids=TOLERATED_RESULTS.keys())
def test_a_result_with_odd_but_storable_values_completes_as_stored(credential, odd):
    task = waiting_task(credential)
    with responses.RequestsMock() as upstream:
        upstream.get(task_get_url(task), body=reply(task, result=odd))
        collection.tasks_poll(task_ids=[str(task.pk)])

    task = Task.objects.get(pk=task.pk)  # read back whole: every stored value can be loaded again
    assert task.status == Task.Status.COMPLETED
    assert "\x00" not in task.answer_text
    assert task.result["status_code"] == 20000


def test_an_unreadable_money_spent_keeps_the_charge_at_post_as_the_cost(credential):
    task = waiting_task(credential)
    with responses.RequestsMock() as upstream:
        upstream.get(task_get_url(task), body=reply(task, result=finished(money_spent="abc")))
        collection.tasks_poll(task_ids=[str(task.pk)])

    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED
    assert task.money_spent is None
    assert task.cost == task.spend == task.charged
    assert "charged at post stands" in task.events.get(kind=TaskEvent.Kind.ERROR).message


@pytest.mark.parametrize(
    "fields",
    [
        {"status_code": 10**12},
        {"status_code": "not a number"},
        {"cost": float("nan")},
        {"cost": 10**30},
        {"result": {"not": "a list"}},
    ],
    ids=["huge-code", "text-code", "nan-cost", "huge-cost", "object-result"],
)
def test_a_task_object_that_cannot_be_read_is_an_error_event_and_is_polled_again(credential, fields):
    task, other = waiting_task(credential), waiting_task(credential)
    default_task_backend.clear()
    with responses.RequestsMock() as upstream:
        upstream.get(task_get_url(task), body=reply(task, **{"result": FINISHED, **fields}))
        upstream.get(task_get_url(other), body=reply(other, result=FINISHED))

        collection.tasks_poll(task_ids=[str(task.pk), str(other.pk)])

    task.refresh_from_db()
    assert task.status == Task.Status.SUBMITTED
    assert "task_get failed" in task.events.get(kind=TaskEvent.Kind.ERROR).message
    assert Task.objects.get(pk=other.pk).status == Task.Status.COMPLETED
    assert [r.args[0] for r in scheduled_collections()] == [[str(task.pk)]]


@pytest.mark.parametrize(
    "outcome_fields",
    [
        {"status_code": 10**12, "status_class": StatusClass.INVALID},
        {"cost": Decimal("1e20")},
        {"raw": {"id": "x", "nested": float("inf"), "text": "a\u0000b\ud800"}},
        {"status_message": "nul \u0000 and a lone \udc80 surrogate"},
    ],
    ids=["code-beyond-integer", "cost-beyond-column", "raw-with-nan-nul-surrogate", "message-nul-surrogate"],
)
def test_values_a_database_refuses_never_escape_task_apply_outcome(credential, outcome_fields):
    task = waiting_task(credential)
    outcome = TaskOutcome(
        id=task.upstream_task_id,
        status_code=20000,
        status_message="Ok.",
        status_class=StatusClass.DONE,
        cost=Decimal("0"),
        data={},
        result=FINISHED,
        raw={"id": task.upstream_task_id},
    )
    fields = {"status_message": "Ok.", **outcome_fields}
    outcome = TaskOutcome(**{**outcome.__dict__, **fields})

    collection.task_apply_outcome(task=task, outcome=outcome, source=TaskEvent.Kind.POLLED)

    task.refresh_from_db()
    assert task.is_final
    assert task.events.exists()


def test_an_unexpected_error_polling_one_task_is_recorded_and_the_others_go_on(credential, monkeypatch):
    broken, fine = waiting_task(credential), waiting_task(credential)
    real_fetch = collection.task_fetch

    def fetch(*, task_id, **kwargs):
        if str(task_id) == str(broken.pk):
            raise RuntimeError("a bug")
        return real_fetch(task_id=task_id, **kwargs)

    monkeypatch.setattr(collection, "task_fetch", fetch)
    default_task_backend.clear()
    with responses.RequestsMock() as upstream:
        upstream.get(task_get_url(fine), body=reply(fine, status_code=40602))
        collection.tasks_poll(task_ids=[str(broken.pk), str(fine.pk)])

    assert "failed unexpectedly (RuntimeError)" in broken.events.get(kind=TaskEvent.Kind.ERROR).message
    assert Task.objects.get(pk=fine.pk).status == Task.Status.PENDING
    scheduled = [task_id for job in scheduled_collections() for task_id in job.args[0]]
    assert sorted(scheduled) == sorted([str(broken.pk), str(fine.pk)])


# --- resuming after a worker was killed ---------------------------------------------------------------


class SlowUpstream:
    """task_get answers "in queue" after `seconds`; counts calls and how many ran at once."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.calls = 0
        self.running = 0
        self.most_at_once = 0
        self.lock = threading.Lock()

    def for_credential(self, credential, **kwargs):
        return self

    def close(self):
        pass

    def task_get(self, provider, task_id):
        with self.lock:
            self.calls += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        time.sleep(self.seconds)
        with self.lock:
            self.running -= 1
        return TaskOutcome(task_id, 40602, "Task In Queue.", StatusClass.PENDING, Decimal("0"), {}, None, {})


def poll_in_a_thread(task: Task) -> threading.Thread:
    def run():
        try:
            collection.tasks_poll(task_ids=[str(task.pk)])
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def resume() -> str:
    out = StringIO()
    call_command("resume_collection", stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_two_chains_for_the_same_task_never_fetch_at_the_same_time(credential, monkeypatch):
    upstream = SlowUpstream(seconds=1.0)
    monkeypatch.setattr(clients, "LLMResponsesClient", upstream)
    monkeypatch.setattr(collection, "POLL_DELAYS", (0.1,) * 9)  # polls due sooner than a fetch takes
    task = waiting_task(credential)

    old_chain = poll_in_a_thread(task)
    time.sleep(0.3)  # its fetch is in flight
    collection.tasks_poll(task_ids=[str(task.pk)])  # a second chain, e.g. re-armed by resume_collection
    old_chain.join()

    assert upstream.calls == 1
    assert Task.objects.get(pk=task.pk).poll_count == 1


@pytest.mark.django_db(transaction=True)
def test_a_resumed_chain_waits_for_a_poll_still_in_flight(credential, monkeypatch):
    upstream = SlowUpstream(seconds=1.0)
    monkeypatch.setattr(clients, "LLMResponsesClient", upstream)
    task = waiting_task(credential)

    old_chain = poll_in_a_thread(task)
    time.sleep(0.3)
    default_task_backend.clear()
    resume()
    (resumed,) = scheduled_collections()
    collection.tasks_poll(task_ids=resumed.args[0])  # even run at once, it leaves the task to the old chain
    old_chain.join()

    assert upstream.calls == 1
    assert upstream.most_at_once == 1
    assert resumed.task.run_after >= timezone.now() + timedelta(seconds=60)


def test_a_chain_whose_job_was_lost_is_resumed_at_once(credential, monkeypatch):
    upstream = SlowUpstream(seconds=0)
    monkeypatch.setattr(clients, "LLMResponsesClient", upstream)
    # Polled three times; its next poll came due 10 s ago, but the job that was to make it is gone.
    task = waiting_task(credential, poll_count=3, next_poll_at=timezone.now() - timedelta(seconds=10))
    default_task_backend.clear()

    assert "1 due now" in resume()

    (job,) = scheduled_collections()
    assert job.args == [[str(task.pk)]]
    assert job.task.run_after <= timezone.now()
    collection.tasks_poll(task_ids=job.args[0])
    assert upstream.calls == 1
    assert Task.objects.get(pk=task.pk).poll_count == 4


def test_a_task_whose_worker_was_killed_mid_poll_is_polled_once_its_hold_runs_out(credential, monkeypatch):
    upstream = SlowUpstream(seconds=0)
    monkeypatch.setattr(clients, "LLMResponsesClient", upstream)
    # As a poll leaves a task while its fetch is in flight; the worker died there.
    held_until = timezone.now() + collection.poll_lease() - timedelta(seconds=5)
    task = waiting_task(credential, poll_count=4, next_poll_at=held_until)
    default_task_backend.clear()

    resume()

    (job,) = scheduled_collections()
    assert job.args == [[str(task.pk)]]
    assert held_until <= job.task.run_after <= held_until + timedelta(seconds=61)
    Task.objects.filter(pk=task.pk).update(next_poll_at=timezone.now())  # the hold has run out
    collection.tasks_poll(task_ids=job.args[0])
    assert upstream.calls == 1


def test_resume_rearms_every_waiting_task_and_no_other(credential):
    soon = waiting_task(credential, next_poll_at=timezone.now() + timedelta(minutes=5))
    overdue = waiting_task(credential, next_poll_at=timezone.now() - timedelta(hours=1))
    make_task(credential=credential, status=Task.Status.COMPLETED)
    make_task(credential=credential, status=Task.Status.UNKNOWN)
    default_task_backend.clear()

    assert "Re-armed the collection of 2 waiting tasks, 1 due now." in resume()

    jobs = {job.args[0][0]: job.task.run_after for job in scheduled_collections()}
    assert set(jobs) == {str(soon.pk), str(overdue.pk)}
    assert jobs[str(overdue.pk)] <= timezone.now()
    assert jobs[str(soon.pk)] >= soon.next_poll_at


def test_a_credential_that_cannot_make_a_client_is_an_error_event_and_the_task_keeps_waiting(credential):
    Credential.objects.filter(pk=credential.pk).update(base_url="ftp://not-http.example")
    task, other = waiting_task(credential), waiting_task(credential)
    default_task_backend.clear()

    collection.tasks_poll(task_ids=[str(task.pk), str(other.pk)])

    for waiting in (task, other):
        waiting.refresh_from_db()
        assert waiting.status == Task.Status.SUBMITTED
        assert "base_url must be an http(s) URL" in waiting.events.get(kind=TaskEvent.Kind.ERROR).message
    assert [r.args[0] for r in scheduled_collections()] == [[str(task.pk), str(other.pk)]]


def test_an_upstream_id_task_get_cannot_ask_about_fails_the_task_with_the_reason(credential):
    task = waiting_task(credential, upstream_task_id="not an id/../x")

    collection.tasks_poll(task_ids=[str(task.pk)])

    task.refresh_from_db()
    assert task.status == Task.Status.FAILED
    assert "cannot be collected" in task.status_message
    assert task.spend_is_final


def test_a_task_whose_poll_hits_a_database_error_is_polled_again_once_any_hold_has_run_out(
    credential, monkeypatch
):
    task = waiting_task(credential)

    def broken(task_id, *, clients):
        raise DatabaseError("the database went away")

    monkeypatch.setattr(collection, "_poll_one", broken)
    default_task_backend.clear()

    collection.tasks_poll(task_ids=[str(task.pk)])

    (job,) = scheduled_collections()
    assert job.args == [[str(task.pk)]]
    assert job.task.run_after >= timezone.now() + collection.poll_lease() - timedelta(seconds=5)


def test_a_live_answer_that_reports_no_cost_costs_the_live_base_fee_plus_money_spent(credential):
    from tasks.submission import recording
    from tasks.upstream.outcomes import parse_task_outcome

    task = make_task(
        credential=credential,
        status=Task.Status.QUEUED,
        mode=Task.Mode.LIVE,
        estimated_charge=Decimal("0.0106"),
    )
    Task.objects.filter(pk=task.pk).update(status=Task.Status.SENDING)
    outcome = parse_task_outcome(
        {"id": "12070510-1535-0612-0000-09c21930dfc9", "status_code": 20000, "status_message": "Ok."}
        | {"result": finished(money_spent=0.0286)}
    )

    recording.task_record_live(task_id=task.pk, outcome=outcome)

    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED
    assert task.cost == task.spend == Decimal("0.0292")  # $0.0006 + money_spent (api-reference §6)
