"""Tasks whose reply was lost are completed from evidence, never resent: their own callbacks, tasks_ready of
a DataForSEO-direct account (unique matches only), or an admin; and provisional spend always ends."""

import time
from datetime import timedelta

import pytest
from django.tasks import default_task_backend
from django.utils import timezone

from tasks.models import AuditEntry, Task, TaskEvent
from tasks.spend import provisional
from tasks.submission import callbacks, collection, reconcile, resolve
from tests.factories import make_credential, make_task, make_user
from tests.submission.stand_in import (
    QUEUED_CHARGE,
    lost_reply_task,
    pingback_path,
    postback_body,
    postback_path,
    requests_to,
    task_posts,
    upstream_row,
    wait_until_ready,
)

pytestmark = pytest.mark.django_db(transaction=True)


def run_collection() -> None:
    """Run the collection jobs the code enqueued (the tests use the dummy backend)."""
    jobs = [r for r in default_task_backend.results if r.task.name == "collect_results"]
    default_task_backend.clear()
    for job in jobs:
        collection.tasks_poll(task_ids=job.args[0])


def assert_completed_as_upstream(task: Task, row) -> None:
    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED
    assert task.upstream_task_id == row.id
    assert task.answer_text
    assert task.cost == row.cost and task.spend == row.cost and task.spend_is_final
    assert task.events.filter(kind=TaskEvent.Kind.COMPLETED).count() == 1


# --- Callbacks ----------------------------------------------------------------------------------------


def test_a_lost_reply_then_its_postback_completes_the_task_with_its_result_and_final_cost(client, aisa):
    task = lost_reply_task(aisa)
    assert task.spend == QUEUED_CHARGE and not task.spend_is_final  # the estimate, provisional
    row = upstream_row(task)
    wait_until_ready(row)
    response = client.post(postback_path(task), postback_body(row), content_type="application/json")
    assert response.status_code == 200
    assert_completed_as_upstream(task, row)
    reconciled = task.events.get(kind=TaskEvent.Kind.RECONCILED)
    assert reconciled.data == {"upstream_task_id": row.id, "how": "postback"}
    assert task_posts() == 1  # never resent


def test_a_lost_reply_then_its_pingback_records_the_id_and_task_get_completes_it(client, aisa):
    task = lost_reply_task(aisa)
    row = upstream_row(task)
    wait_until_ready(row)
    default_task_backend.clear()
    assert client.get(pingback_path(task, row)).status_code == 200
    task.refresh_from_db()
    assert task.status == Task.Status.SUBMITTED and task.upstream_task_id == row.id
    run_collection()
    assert_completed_as_upstream(task, row)
    assert requests_to("task_get") == 1
    assert task_posts() == 1


def test_the_stand_ins_own_callbacks_complete_a_task_whose_reply_was_lost(aisa, settings):
    settings.SANDBOX_DELIVER_CALLBACKS = True
    task = lost_reply_task(aisa)
    row = upstream_row(task)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not row.postback_outcome:  # both callbacks delivered
        time.sleep(0.1)
        row.refresh_from_db()
    assert row.pingback_outcome == "HTTP 200" and row.postback_outcome == "HTTP 200"
    run_collection()  # whatever the pingback armed: the postback has completed the task already
    assert_completed_as_upstream(task, row)
    assert task_posts() == 1


def test_a_postback_about_another_request_is_refused_and_changes_nothing(client, aisa):
    task = lost_reply_task(aisa)
    other = lost_reply_task(aisa, prompt="Something else entirely")
    wait_until_ready(upstream_row(other))
    response = client.post(
        postback_path(task), postback_body(upstream_row(other)), content_type="application/json"
    )
    assert response.status_code == 400
    task.refresh_from_db()
    assert task.status == Task.Status.UNKNOWN and not task.upstream_task_id


def test_a_pingback_without_an_id_answers_200_and_leaves_the_task_for_later(client, aisa):
    task = lost_reply_task(aisa)
    path = postback_path(task).replace("/postback/", "/pingback/")
    assert client.get(path).status_code == 200
    task.refresh_from_db()
    assert task.status == Task.Status.UNKNOWN
    assert "no upstream task id" in task.events.filter(kind=TaskEvent.Kind.ERROR).last().message


def test_a_pingback_naming_another_tasks_upstream_id_is_not_recorded(client, aisa):
    task = lost_reply_task(aisa)
    row = upstream_row(task)
    make_task(status="submitted", upstream_task_id=row.id, credential=aisa)
    assert client.get(pingback_path(task, row)).status_code == 200
    task.refresh_from_db()
    assert task.status == Task.Status.UNKNOWN and not task.upstream_task_id
    assert "belongs to another task" in task.events.filter(kind=TaskEvent.Kind.ERROR).last().message


def test_a_callback_for_a_failed_never_sent_task_is_still_a_404(client, aisa):
    task = make_task(status="failed", credential=aisa, upstream_task_id=None)
    path = callbacks.callback_urls(task.pk)["pingback_url"].split("?")[0]
    assert client.get("/" + path.split("/", 3)[3]).status_code == 404


# --- tasks_ready ----------------------------------------------------------------------------------------


def test_tasks_ready_completes_a_lost_task_of_a_direct_credential_when_the_match_is_unique(direct, settings):
    settings.PUBLIC_BASE_URL = ""  # no callbacks: only tasks_ready can find it
    task = lost_reply_task(direct, tag="team-a:towers")
    row = upstream_row(task)
    wait_until_ready(row)
    report = reconcile.tasks_ready_reconcile()
    assert report.completed == [task.pk]
    assert_completed_as_upstream(task, row)
    assert task.events.get(kind=TaskEvent.Kind.RECONCILED).data["how"] == "tasks_ready"
    assert requests_to("tasks_ready") == 1
    assert task_posts() == 1
    # The next run has nothing left to do.
    assert reconcile.tasks_ready_reconcile().completed == []


def test_tasks_ready_leaves_tasks_alone_when_two_could_be_the_same_listing(direct, settings):
    settings.PUBLIC_BASE_URL = ""
    first = lost_reply_task(direct, tag="same-tag")
    second = lost_reply_task(direct, tag="same-tag")
    wait_until_ready(_rows_with_tag("same-tag")[-1])
    report = reconcile.tasks_ready_reconcile()
    assert report.completed == []
    assert set(report.ambiguous) == {first.pk, second.pk}
    for task in (first, second):
        task.refresh_from_db()
        assert task.status == Task.Status.UNKNOWN and not task.upstream_task_id
        assert "could as well be another" in task.events.filter(kind=TaskEvent.Kind.ERROR).last().message
    reconcile.tasks_ready_reconcile()  # said once, not at every run
    assert first.events.filter(kind=TaskEvent.Kind.ERROR, message__contains="could as well").count() == 1
    assert requests_to("task_get") == 0


def _rows_with_tag(tag: str):
    from sandbox.models import SandboxTask

    return [row for row in SandboxTask.objects.order_by("created_at") if row.data.get("tag") == tag]


def test_tasks_ready_is_never_asked_through_an_aisa_credential(aisa, settings):
    settings.PUBLIC_BASE_URL = ""
    task = lost_reply_task(aisa)
    wait_until_ready(upstream_row(task))
    report = reconcile.tasks_ready_reconcile()
    assert report.calls == 0 and report.skipped_credentials == [aisa.pk]
    assert requests_to("tasks_ready") == 0
    task.refresh_from_db()
    assert task.status == Task.Status.UNKNOWN


def test_tasks_ready_ignores_a_listing_posted_outside_the_tasks_post_window(direct, settings):
    settings.PUBLIC_BASE_URL = ""
    task = lost_reply_task(direct, tag="window")
    wait_until_ready(upstream_row(task))
    Task.objects.filter(pk=task.pk).update(created_at=timezone.now() - timedelta(hours=2))
    TaskEvent.objects.filter(task=task, kind=TaskEvent.Kind.UNKNOWN).update(
        created_at=timezone.now() - timedelta(hours=2)
    )
    assert reconcile.tasks_ready_reconcile().completed == []
    task.refresh_from_db()
    assert task.status == Task.Status.UNKNOWN


# --- Admins ---------------------------------------------------------------------------------------------


def test_an_admin_resolves_a_lost_task_by_its_upstream_id_and_it_is_audited(direct, team_admin):
    task = lost_reply_task(direct)
    row = upstream_row(task)
    wait_until_ready(row)
    resolve.task_resolve_by_upstream_id(
        task_id=task.pk, upstream_task_id=f"  {row.id} ", actor=team_admin, reason="found in the account"
    )
    assert_completed_as_upstream(task, row)
    entry = AuditEntry.objects.get(action="task.resolve_upstream_id")
    assert entry.actor == team_admin and entry.object_id == str(task.pk)
    assert entry.changes["upstream_task_id"] == row.id and entry.changes["reason"] == "found in the account"
    assert task.events.get(kind=TaskEvent.Kind.RECONCILED).actor == team_admin


@pytest.mark.parametrize(
    ("given", "error"),
    [
        ("not an id!", "not an upstream task id"),
        ("07171158-1535-0612-0000-000000000000", "has no task"),
        ("TAKEN", "belongs to another task"),
        ("OTHER", "about another request"),
    ],
)
def test_an_upstream_id_that_is_not_this_tasks_is_refused_and_changes_nothing(
    direct, team_admin, given, error
):
    task = lost_reply_task(direct)
    other = lost_reply_task(direct, prompt="Another prompt")
    taken = make_task(status="submitted", credential=direct)
    given = {"TAKEN": taken.upstream_task_id, "OTHER": upstream_row(other).id}.get(given, given)
    with pytest.raises(reconcile.ReconcileRefused, match=error):
        resolve.task_resolve_by_upstream_id(
            task_id=task.pk, upstream_task_id=given, actor=team_admin, reason=""
        )
    task.refresh_from_db()
    assert task.status == Task.Status.UNKNOWN and not task.upstream_task_id
    assert not AuditEntry.objects.filter(action="task.resolve_upstream_id").exists()


def test_an_admin_marks_a_lost_task_as_never_charged_and_it_is_audited(team_admin):
    task = make_task(status="unknown", spend=QUEUED_CHARGE, spend_is_final=False, upstream_task_id=None)
    resolve.task_mark_never_charged(task_id=task.pk, actor=team_admin, reason="not in the account's list")
    task.refresh_from_db()
    assert task.status == Task.Status.FAILED
    assert task.spend == 0 and task.spend_is_final
    entry = AuditEntry.objects.get(action="task.mark_never_charged")
    assert entry.actor == team_admin and entry.changes["reason"] == "not in the account's list"
    with pytest.raises(reconcile.ReconcileRefused):
        resolve.task_mark_never_charged(task_id=task.pk, actor=team_admin, reason="twice")


# --- Settlement -----------------------------------------------------------------------------------------


def test_provisional_spend_is_settled_after_the_horizon_and_not_before(db):
    old = timezone.now() - provisional.SETTLE_AFTER - timedelta(hours=1)
    recent = timezone.now() - provisional.RESULTS_KEPT + timedelta(days=1)
    credential = make_credential()
    lost = make_task(
        status="unknown", spend=QUEUED_CHARGE, spend_is_final=False, created_at=old, credential=credential
    )
    waiting = make_task(
        status="submitted", spend=QUEUED_CHARGE, spend_is_final=False, created_at=old, credential=credential
    )
    failed = make_task(
        status="failed", spend=QUEUED_CHARGE, spend_is_final=False, created_at=old, credential=credential
    )
    young = make_task(
        status="unknown", spend=QUEUED_CHARGE, spend_is_final=False, created_at=recent, credential=credential
    )
    summary = provisional.provisional_summary()
    assert summary.count == 4 and summary.amount == 4 * QUEUED_CHARGE

    assert provisional.provisional_settle() == 3
    for task in (lost, waiting, failed):
        task.refresh_from_db()
        assert task.status == Task.Status.FAILED
        assert task.spend == QUEUED_CHARGE and task.spend_is_final
        assert task.events.filter(kind=TaskEvent.Kind.SETTLED).count() == 1
    young.refresh_from_db()
    assert young.status == Task.Status.UNKNOWN and not young.spend_is_final
    assert provisional.provisional_settle() == 0  # twice is harmless
    summary = provisional.provisional_summary()
    assert (summary.count, summary.amount) == (1, QUEUED_CHARGE)
    assert [group.status for group in summary.groups] == [Task.Status.UNKNOWN]
    assert "reconciliation" in summary.groups[0].reason


def test_the_periodic_job_rearms_once_however_often_it_is_enqueued(db):
    default_task_backend.clear()
    reconcile.schedule_reconcile()
    reconcile.schedule_reconcile()
    planned = [r for r in default_task_backend.results if r.task.name == "reconcile_lost_tasks"]
    assert len(planned) == 1
    assert planned[0].task.run_after > timezone.now() + timedelta(minutes=9)


def test_a_spend_day_rolled_up_before_a_lost_task_was_resolved_is_read_again(team_admin):
    from tasks.models import SpendRollup
    from tasks.spend.rollup import spend_rollup

    task = make_task(
        status="unknown",
        spend=QUEUED_CHARGE,
        spend_is_final=False,
        upstream_task_id=None,
        created_at=timezone.now() - timedelta(days=3),
        submitted_by=make_user(),
    )
    spend_rollup()
    through = SpendRollup.objects.get().through
    assert through >= timezone.localdate(task.created_at)
    resolve.task_mark_never_charged(task_id=task.pk, actor=team_admin, reason="checked")
    assert SpendRollup.objects.get().through < timezone.localdate(task.created_at)
    assert spend_rollup().through >= timezone.localdate(task.created_at)  # rebuilt with the change


def test_the_reconcile_command_reports_what_it_did_and_enqueues_the_job(aisa, settings):
    from io import StringIO

    from django.core.management import call_command

    settings.PUBLIC_BASE_URL = ""
    lost_reply_task(aisa)
    out = StringIO()
    call_command("reconcile", stdout=out)
    assert "tasks_ready: 0 calls, 0 tasks reconciled" in out.getvalue()
    assert "1 AIsa credential has tasks whose reply was lost" in out.getvalue()
    default_task_backend.clear()
    call_command("reconcile", "--enqueue", stdout=StringIO())
    assert [r.task.name for r in default_task_backend.results] == ["reconcile_lost_tasks"]


def test_a_postback_for_a_task_still_marked_sending_completes_it(client, aisa):
    # A worker stopped while its chunk was in flight: the task is `sending` with no upstream id.
    task = lost_reply_task(aisa)
    Task.objects.filter(pk=task.pk).update(status=reconcile.SENDING)
    row = upstream_row(task)
    wait_until_ready(row)
    response = client.post(postback_path(task), postback_body(row), content_type="application/json")
    assert response.status_code == 200
    assert_completed_as_upstream(task, row)
    assert task_posts() == 1


def test_a_postback_that_comes_before_the_task_post_reply_is_recorded_is_not_undone_by_it(client, aisa):
    from tasks.submission import chunks, replies, sending
    from tasks.upstream.clients import client_for

    spec = sending.TaskSpec(
        provider="chat_gpt", body={"user_prompt": "Quick one?", "model_name": "gpt-4.1-mini"}
    )
    (task,) = sending.submit_tasks(specs=[spec], credential=aisa, user=make_user())
    claimed = chunks.chunk_claim(worker="test")
    assert chunks.chunk_mark_post_started(claimed)
    with client_for(aisa) as upstream:
        reply = chunks.chunk_post(upstream, claimed)  # accepted; the worker has not recorded it yet
    row = upstream_row(task)
    wait_until_ready(row)
    assert (
        client.post(postback_path(task), postback_body(row), content_type="application/json").status_code
        == 200
    )

    replies.chunk_record_outcome(claimed, reply)

    assert_completed_as_upstream(task, row)
    assert task.charged == QUEUED_CHARGE  # the charge at post, from the reply
    assert task_posts() == 1
