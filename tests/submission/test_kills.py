"""Workers killed (SIGKILL, a real process) at each step of sending a chunk, then a worker started again:
every POST is counted at the stand-in (served over real HTTP by live_server, in this process), and no
task is ever sent twice. Also: two workers at once on one submission, each chunk posted once.

The workers are tests/submission/worker_process.py, the product's own loop with one step replaced by a
SIGKILL. They run against this test's database, on SQLite or PostgreSQL, whichever the suite uses.

A killed worker's chunks stay `sending` until their lease runs out; before the next worker starts, the leases
of workers that are gone are made to run out now (`leases_of_gone_workers_run_out`), so it sweeps them at once
instead of sleeping out the rest: what the sweep does with them is the point here; that a lease holds until
it runs out is test_chunks', and tests/submission/test_durable_sending.py waits out real ones.
"""

import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from sandbox.models import SandboxRequest, SandboxTask
from tasks.models import Credential, SendChunk, Task, TaskEvent
from tasks.submission import sending
from tests import preloaded

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
LEASE = 2.0  # seconds: the workers here own a claimed chunk this long


@pytest.fixture
def stand_in(live_server, settings):
    settings.SANDBOX_DELIVER_CALLBACKS = False
    credential = Credential(
        name="Stand-in",
        kind=Credential.Kind.AISA,
        base_url=live_server.url + "/sandbox/apis/v1/dataforseo",
        is_default=True,
    )
    credential.set_secret("sandbox-key")
    credential.save()
    return credential


def database_url() -> str:
    """This test's database, for a process of its own."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def leases_of_gone_workers_run_out() -> int:
    """Chunks still held by a worker process that no longer exists (killed and reaped): their leases end now.
    Only the default `worker-<pid>` names are read; a pid taken again by another process is left alone."""
    gone = []
    held = SendChunk.objects.filter(state=SendChunk.State.SENDING, claimed_by__startswith="worker-")
    for pk, claimed_by in held.values_list("pk", "claimed_by"):
        pid = claimed_by.removeprefix("worker-")
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            gone.append(pk)
        except PermissionError:
            pass  # another user's process: alive
    return SendChunk.objects.filter(pk__in=gone).update(lease_until=timezone.now() - timedelta(seconds=1))


def worker(*args: str, lease: float = LEASE) -> subprocess.Popen:
    leases_of_gone_workers_run_out()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "CREDENTIAL_KEYS": ",".join(settings.CREDENTIAL_KEYS),
        "SECRET_KEY": settings.SECRET_KEY,
        "SENDING_LEASE_SECONDS": str(lease),
        "UPSTREAM_READ_TIMEOUT": "20",
        "CONN_MAX_AGE": "0",
    }
    return preloaded.popen(
        [sys.executable, "-m", "tests.submission.worker_process", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 90) -> tuple[int, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out + err


def submit(credential, user, count: int) -> list[Task]:
    specs = [
        sending.TaskSpec(
            provider="chat_gpt", body={"user_prompt": f"Question {i}?", "model_name": "gpt-4.1-mini"}
        )
        for i in range(count)
    ]
    return sending.submit_tasks(specs=specs, credential=credential, user=user)


def task_posts() -> int:
    return SandboxRequest.objects.filter(method="POST", function="task_post").count()


def times_each_task_reached_the_stand_in(tasks: list[Task]) -> Counter:
    """How many times the stand-in accepted each of `tasks` (by its tag, which holds the task's id)."""
    tags = Counter(SandboxTask.objects.values_list("data__tag", flat=True))
    return Counter(tags[task.request_body["tag"]] for task in tasks)


def statuses(tasks: list[Task]) -> Counter:
    return Counter(Task.objects.filter(pk__in=[task.pk for task in tasks]).values_list("status", flat=True))


@pytest.mark.parametrize(
    ("step", "call", "posts", "in_flight", "recorded", "started"),
    [
        # the first chunk claimed, never sent: sent later, never labelled unknown
        ("claimed", 1, 3, 0, 0, False),
        # its POST may have started: unknown, never sent
        ("post_started", 1, 2, 100, 0, True),
        # the last chunk (50) sent, reply not recorded: unknown, never sent again
        ("posted", 3, 3, 50, 200, True),
        # killed inside the last outcome's transaction (its chunk's UPDATE and its tasks' written, not
        # committed): rolled back, as above
        ("recording", 3, 3, 50, 200, True),
    ],
)
def test_a_worker_killed_at_each_step_never_sends_a_task_twice(
    stand_in, admin_user, client, step, call, posts, in_flight, recorded, started
):
    tasks = submit(stand_in, admin_user, 250)
    assert task_posts() == 0  # the submission only planned

    code, output = finish(worker("--kill-at", step, "--kill-call", str(call)))
    assert code == -9, output  # it really was killed

    # What the kill left: one chunk still the killed worker's, its POST started or not; its tasks were
    # never rewritten by the claim (still queued), and the task page says they are being sent. A kill in
    # the sending thread (post_started) may also find the next chunk already claimed by the worker's
    # loop, its POST not started: the sweep puts that one back, to be sent once.
    held_chunks = SendChunk.objects.filter(state=SendChunk.State.SENDING)
    held = held_chunks.get(post_started_at__isnull=not started)
    ahead = list(held_chunks.exclude(pk=held.pk))
    assert len(ahead) <= (1 if step == "post_started" else 0)
    assert all(chunk.post_started_at is None for chunk in ahead)
    assert held.claimed_by.startswith("worker-")
    assert statuses(tasks) == Counter({Task.Status.SUBMITTED: recorded, Task.Status.QUEUED: 250 - recorded})
    client.force_login(admin_user)
    page = client.get(reverse("history:task_detail", args=[held.tasks.first().pk])).content.decode()
    assert 'badge-sending"' in page and "a worker is posting it to the upstream now" in page

    # A worker started again: the killed worker's lease over, it sweeps and sends what is left.
    code, output = finish(worker("--wait", str(LEASE * 3)))
    assert code == 0, output

    assert task_posts() == posts
    reached = times_each_task_reached_the_stand_in(tasks)
    assert set(reached) <= {0, 1}  # no task sent twice
    assert statuses(tasks) == Counter(
        {Task.Status.SUBMITTED: 250 - in_flight, Task.Status.UNKNOWN: in_flight}
    )
    unknown = Task.objects.filter(pk__in=[task.pk for task in tasks], status=Task.Status.UNKNOWN)
    assert all("may have been accepted and charged" in task.status_message for task in unknown)
    # Every submitted task holds the upstream's id for it; nothing is left queued or sending.
    assert not Task.objects.filter(status=Task.Status.SUBMITTED, upstream_task_id__isnull=True).exists()
    assert set(SendChunk.objects.values_list("state", flat=True)) <= {
        SendChunk.State.SENT,
        SendChunk.State.UNKNOWN,
    }
    if in_flight == 0:
        assert not TaskEvent.objects.filter(kind=TaskEvent.Kind.UNKNOWN).exists()
        assert reached == Counter({1: 250})


def test_a_worker_killed_mid_batch_with_the_next_chunk_already_handed_to_its_sender(stand_in, admin_user):
    """Killed before recording chunk 2, when chunk 3 has just been handed to the sending thread (it may or
    may not have reached the upstream): both are unknown, never resent, and the rest is sent once."""
    tasks = submit(stand_in, admin_user, 500)

    code, output = finish(worker("--kill-at", "posted", "--kill-call", "2"))
    assert code == -9, output
    code, output = finish(worker("--wait", str(LEASE * 3)))
    assert code == 0, output

    reached = times_each_task_reached_the_stand_in(tasks)
    assert set(reached) <= {0, 1}
    counts = statuses(tasks)
    assert set(counts) == {Task.Status.SUBMITTED, Task.Status.UNKNOWN}
    assert counts[Task.Status.UNKNOWN] in (100, 200)  # chunk 2, and chunk 3 if its POST had started
    # Every task the upstream never saw was either sent later (submitted) or is unknown because its POST
    # had started; none was sent twice, and every submitted one reached the upstream once.
    submitted = Task.objects.filter(pk__in=[task.pk for task in tasks], status=Task.Status.SUBMITTED)
    assert times_each_task_reached_the_stand_in(list(submitted)) == Counter(
        {1: counts[Task.Status.SUBMITTED]}
    )


def test_a_worker_killed_twice_then_restarted_still_sends_every_task_once(stand_in, admin_user):
    tasks = submit(stand_in, admin_user, 500)

    finish(worker("--kill-at", "claimed", "--kill-call", "1"))
    finish(worker("--wait", str(LEASE * 3), "--kill-at", "claimed", "--kill-call", "1"))
    code, output = finish(worker("--wait", str(LEASE * 3)))
    assert code == 0, output

    assert times_each_task_reached_the_stand_in(tasks) == Counter({1: 500})
    assert statuses(tasks) == Counter({Task.Status.SUBMITTED: 500})
    assert task_posts() == 5


def test_two_workers_at_once_post_every_chunk_once(stand_in, admin_user, tmp_path):
    """On PostgreSQL the claim skips locked rows (SKIP LOCKED); on SQLite it is the conditional update
    alone. Either way each chunk has one owner."""
    tasks = submit(stand_in, admin_user, 1000)
    start = tmp_path / "go"
    workers = [worker("--start-file", str(start), "--name", name, lease=60) for name in ("one", "two")]
    for process in workers:
        assert process.stdout.readline().strip() == "ready"
    start.touch()
    for process in workers:
        code, output = finish(process)
        assert code == 0, output

    assert task_posts() == 10
    assert times_each_task_reached_the_stand_in(tasks) == Counter({1: 1000})
    assert statuses(tasks) == Counter({Task.Status.SUBMITTED: 1000})
    owners = Counter(SendChunk.objects.values_list("claimed_by", flat=True))
    assert sum(owners.values()) == 10
    assert set(owners) == {"one", "two"}  # both worked on it


def test_a_429_from_the_stand_in_slows_sending_shows_on_the_batch_page_and_fails_nothing(
    stand_in, admin_user, client
):
    from django.urls import reverse

    from sandbox import faults
    from tasks.models import Batch
    from tests.submission.sending import send_planned

    batch = Batch(name="Limited", task_count=250)
    specs = [
        sending.TaskSpec(provider="chat_gpt", body={"user_prompt": f"Q{i}?", "model_name": "gpt-4.1-mini"})
        for i in range(250)
    ]
    tasks = sending.submit_tasks(specs=specs, credential=stand_in, user=admin_user, batch=batch)
    faults.inject("rate_limit", times=1, retry_after=2, function="task_post")
    try:
        from tasks.submission import workers

        workers.chunks_drain(worker="w")  # the first chunk meets the 429; the worker leaves it waiting
        client.force_login(admin_user)
        page = client.get(reverse("prompt_templates:batch_detail", args=[batch.pk])).content.decode()
        assert "Rate-limited until" in page
        assert "no task fails for it" in page
        assert statuses(tasks) == Counter({Task.Status.QUEUED: 250})

        send_planned(wait=5)
    finally:
        faults.clear()

    assert statuses(tasks) == Counter({Task.Status.SUBMITTED: 250})
    assert times_each_task_reached_the_stand_in(tasks) == Counter({1: 250})
    assert SandboxRequest.objects.filter(function="task_post", http_status=429).count() == 1
    page = client.get(reverse("prompt_templates:batch_detail", args=[batch.pk])).content.decode()
    assert "Rate-limited until" not in page
