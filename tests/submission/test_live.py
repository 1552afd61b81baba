"""Live tasks (tasks/submission/live.py): planned in the request, sent by a worker several at once, at most
30 per provider per credential across workers, recorded with answer, citations and cost; a worker killed
at each step (a real process, SIGKILL) never sends a task twice, counted at the stand-in."""

from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from sandbox import live as stand_in_live
from sandbox.models import SandboxRequest
from tasks.models import SendChunk, Task
from tasks.submission import live, sending
from tasks.submission.workers import chunks_drain
from tests.submission.test_kills import (
    LEASE,
    finish,
    stand_in,
    statuses,
    times_each_task_reached_the_stand_in,
    worker,
)

pytestmark = pytest.mark.django_db(transaction=True)

__all__ = ["stand_in"]  # the fixture, shared with the queued kill tests

PROMPTS = {
    "chat_gpt": "gpt-4.1-mini",
    "claude": "claude-3-5-haiku",
    "gemini": "gemini-2.5-pro",
    "perplexity": "sonar",
}


def submit_live(credential, user, count: int, provider: str = "gemini", **body) -> list[Task]:
    tasks = []
    for i in range(count):
        spec = sending.TaskSpec(
            provider=provider,
            body={"user_prompt": f"Best running shoes {i}?", "model_name": PROMPTS[provider], **body},
        )
        tasks += sending.submit_tasks(specs=[spec], credential=credential, user=user, mode=Task.Mode.LIVE)
    return tasks


def live_posts(provider: str | None = None) -> int:
    found = SandboxRequest.objects.filter(method="POST", function="live")
    return found.filter(provider=provider).count() if provider else found.count()


@pytest.mark.parametrize("provider", list(PROMPTS))
def test_a_live_task_is_sent_by_a_worker_and_completes_with_answer_citations_and_cost(
    stand_in, admin_user, provider
):
    body = {"web_search": True} if provider != "perplexity" else {}
    (task,) = submit_live(stand_in, admin_user, 1, provider, **body)
    assert live_posts() == 0  # the request only planned it
    assert task.status == Task.Status.QUEUED
    assert task.estimated_charge == Decimal("0.0106")  # $0.0006 + $0.01 reserved for the model

    assert live.live_drain(worker="test") == 1

    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED, task.status_message
    assert task.answer_text
    assert task.citations
    assert task.cost == Decimal("0.0006") + task.money_spent
    assert task.spend == task.cost and task.spend_is_final
    assert live_posts(provider) == 1
    assert "pingback_url" not in task.request_body


def test_gemini_citations_keep_the_direct_url_and_perplexity_items_have_no_reasoning(stand_in, admin_user):
    (gemini,) = submit_live(stand_in, admin_user, 1, "gemini", web_search=True)
    (perplexity,) = submit_live(stand_in, admin_user, 1, "perplexity", model_name="sonar-reasoning")
    live.live_drain(worker="test")

    gemini.refresh_from_db()
    perplexity.refresh_from_db()
    assert all(c["url"].startswith("https://vertexaisearch") for c in gemini.citations)
    assert all(c.get("direct_url", "").startswith("https://") for c in gemini.citations)
    assert gemini.reasoning_text  # gemini-2.5-pro always reasons
    assert perplexity.status == Task.Status.COMPLETED
    assert [item["type"] for item in perplexity.result["result"][0]["items"]] == ["message"]
    assert perplexity.citations  # Sonar always searches


def test_the_queued_chunks_loop_leaves_live_chunks_to_the_live_loop(stand_in, admin_user):
    (task,) = submit_live(stand_in, admin_user, 1)

    assert chunks_drain(worker="queued-only") == 0

    task.refresh_from_db()
    assert task.status == Task.Status.QUEUED
    assert live_posts() == 0


def test_no_more_than_30_live_tasks_of_a_provider_run_at_once_per_credential(stand_in, admin_user, settings):
    settings.SANDBOX_LIVE_DELAY = 1.5
    stand_in_live.peak_reset()
    tasks = submit_live(stand_in, admin_user, 36, "perplexity")
    tasks += submit_live(stand_in, admin_user, 4, "gemini")

    # One worker with more threads than the limit: the claim, not the thread count, keeps it at 30.
    assert live.live_drain(worker="test", threads=40) == 40

    assert statuses(tasks) == Counter({Task.Status.COMPLETED: 40})
    # Never more than 30 at the stand-in (which would refuse the 31st with a 429); well above one at a time.
    assert 10 < stand_in_live.peak_concurrency(provider="perplexity") <= 30
    assert not SandboxRequest.objects.filter(function="live", http_status=429).exists()


def test_a_credential_with_30_live_tasks_running_gets_no_more_claimed(stand_in, admin_user):
    running = submit_live(stand_in, admin_user, 30, "perplexity")
    (waiting,) = submit_live(stand_in, admin_user, 1, "perplexity")
    (other,) = submit_live(stand_in, admin_user, 1, "gemini")
    # 30 already claimed by other workers, their POSTs in flight.
    lease = timezone.now() + timedelta(minutes=5)
    SendChunk.objects.filter(tasks__in=running).update(
        state=SendChunk.State.SENDING,
        claimed_by="elsewhere",
        lease_until=lease,
        post_started_at=timezone.now(),
    )

    claimed = live.live_claim(worker="test")

    assert claimed is not None and claimed.tasks[0].pk == other.pk  # Gemini has its own 30
    assert live.live_claim(worker="test") is None  # Perplexity's 31st waits
    waiting.refresh_from_db()
    assert waiting.status == Task.Status.QUEUED


def test_a_lost_live_reply_is_unknown_and_never_sent_again(stand_in, admin_user):
    from sandbox import faults

    faults.inject("reset", function="live", times=1)
    (task,) = submit_live(stand_in, admin_user, 1)

    live.live_drain(worker="test")
    live.live_drain(worker="test")

    task.refresh_from_db()
    assert task.status == Task.Status.UNKNOWN
    assert "may have accepted and charged" in task.status_message
    assert "found upstream by its tag" not in task.status_message  # no tasks_ready lists a live task
    assert live_posts() == 1


@pytest.mark.parametrize(
    ("step", "posts", "unknown"),
    [
        ("claimed", 3, 0),  # claimed, POST never started: sent later by the next worker
        ("post_started", 2, 1),  # its POST may have started: unknown, never sent
        ("posted", 3, 1),  # answered, not recorded: unknown, never sent again
        ("recording", 3, 1),  # killed inside the recording transaction: rolled back, as above
    ],
)
def test_a_live_worker_killed_at_each_step_never_sends_a_task_twice(
    stand_in, admin_user, step, posts, unknown
):
    tasks = submit_live(stand_in, admin_user, 3)

    code, output = finish(worker("--live", "--kill-at", step, "--kill-call", "1"))
    assert code == -9, output

    code, output = finish(worker("--live", "--wait", str(LEASE * 3)))
    assert code == 0, output

    assert live_posts() == posts
    assert set(times_each_task_reached_the_stand_in(tasks)) <= {0, 1}
    assert statuses(tasks) == Counter(
        {Task.Status.COMPLETED: 3 - unknown, **({Task.Status.UNKNOWN: unknown} if unknown else {})}
    )
    for task in Task.objects.filter(status=Task.Status.UNKNOWN):
        assert "may have been accepted and charged" in task.status_message
    assert set(SendChunk.objects.values_list("state", flat=True)) <= {
        SendChunk.State.SENT,
        SendChunk.State.UNKNOWN,
    }


def test_two_live_workers_at_once_keep_to_30_calls_of_a_provider_between_them(
    stand_in, admin_user, settings, tmp_path
):
    """Each worker would keep 20 calls in flight; together they never pass the credential's 30."""
    settings.SANDBOX_LIVE_DELAY = 1.5  # the stand-in runs in this process (live_server)
    stand_in_live.peak_reset()
    tasks = submit_live(stand_in, admin_user, 45, "perplexity")
    start = tmp_path / "go"
    workers = [
        worker("--live", "--threads", "20", "--start-file", str(start), "--name", name, lease=60)
        for name in ("one", "two")
    ]
    for process in workers:
        assert process.stdout.readline().strip() == "ready"
    start.touch()
    for process in workers:
        code, output = finish(process)
        assert code == 0, output

    assert statuses(tasks) == Counter({Task.Status.COMPLETED: 45})
    assert live_posts("perplexity") == 45
    assert set(times_each_task_reached_the_stand_in(tasks)) == {1}
    assert not SandboxRequest.objects.filter(function="live", http_status=429).exists()
    assert stand_in_live.peak_concurrency(provider="perplexity") <= 30
    assert set(SendChunk.objects.values_list("claimed_by", flat=True)) == {"one", "two"}


def test_a_429_on_a_live_call_puts_it_back_and_it_is_sent_once_later(stand_in, admin_user):
    from sandbox import faults

    faults.inject("rate_limit", function="live", times=1, retry_after=1)
    (task,) = submit_live(stand_in, admin_user, 1)

    live.live_drain(worker="test", wait_for_delayed=3)

    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED
    assert SandboxRequest.objects.filter(function="live", http_status=429).count() == 1
    assert SandboxRequest.objects.filter(function="live", http_status=200).count() == 1


def test_no_client_session_is_used_by_two_threads_at_once(stand_in, admin_user, settings, monkeypatch):
    """requests does not document a Session as safe across threads: each call in flight has its own."""
    import threading

    settings.SANDBOX_LIVE_DELAY = 0.5
    tasks = submit_live(stand_in, admin_user, 12, "perplexity")
    in_use, shared, lock = set(), [], threading.Lock()
    post = live._post_reply

    def watched(client, claimed):
        with lock:
            if id(client._session) in in_use:
                shared.append(id(client._session))
            in_use.add(id(client._session))
        try:
            return post(client, claimed)
        finally:
            with lock:
                in_use.discard(id(client._session))

    monkeypatch.setattr(live, "_post_reply", watched)
    assert live.live_drain(worker="test", threads=6) == 12
    assert statuses(tasks) == Counter({Task.Status.COMPLETED: 12})
    assert shared == []


def test_a_live_call_answered_with_an_internal_error_plans_the_task_again_instead_of_leaving_it_running(
    stand_in, admin_user
):
    """A 50000 at cost 0: nothing was run or charged, so it is sent again in 2 minutes (RESEND_DELAYS),
    never failed on a momentary engine error; tests/submission/test_live_resend.py follows it further."""
    from sandbox import faults
    from tasks.submission import chunks

    faults.inject("internal_error", function="live", times=1)
    (task,) = submit_live(stand_in, admin_user, 1)
    before = timezone.now()

    live.live_drain(worker="test")

    task.refresh_from_db()
    assert task.status == Task.Status.QUEUED
    assert "The upstream answered 50000 Internal Error for this task; it will be sent again at" in (
        task.status_message
    )
    assert task.spend > 0 and not task.spend_is_final  # the estimate, still counted by the budgets
    assert live_posts() == 1
    again = SendChunk.objects.get(state=SendChunk.State.PLANNED)
    assert again.mode == Task.Mode.LIVE and again.pk == task.chunk_id
    assert again.not_before >= before + timedelta(seconds=chunks.RESEND_DELAYS[0])


TAKEN_ID = "12070615-1535-0600-0000-0000000000aa"


def a_task_with_the_id_the_next_live_call_is_answered_with(stand_in, admin_user, monkeypatch) -> Task:
    """A finished task holding TAKEN_ID, which the stand-in gives its next live answer (and no other)."""
    from sandbox import envelope

    (other,) = submit_live(stand_in, admin_user, 1)
    live.live_drain(worker="test")
    Task.objects.filter(pk=other.pk).update(upstream_task_id=TAKEN_ID)
    original, ids = envelope.new_task_id, iter([TAKEN_ID])
    monkeypatch.setattr(envelope, "new_task_id", lambda provider: next(ids, None) or original(provider))
    return other


def test_a_live_answer_with_an_id_another_task_has_is_recorded_without_that_id(
    stand_in, admin_user, monkeypatch
):
    other = a_task_with_the_id_the_next_live_call_is_answered_with(stand_in, admin_user, monkeypatch)
    (task,) = submit_live(stand_in, admin_user, 1)

    live.live_drain(worker="test")

    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED
    assert task.charged > 0 and task.answer_text
    assert task.upstream_task_id is None
    assert task.events.filter(message__contains=f"{TAKEN_ID}, which task {other.pk} already has").exists()
    assert Task.objects.get(pk=other.pk).upstream_task_id == TAKEN_ID
    assert live_posts() == 2


@pytest.mark.parametrize(
    ("step", "completed"),
    [
        (None, 2),  # the answer with the taken id is recorded, without it
        ("posted", 1),  # killed before recording it: unknown, never sent again
        ("recording", 1),  # killed inside the recording transaction: rolled back, as above
    ],
)
def test_a_live_worker_answered_with_an_id_another_task_has_never_sends_it_again(
    stand_in, admin_user, monkeypatch, step, completed
):
    a_task_with_the_id_the_next_live_call_is_answered_with(stand_in, admin_user, monkeypatch)
    tasks = submit_live(stand_in, admin_user, 2)

    if step:
        code, output = finish(worker("--live", "--kill-at", step, "--kill-call", "1"))
        assert code == -9, output
    code, output = finish(worker("--live", "--wait", str(LEASE * 3)))
    assert code == 0, output

    assert live_posts() == 3
    assert times_each_task_reached_the_stand_in(tasks) == Counter({1: 2})
    assert statuses(tasks) == Counter(
        {Task.Status.COMPLETED: completed, **({Task.Status.UNKNOWN: 2 - completed} if completed < 2 else {})}
    )
