"""The admins' queue page and the `sending_status` / `requeue_chunks` commands."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from tasks.models import Batch, SendChunk, SendingLimit, SendingWorker, Task
from tasks.submission import chunks, sending, workers
from tasks.upstream import clients
from tests.factories import make_credential, make_user
from tests.submission.fake_upstream import FakeUpstream
from tests.submission.sending import send_planned

pytestmark = pytest.mark.django_db


def plan(count: int, credential=None) -> list[Task]:
    specs = [
        sending.TaskSpec(provider="chat_gpt", body={"user_prompt": f"q{i}", "model_name": "gpt-4.1"})
        for i in range(count)
    ]
    return sending.submit_tasks(specs=specs, credential=credential or make_credential(), user=make_user())


def run(command: str, *args) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out, stderr=out)
    return out.getvalue()


def test_the_queue_page_shows_waiting_sending_limited_and_lost_chunks_and_the_workers(
    team_admin_client, monkeypatch
):
    credential = make_credential("Busy key")
    plan(350, credential)
    claimed = chunks.chunk_claim(worker="host:123")
    chunks.chunk_mark_post_started(claimed)
    chunks.chunks_sweep(now=timezone.now() + chunks.sending_lease() * 2)  # killed mid-send: unknown
    chunks.chunk_claim(worker="host:456")
    workers.worker_seen(worker="host:456")
    SendingLimit.objects.create(
        credential=credential,
        limited_until=timezone.now() + timedelta(seconds=90),
        limited_message="Slow down.",
    )

    html = team_admin_client.get(reverse("submission:queue")).content.decode()

    assert "Sending queue" in html
    assert "host:456" in html  # the worker seen
    assert "rate-limited until" in html and "Slow down." in html
    assert "Busy key" in html
    page = team_admin_client.get(reverse("submission:queue"), headers={"HX-Request": "true"})
    assert b'id="queue-live"' in page.content and b"<html" not in page.content
    queue = page.context["queue"]
    assert (queue.planned, queue.sending, queue.unknown, queue.rate_limited) == (2, 1, 1, 2)


def test_a_chunk_waiting_out_a_rate_limit_is_counted_once_in_the_waiting_ones(team_admin_client):
    credential = make_credential("Busy key")
    plan(150, credential)  # two chunks
    until = timezone.now() + timedelta(seconds=90)
    SendingLimit.objects.create(credential=credential, limited_until=until, limited_message="Slow down.")
    SendChunk.objects.update(not_before=until)  # what a 429 leaves on its chunks

    queue = team_admin_client.get(reverse("submission:queue")).context["queue"]
    out = run("sending_status")

    assert (queue.planned, queue.ready, queue.rate_limited, queue.delayed) == (2, 0, 2, 0)
    assert "Chunks: 2 waiting (0 ready now, 0 delayed, 2 rate-limited)" in out


def test_members_cannot_see_the_queue(member_client):
    assert member_client.get(reverse("submission:queue")).status_code == 403


def test_sending_status_lists_the_chunks(monkeypatch):
    plan(150)
    chunks.chunk_claim(worker="host:1")

    out = run("sending_status")

    assert "Chunks: 1 waiting (1 ready now" in out
    assert "1 sending" in out
    assert "by host:1" in out


def test_requeue_puts_back_a_claimed_chunk_that_never_posted_and_its_worker_then_posts_nothing(monkeypatch):
    upstream = FakeUpstream()
    monkeypatch.setattr(clients, "LLMResponsesClient", upstream)
    tasks = plan(100)
    stuck = chunks.chunk_claim(worker="hung-worker")

    out = run("requeue_chunks", str(stuck.chunk.pk))

    assert "Requeued 1 chunk to be sent now" in out
    assert chunks.chunk_mark_post_started(stuck) is False  # the hung worker wakes: not its own any more
    send_planned()
    assert len(upstream.calls) == 1
    assert set(Task.objects.filter(pk__in=[t.pk for t in tasks]).values_list("status", flat=True)) == {
        Task.Status.SUBMITTED
    }


def test_requeue_refuses_a_chunk_whose_post_may_have_reached_the_upstream(monkeypatch):
    upstream = FakeUpstream()
    monkeypatch.setattr(clients, "LLMResponsesClient", upstream)
    plan(100)
    claimed = chunks.chunk_claim(worker="killed")
    chunks.chunk_mark_post_started(claimed)

    with pytest.raises(CommandError, match="nothing was requeued"):
        run("requeue_chunks", str(claimed.chunk.pk))
    assert "Requeued 0 chunks to" in run("requeue_chunks", "--all")  # --all never takes a started one

    chunks.chunks_sweep(now=timezone.now() + chunks.sending_lease() * 2)
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("requeue_chunks", str(claimed.chunk.pk), stdout=StringIO(), stderr=err)
    assert "could pay twice" in err.getvalue()
    send_planned()
    assert upstream.calls == []
    assert SendChunk.objects.get().state == SendChunk.State.UNKNOWN


def test_requeue_all_sends_a_delayed_chunk_now():
    plan(100)
    SendChunk.objects.update(not_before=timezone.now() + timedelta(minutes=5), last_error="Could not reach")

    assert "Requeued 1 chunk to be sent now" in run("requeue_chunks", "--all")
    assert SendChunk.objects.get().not_before <= timezone.now()


def test_requeue_without_ids_or_all_says_what_to_give():
    with pytest.raises(CommandError, match="Name chunk ids"):
        run("requeue_chunks")
    with pytest.raises(CommandError):
        run("requeue_chunks", "not-a-uuid")


def test_an_admin_sets_a_keys_calls_per_minute_and_the_change_is_audited(team_admin_client):
    from tasks.models import AuditEntry
    from tasks.submission.rate_limits import calls_per_minute

    credential = make_credential("AIsa key")
    assert calls_per_minute(credential) is None

    team_admin_client.post(
        reverse("team:credential_edit", args=[credential.pk]),
        {
            "form": "settings",
            "name": "AIsa key",
            "base_url": "",
            "price_multiplier": "1",
            "calls_per_minute": "600",
        },
    )

    credential.refresh_from_db()
    assert calls_per_minute(credential) == 600
    entry = AuditEntry.objects.get(action="credential.update")
    assert entry.changes["calls_per_minute"] == {"from": None, "to": 600}
    page = team_admin_client.get(reverse("team:credential_edit", args=[credential.pk])).content.decode()
    assert 'name="calls_per_minute"' in page and 'value="600"' in page


def test_the_tasks_of_a_chunk_being_sent_show_as_sending_on_the_batch_and_task_pages(member_client):
    """The claim writes only the chunk (its tasks stay `queued` until the outcome): the pages read it."""
    batch = Batch(name="In flight", task_count=250)
    specs = [
        sending.TaskSpec(provider="chat_gpt", body={"user_prompt": f"q{i}", "model_name": "gpt-4.1"})
        for i in range(250)
    ]
    tasks = sending.submit_tasks(specs=specs, credential=make_credential(), user=make_user(), batch=batch)
    claimed = chunks.chunk_claim(worker="host:1")
    assert Task.objects.filter(batch=batch, status=Task.Status.QUEUED).count() == 250

    def kpis() -> dict[str, str]:
        page = member_client.get(reverse("prompt_templates:batch_detail", args=[batch.pk]))
        return dict(
            re.findall(r'<div class="label">(\w+)</div><div class="value">(\d+)</div>', page.content.decode())
        )

    assert kpis()["Queued"] == "150" and kpis()["Sending"] == "100"
    in_flight = claimed.tasks[0].pk
    waiting = next(task.pk for task in tasks if task.pk not in {t.pk for t in claimed.tasks})
    page = member_client.get(reverse("history:task_detail", args=[in_flight])).content.decode()
    assert 'badge-sending"' in page and "a worker is posting it to the upstream now" in page
    page = member_client.get(reverse("history:task_detail", args=[waiting])).content.decode()
    assert 'badge-queued"' in page and "waiting for a worker to send it" in page

    upstream = FakeUpstream()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clients, "LLMResponsesClient", upstream)
        workers.chunk_send(claimed, clients={})
        send_planned()
    assert "Sending" not in kpis() and "Queued" not in kpis()
    assert Task.objects.filter(batch=batch, status=Task.Status.SUBMITTED).count() == 250


def _ready_since(tasks: list[Task], ago: timedelta) -> None:
    SendChunk.objects.filter(pk__in=[task.chunk_id for task in tasks]).update(not_before=timezone.now() - ago)


def test_a_queued_task_no_worker_has_taken_for_a_minute_says_how_to_start_one(member_client):
    (task,) = plan(1)
    url = reverse("history:task_detail", args=[task.pk])
    assert "No worker has been seen" not in member_client.get(url).content.decode()  # just planned

    _ready_since([task], timedelta(minutes=5))
    html = member_client.get(url).content.decode()
    fragment = member_client.get(reverse("history:task_status", args=[task.pk])).content.decode()

    assert "No worker has been seen in the last minute" in html and "bin/entrypoint worker" in html
    assert "No worker has been seen in the last minute" in fragment  # what the page's poll swaps in


def test_a_queued_task_says_nothing_of_workers_while_one_runs_or_the_upstream_asked_to_wait(member_client):
    (task,) = plan(1)
    _ready_since([task], timedelta(minutes=5))
    url = reverse("history:task_detail", args=[task.pk])

    workers.worker_seen(worker="host:1")
    assert "No worker has been seen" not in member_client.get(url).content.decode()

    SendingWorker.objects.all().delete()
    SendingLimit.objects.create(
        credential=task.credential,
        limited_until=timezone.now() + timedelta(seconds=60),
        limited_message="Slow.",
    )
    assert "No worker has been seen" not in member_client.get(url).content.decode()


def test_a_batch_whose_chunks_wait_with_no_worker_says_how_to_start_one(member_client):
    tasks = plan(3)
    batch = Batch.objects.create(name="Nightly")
    Task.objects.filter(pk__in=[t.pk for t in tasks]).update(batch=batch)
    SendChunk.objects.filter(pk__in=[t.chunk_id for t in tasks]).update(batch=batch)
    url = reverse("prompt_templates:batch_detail", args=[batch.pk])
    assert "no worker has been seen" not in member_client.get(url).content.decode()

    _ready_since(tasks, timedelta(minutes=5))

    assert "no worker has been seen" in member_client.get(url).content.decode()


def test_the_queue_page_and_sending_status_warn_of_no_worker_only_once_a_chunk_has_waited_a_minute(
    team_admin_client,
):
    tasks = plan(2)
    url = reverse("submission:queue")
    assert "no worker has been seen" not in team_admin_client.get(url).content.decode()  # just planned
    assert "no worker is running" not in run("sending_status")

    _ready_since(tasks[:1], timedelta(minutes=5))
    assert "no worker has been seen in the last minute" in team_admin_client.get(url).content.decode()
    assert "no worker is running" in run("sending_status")

    workers.worker_seen(worker="host:1")
    assert "no worker has been seen" not in team_admin_client.get(url).content.decode()


def test_the_queue_counts_a_lost_reply_until_reconciliation_has_found_out_its_tasks(team_admin_client):
    credential = make_credential("Lost key")
    (task,) = plan(1, credential)
    claimed = chunks.chunk_claim(worker="host:1")
    chunks.chunk_mark_post_started(claimed)
    chunks.chunks_sweep(now=timezone.now() + chunks.sending_lease() * 2)  # killed mid-send: unknown
    assert Task.objects.get(pk=task.pk).status == Task.Status.UNKNOWN
    queue = team_admin_client.get(reverse("submission:queue"), headers={"HX-Request": "true"}).context[
        "queue"
    ]
    assert queue.unknown == 1 and [row.unknown for row in queue.credentials] == [1]
    assert "1 with a lost reply" in run("sending_status")

    Task.objects.filter(pk=task.pk).update(status=Task.Status.COMPLETED)  # reconciliation found it

    queue = team_admin_client.get(reverse("submission:queue"), headers={"HX-Request": "true"}).context[
        "queue"
    ]
    assert queue.unknown == 0 and queue.credentials == []  # nothing left to say of that credential
    assert "0 with a lost reply" in run("sending_status")
