"""Submitting and collecting over real HTTP against the stand-in upstream (served by live_server)."""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.tasks import default_task_backend
from django.utils import timezone

from sandbox import faults
from sandbox.models import SandboxRequest, SandboxTask
from tasks.models import Budget, Credential, SendChunk, Task, TaskEvent
from tasks.spend.budgets import BudgetExceeded
from tasks.submission import chunks, collection, sending, workers
from tests.submission.sending import send_planned, submit_and_send

pytestmark = pytest.mark.django_db(transaction=True)

QUEUED_CHARGE = Decimal("0.0102")


@pytest.fixture
def stand_in(live_server, settings):
    settings.SANDBOX_TASK_DELAY = 0.6
    settings.SANDBOX_DELIVER_CALLBACKS = False
    settings.UPSTREAM_READ_TIMEOUT = 2
    credential = Credential(
        name="Stand-in",
        kind=Credential.Kind.AISA,
        base_url=live_server.url + "/sandbox/apis/v1/dataforseo",
        is_default=True,
    )
    credential.set_secret("sandbox-key")
    credential.save()
    yield credential
    faults.clear()


def spec(prompt="What is the tallest tower in Paris?", **fields) -> sending.TaskSpec:
    body = {"user_prompt": prompt, "model_name": "gpt-4.1-mini", **fields}
    return sending.TaskSpec(provider="chat_gpt", body=body)


def task_posts() -> int:
    return SandboxRequest.objects.filter(method="POST", function="task_post").count()


def kinds(task: Task) -> list[str]:
    return list(task.events.values_list("kind", flat=True))


def test_a_task_goes_from_submitted_through_pending_to_completed_with_cost_and_answer(stand_in, admin_user):
    (task,) = submit_and_send(specs=[spec(tag="paris")], credential=stand_in, user=admin_user)
    assert task.status == Task.Status.SUBMITTED
    assert task.upstream_task_id
    assert task.charged == QUEUED_CHARGE
    assert task.spend == QUEUED_CHARGE and not task.spend_is_final
    assert task.request_body["tag"] == "paris"

    task = collection.task_fetch(task_id=task.pk)
    assert task.status == Task.Status.PENDING
    assert task.status_code in (40601, 40602)

    time.sleep(0.7)
    task = collection.task_fetch(task_id=task.pk)
    assert task.status == Task.Status.COMPLETED
    assert "tower" in task.answer_text.lower() or task.answer_text
    assert task.resolved_model_name.startswith("gpt-4.1-mini-")
    assert task.money_spent > 0
    assert task.cost == Decimal("0.0002") + task.money_spent
    assert task.spend == task.cost and task.spend_is_final
    assert task.output_tokens > 0 and task.input_tokens > 0
    assert task.result["status_code"] == 20000
    assert kinds(task) == ["posted", "polled", "polled", "completed"]
    completed = task.events.get(kind="completed")
    assert completed.cost_change == task.cost - QUEUED_CHARGE


def test_a_submitted_task_schedules_its_collection_job(stand_in, admin_user):
    default_task_backend.clear()
    (task,) = submit_and_send(specs=[spec()], credential=stand_in, user=admin_user)
    scheduled = [r for r in default_task_backend.results if r.task.name == "collect_results"]
    assert [r.args for r in scheduled] == [[[str(task.pk)]]]
    assert scheduled[0].task.run_after > timezone.now()


def test_polling_twice_at_once_claims_the_slot_once(stand_in, admin_user):
    (task,) = submit_and_send(specs=[spec()], credential=stand_in, user=admin_user)
    Task.objects.filter(pk=task.pk).update(next_poll_at=timezone.now())
    default_task_backend.clear()
    collection.tasks_poll(task_ids=[str(task.pk)])
    collection.tasks_poll(task_ids=[str(task.pk)])  # a duplicate job: the slot is taken, nothing happens
    task.refresh_from_db()
    assert task.poll_count == 1
    assert task.events.filter(kind="polled").count() == 1
    assert len([r for r in default_task_backend.results if r.task.name == "collect_results"]) == 1


def test_a_resumed_group_of_tasks_at_different_polls_keeps_every_task_in_a_chain(stand_in, admin_user):
    early, late = submit_and_send(specs=[spec("One?"), spec("Two?")], credential=stand_in, user=admin_user)
    # As resume_collection leaves them: both due now, one of them polled many times already.
    Task.objects.filter(pk=early.pk).update(next_poll_at=timezone.now(), poll_count=0)
    Task.objects.filter(pk=late.pk).update(next_poll_at=timezone.now(), poll_count=5)
    default_task_backend.clear()

    collection.tasks_poll(task_ids=[str(early.pk), str(late.pk)])

    scheduled = {
        tuple(r.args[0]): r.task.run_after
        for r in default_task_backend.results
        if r.task.name == "collect_results"
    }
    # Each task's next poll is planned for its own due time, so neither is dropped from collection.
    assert set(scheduled) == {(str(early.pk),), (str(late.pk),)}
    assert scheduled[(str(early.pk),)] < scheduled[(str(late.pk),)]


def test_polling_gives_up_after_72_hours(stand_in, admin_user, settings):
    settings.SANDBOX_TASK_DELAY = 60  # still running upstream when it is polled
    (task,) = submit_and_send(specs=[spec()], credential=stand_in, user=admin_user)
    Task.objects.filter(pk=task.pk).update(
        submitted_at=timezone.now() - timedelta(hours=73), next_poll_at=timezone.now()
    )
    collection.tasks_poll(task_ids=[str(task.pk)])  # the stand-in has no result yet
    task.refresh_from_db()
    assert task.status == Task.Status.FAILED
    assert "72 hours" in task.status_message
    assert task.events.filter(kind=TaskEvent.Kind.POLLED).exists()  # it asked a last time


def test_a_task_whose_result_waited_upstream_while_polling_was_down_72_hours_is_collected_not_given_up(
    stand_in, admin_user
):
    """The upstream keeps a finished result for 30 days: a poll that comes late (no worker polled for three
    days) asks once more before giving up, and finds the paid answer."""
    (task,) = submit_and_send(specs=[spec()], credential=stand_in, user=admin_user)
    time.sleep(0.8)  # finished at the stand-in
    Task.objects.filter(pk=task.pk).update(
        submitted_at=timezone.now() - timedelta(hours=73), next_poll_at=timezone.now()
    )

    collection.tasks_poll(task_ids=[str(task.pk)])

    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED
    assert task.answer_text and task.spend_is_final
    assert "72 hours" not in task.status_message


def test_a_task_past_72_hours_whose_last_poll_did_not_reach_the_upstream_is_polled_again_not_given_up(
    stand_in, admin_user, settings
):
    """The upstream unreachable at the poll after the 72 hours (an outage may be why nothing polled): the
    task is not given up on an answer never had; the next poll that reaches it collects the result."""
    settings.UPSTREAM_READ_TIMEOUT = 20
    (task,) = submit_and_send(specs=[spec()], credential=stand_in, user=admin_user)
    time.sleep(0.8)  # finished at the stand-in
    Task.objects.filter(pk=task.pk).update(
        submitted_at=timezone.now() - timedelta(hours=73), next_poll_at=timezone.now()
    )
    faults.inject("http500", function="task_get")

    collection.tasks_poll(task_ids=[str(task.pk)])

    task.refresh_from_db()
    assert task.status == Task.Status.SUBMITTED and task.next_poll_at is not None
    assert task.events.filter(kind=TaskEvent.Kind.ERROR, message__startswith="task_get failed").exists()
    Task.objects.filter(pk=task.pk).update(next_poll_at=timezone.now())
    collection.tasks_poll(task_ids=[str(task.pk)])
    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED and task.answer_text


@pytest.mark.parametrize("mode", ["http500", "malformed", "reset", "hang"])
def test_a_lost_reply_leaves_the_task_unknown_and_is_never_resent(stand_in, admin_user, mode):
    faults.inject(mode, function="task_post", seconds=4)
    (task,) = submit_and_send(specs=[spec()], credential=stand_in, user=admin_user)
    assert task.status == Task.Status.UNKNOWN
    assert "not sent again" in task.status_message
    assert kinds(task) == ["unknown"]
    # The stand-in accepted (and charged) it exactly once; the product sent exactly one POST.
    assert SandboxTask.objects.count() == 1
    assert task_posts() == 1
    # The estimate stays counted against budgets until someone reconciles the task.
    assert task.spend == QUEUED_CHARGE


def test_a_rate_limited_post_is_retried_after_retry_after(stand_in, admin_user):
    faults.inject("rate_limit", function="task_post", retry_after=1)
    (task,) = submit_and_send(specs=[spec()], credential=stand_in, user=admin_user)
    assert task.status == Task.Status.SUBMITTED
    assert task_posts() == 2
    assert SandboxTask.objects.count() == 1


def test_a_task_the_upstream_rejects_is_failed_with_its_message_and_costs_nothing(stand_in, admin_user):
    (task,) = submit_and_send(specs=[spec(temperature=5)], credential=stand_in, user=admin_user)
    assert task.status == Task.Status.FAILED
    assert task.status_code == 40501
    assert "temperature" in task.status_message
    assert task.spend == 0 and task.spend_is_final


def test_an_internal_error_at_post_sends_the_tasks_again_later_and_then_they_are_accepted(
    stand_in, admin_user, monkeypatch
):
    monkeypatch.setattr(chunks, "RESEND_DELAYS", (0.5, 0.5))
    faults.inject("internal_error", function="task_post")  # the next task_post: every task 50000
    tasks = sending.submit_tasks(
        specs=[spec(f"Question {i}?") for i in range(3)], credential=stand_in, user=admin_user
    )
    workers.chunks_drain(worker="test-worker")  # refused, nothing charged: planned again, not failed
    assert task_posts() == 1 and SandboxTask.objects.count() == 0
    for task in tasks:
        task.refresh_from_db()
        assert task.status == Task.Status.QUEUED and not task.spend_is_final
        assert "will be sent again at" in task.events.latest("id").message
    send_planned()
    assert task_posts() == 2
    for task in tasks:
        task.refresh_from_db()
        assert task.status == Task.Status.SUBMITTED and task.charged == QUEUED_CHARGE
    assert SandboxTask.objects.count() == 3


def test_an_internal_error_at_every_send_fails_the_task_after_three_sends(stand_in, admin_user, monkeypatch):
    monkeypatch.setattr(chunks, "RESEND_DELAYS", (0.2, 0.2))
    faults.inject("internal_error", function="task_post", times=3)
    (task,) = submit_and_send(specs=[spec()], credential=stand_in, user=admin_user)
    assert task.status == Task.Status.FAILED
    assert task.status_code == 50000
    assert "Sent 3 times" in task.status_message
    assert task.spend == 0 and task.spend_is_final
    assert task_posts() == 3


def test_a_bad_token_fails_the_task_with_the_gateways_message(stand_in, admin_user):
    stand_in.set_secret("wrong-key")
    stand_in.save()
    (task,) = submit_and_send(specs=[spec()], credential=stand_in, user=admin_user)
    assert task.status == Task.Status.FAILED
    assert "Not sent" in task.status_message
    assert "wrong-key" not in task.status_message
    assert task.spend == 0


def test_an_unreachable_upstream_is_tried_again_later_then_fails_the_task_as_not_sent(
    stand_in, admin_user, monkeypatch
):
    monkeypatch.setattr(chunks, "UNREACHABLE_DELAYS", (0.5,))  # one more attempt, half a second later
    stand_in.base_url = "http://127.0.0.1:9/apis/v1/dataforseo"
    stand_in.save()
    (task,) = sending.submit_tasks(specs=[spec()], credential=stand_in, user=admin_user)
    workers.chunks_drain(worker="test-worker")  # the first attempt: nothing was sent, so it waits
    task.refresh_from_db()
    assert task.status == Task.Status.QUEUED
    assert "Could not reach" in SendChunk.objects.get().last_error

    send_planned()  # the second attempt, after the delay: it gives up
    task.refresh_from_db()
    assert task.status == Task.Status.FAILED
    assert task.status_message.startswith("Not sent")
    assert task.spend == 0
    assert SendChunk.objects.get().attempts == 1


def test_the_same_idempotency_key_twice_makes_one_task_and_one_post(stand_in, admin_user):
    keyed = sending.TaskSpec(provider="chat_gpt", body=spec().body, idempotency_key="form-123")
    first = submit_and_send(specs=[keyed], credential=stand_in, user=admin_user)
    second = submit_and_send(specs=[keyed], credential=stand_in, user=admin_user)
    assert [t.pk for t in first] == [t.pk for t in second]
    assert Task.objects.count() == 1
    assert task_posts() == 1


def test_a_submission_over_budget_is_refused_before_anything_is_sent(stand_in, admin_user):
    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("0.01"))
    with pytest.raises(BudgetExceeded, match="Nothing was sent"):
        submit_and_send(specs=[spec()], credential=stand_in, user=admin_user)
    assert Task.objects.count() == 0
    assert task_posts() == 0


def test_250_tasks_go_out_in_three_posts_and_all_are_recorded(stand_in, admin_user):
    specs = [spec(f"Question number {i}") for i in range(250)]
    tasks = submit_and_send(specs=specs, credential=stand_in, user=admin_user)
    assert len(tasks) == 250
    assert {t.status for t in tasks} == {Task.Status.SUBMITTED}
    assert task_posts() == 3
    assert len({t.upstream_task_id for t in tasks}) == 250


def test_a_malformed_task_get_reply_is_recorded_and_the_task_is_collected_later(stand_in, admin_user):
    (task,) = submit_and_send(specs=[spec()], credential=stand_in, user=admin_user)
    time.sleep(0.7)
    faults.inject("malformed", function="task_get")
    task = collection.task_fetch(task_id=task.pk)
    assert task.status == Task.Status.SUBMITTED
    assert task.events.filter(kind=TaskEvent.Kind.ERROR).exists()
    task = collection.task_fetch(task_id=task.pk)
    assert task.status == Task.Status.COMPLETED


def test_a_live_request_completes_at_once_with_its_cost(stand_in, admin_user):
    (task,) = submit_and_send(specs=[spec()], credential=stand_in, user=admin_user, mode=Task.Mode.LIVE)
    assert task.status == Task.Status.COMPLETED
    assert task.cost == Decimal("0.0006") + task.money_spent
    assert task.answer_text


def test_callbacks_from_the_stand_in_complete_the_task_without_polling(
    stand_in, admin_user, settings, live_server
):
    settings.PUBLIC_BASE_URL = live_server.url
    settings.SANDBOX_DELIVER_CALLBACKS = True
    settings.SANDBOX_TASK_DELAY = 0.2
    (task,) = submit_and_send(specs=[spec()], credential=stand_in, user=admin_user)
    assert "/callbacks/" in task.request_body["postback_url"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        task.refresh_from_db()
        if task.status == Task.Status.COMPLETED:
            break
        time.sleep(0.1)
    assert task.status == Task.Status.COMPLETED
    assert task.events.filter(kind=TaskEvent.Kind.CALLBACK).exists()
    assert not task.events.filter(kind=TaskEvent.Kind.POLLED).exists()
