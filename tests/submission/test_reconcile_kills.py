"""Money path: a process killed between recording a lost task's upstream id and applying its result leaves
the task collectable; repeating the callback or rerunning the job completes it once. The stand-in counts
what was posted: the task is never sent twice, and its spend is its final cost, counted once."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.tasks import default_task_backend

from tasks.models import Task, TaskEvent
from tasks.submission import reconcile
from tests.submission.killing import run_killed_at
from tests.submission.stand_in import (
    lost_reply_task,
    postback_body,
    postback_path,
    requests_to,
    task_posts,
    upstream_row,
    wait_until_ready,
)
from tests.submission.test_reconcile import assert_completed_as_upstream, run_collection

pytestmark = pytest.mark.django_db(transaction=True)

POSTBACK_IN_A_PROCESS = """
import gzip, json, sys
from django.test import Client
body = open(sys.argv[3], "rb").read()
Client().post(sys.argv[4], body, content_type="application/json")
"""


def kill_a_postback_after_the_id_is_recorded(task, row, tmp_path) -> None:
    body = tmp_path / "postback.gz"
    body.write_bytes(postback_body(row))
    code = POSTBACK_IN_A_PROCESS.replace("sys.argv[3]", repr(str(body))).replace(
        "sys.argv[4]", repr(postback_path(task))
    )
    run_killed_at("tasks.submission.callbacks:callback_postback_apply", code)
    task.refresh_from_db()
    # Killed after the id was committed and before the result was applied.
    assert task.status == Task.Status.SUBMITTED and task.upstream_task_id == row.id
    assert not task.answer_text and not task.spend_is_final


def spend_total() -> object:
    return Task.objects.aggregate(total=Sum("spend"))["total"]


def test_a_postback_killed_mid_step_then_repeated_completes_the_task_once(client, aisa, tmp_path):
    task = lost_reply_task(aisa)
    row = upstream_row(task)
    wait_until_ready(row)
    kill_a_postback_after_the_id_is_recorded(task, row, tmp_path)

    response = client.post(postback_path(task), postback_body(row), content_type="application/json")
    assert response.status_code == 200
    assert_completed_as_upstream(task, row)
    assert (
        client.post(postback_path(task), postback_body(row), content_type="application/json").status_code
        == 200
    )
    assert_completed_as_upstream(task, row)  # a third delivery changes nothing
    assert task.events.filter(kind=TaskEvent.Kind.RECONCILED).count() == 1
    assert task_posts() == 1
    assert spend_total() == row.cost


def test_a_postback_killed_mid_step_is_completed_by_the_collection_after_a_restart(aisa, tmp_path):
    task = lost_reply_task(aisa)
    row = upstream_row(task)
    wait_until_ready(row)
    kill_a_postback_after_the_id_is_recorded(task, row, tmp_path)

    default_task_backend.clear()
    call_command("resume_collection", stdout=StringIO())  # what every worker start runs
    run_collection()
    assert_completed_as_upstream(task, row)
    assert requests_to("task_get") == 1
    assert task_posts() == 1
    assert spend_total() == row.cost


def test_the_tasks_ready_job_killed_mid_step_then_rerun_completes_the_task_once(direct, settings):
    settings.PUBLIC_BASE_URL = ""
    task = lost_reply_task(direct, tag="kill-me")
    row = upstream_row(task)
    wait_until_ready(row)
    code = "from tasks.submission.reconcile import tasks_ready_reconcile\ntasks_ready_reconcile()"
    run_killed_at("tasks.submission.reconcile:task_apply_outcome", code)
    task.refresh_from_db()
    assert task.status == Task.Status.SUBMITTED and task.upstream_task_id == row.id

    # The rerun finds the listing's id already known: it records nothing twice; the collection finishes it.
    assert reconcile.tasks_ready_reconcile().completed == []
    default_task_backend.clear()
    call_command("resume_collection", stdout=StringIO())
    run_collection()
    assert_completed_as_upstream(task, row)
    assert task.events.filter(kind=TaskEvent.Kind.RECONCILED).count() == 1
    assert task_posts() == 1
    assert spend_total() == row.cost
