from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.tasks import default_task_backend
from django.utils import timezone

from tasks.builder.catalog import CatalogRefreshFailed
from tasks.builder.jobs import refresh_model_catalog
from tasks.models import Credential, ProviderModel, Task

pytestmark = pytest.mark.django_db


def make_task(credential, **fields) -> Task:
    defaults = {
        "provider": "chat_gpt",
        "credential": credential,
        "request_body": {"user_prompt": "hi", "model_name": "gpt-4.1"},
        "user_prompt": "hi",
        "model_name": "gpt-4.1",
        "spend": Decimal("0.0102"),
    }
    return Task.objects.create(**{**defaults, **fields})


@pytest.fixture
def credential(db):
    credential = Credential(name="AIsa", kind=Credential.Kind.AISA)
    credential.set_secret("sandbox-key")
    credential.save()
    return credential


def test_resume_collection_rearms_every_waiting_task_each_when_due(credential):
    long_ago = timezone.now() - timedelta(hours=1)
    later = timezone.now() + timedelta(hours=1)
    overdue = make_task(credential, status="pending", upstream_task_id="a", next_poll_at=long_ago)
    waiting = make_task(credential, status="pending", upstream_task_id="b", next_poll_at=later)
    make_task(credential, status="completed", upstream_task_id="c", next_poll_at=long_ago)
    make_task(credential, status="unknown", next_poll_at=long_ago)
    default_task_backend.clear()
    out = StringIO()
    call_command("resume_collection", stdout=out)
    assert "Re-armed the collection of 2 waiting tasks, 1 due now." in out.getvalue()
    jobs = {r.args[0][0]: r.task.run_after for r in default_task_backend.results}
    assert set(jobs) == {str(overdue.pk), str(waiting.pk)}
    assert jobs[str(overdue.pk)] <= timezone.now() < later <= jobs[str(waiting.pk)]


@pytest.mark.django_db(transaction=True)
def test_refresh_models_stores_both_catalogs_from_the_stand_in(live_server):
    credential = Credential(
        name="Stand-in", kind=Credential.Kind.AISA, base_url=live_server.url + "/sandbox/apis/v1/dataforseo"
    )
    credential.set_secret("sandbox-key")
    credential.save()
    out = StringIO()
    call_command("refresh_models", stdout=out)
    assert ProviderModel.objects.filter(provider="chat_gpt", model_name="gpt-4.1").exists()
    assert ProviderModel.objects.filter(provider="claude", task_post_supported=False).exists()
    assert ProviderModel.objects.filter(provider="chat_gpt", reasoning=True).exists()


def _stand_in_credential(live_server) -> Credential:
    credential = Credential(
        name="Stand-in", kind=Credential.Kind.AISA, base_url=live_server.url + "/sandbox/apis/v1/dataforseo"
    )
    credential.set_secret("sandbox-key")
    credential.save()
    return credential


@pytest.mark.django_db(transaction=True)
def test_refresh_models_refreshes_the_other_providers_when_one_fails_and_names_it(live_server):
    from sandbox import faults

    _stand_in_credential(live_server)
    faults.inject("malformed", function="models", provider="chat_gpt")
    out = StringIO()

    with pytest.raises(CommandError, match="chat_gpt"):
        call_command("refresh_models", stdout=out)

    assert not ProviderModel.objects.filter(provider="chat_gpt").exists()
    for provider in ("claude", "gemini", "perplexity"):
        assert ProviderModel.objects.filter(provider=provider, is_listed=True).exists()
        assert f"{provider}: " in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_the_catalog_job_refreshes_the_other_providers_when_one_fails_and_names_it(live_server):
    from sandbox import faults

    credential = _stand_in_credential(live_server)
    faults.inject("malformed", function="models", provider="claude")

    with pytest.raises(CatalogRefreshFailed, match="claude") as failed:
        refresh_model_catalog.call(credential.pk)

    assert "chat_gpt" not in str(failed.value)
    assert not ProviderModel.objects.filter(provider="claude").exists()
    for provider in ("chat_gpt", "gemini", "perplexity"):
        assert ProviderModel.objects.filter(provider=provider, is_listed=True).exists()


def test_resume_collection_marks_long_queued_tasks_unknown_and_never_resends(credential):
    interrupted = make_task(credential, status="queued")
    Task.objects.filter(pk=interrupted.pk).update(created_at=timezone.now() - timedelta(minutes=30))
    fresh = make_task(credential, status="queued")
    out = StringIO()
    call_command("resume_collection", stdout=out)
    interrupted.refresh_from_db()
    fresh.refresh_from_db()
    assert interrupted.status == Task.Status.UNKNOWN
    assert "not sent again" in interrupted.status_message
    assert interrupted.events.filter(kind="unknown").count() == 1
    assert fresh.status == Task.Status.QUEUED
    assert "Marked 1 interrupted" in out.getvalue()


def test_refresh_models_can_leave_the_fetch_to_the_worker(credential):
    default_task_backend.clear()
    call_command("refresh_models", "--enqueue", "--delay", "5", stdout=StringIO())
    (job,) = default_task_backend.results
    assert job.task.name == "refresh_model_catalog"
    assert job.args == [credential.pk]
    assert job.task.run_after > timezone.now()


def test_resume_collection_counts_read_as_english_for_none_and_one(credential):
    """Not "0 waiting task(s)": the counts bin/entrypoint run-local prints at every start."""
    out = StringIO()
    call_command("resume_collection", stdout=out)
    assert out.getvalue().splitlines() == [
        "Re-armed the collection of 0 waiting tasks, 0 due now.",
        "Marked 0 interrupted submissions as unknown.",
        "Requeued 0 chunks never sent; marked 0 in-flight chunks unknown.",
    ]

    make_task(credential, status="pending", upstream_task_id="a", next_poll_at=timezone.now())
    make_task(credential, status="queued", created_at=timezone.now())
    Task.objects.filter(status="queued").update(created_at=timezone.now() - timedelta(days=1))
    out = StringIO()
    call_command("resume_collection", stdout=out)
    assert "Re-armed the collection of 1 waiting task, 1 due now." in out.getvalue()
    assert "Marked 1 interrupted submission as unknown." in out.getvalue()


@pytest.mark.parametrize(
    "command, said",
    [
        (["run_monitors"], "0 slots claimed, 0 runs executed, 0 finished, 0 alerts delivered."),
        (["reconcile"], "tasks_ready: 0 calls, 0 tasks reconciled, 0 left as ambiguous."),
        (["reconcile"], "Settled the provisional spend of 0 tasks."),
        (["requeue_chunks", "--all"], "Requeued 0 chunks to be sent now."),
    ],
)
def test_commands_say_their_counts_without_a_plural_in_brackets(command, said):
    out = StringIO()
    call_command(*command, stdout=out)
    assert said in out.getvalue().splitlines()
    assert "(s)" not in out.getvalue()
