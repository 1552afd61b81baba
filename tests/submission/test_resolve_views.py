"""The pages around reconciliation: an Admin resolves a task whose reply was lost on its task page (members
are refused), and the spend page says how much is still provisional, why, and links to those tasks."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tasks.models import AuditEntry, Task
from tests.factories import make_task
from tests.submission.stand_in import QUEUED_CHARGE, lost_reply_task, upstream_row, wait_until_ready

pytestmark = pytest.mark.django_db


def resolve_url(task: Task) -> str:
    return reverse("history:task_resolve", kwargs={"task_id": task.pk})


def lost_task() -> Task:
    return make_task(status="unknown", upstream_task_id=None, spend=QUEUED_CHARGE, spend_is_final=False)


def test_the_resolve_panel_is_on_an_unknown_tasks_page_for_admins_only(client, team_admin, member_user):
    task = lost_task()
    client.force_login(team_admin)
    page = client.get(reverse("history:task_detail", kwargs={"task_id": task.pk})).content.decode()
    assert "Mark as never charged" in page and resolve_url(task) in page
    client.force_login(member_user)
    page = client.get(reverse("history:task_detail", kwargs={"task_id": task.pk})).content.decode()
    assert "Mark as never charged" not in page


def test_a_member_cannot_resolve_a_task(member_client):
    task = lost_task()
    for action in ("fetch", "never_charged"):
        response = member_client.post(
            resolve_url(task), {"action": action, "upstream_task_id": "abc", "reason": "sure"}
        )
        assert response.status_code == 403
    task.refresh_from_db()
    assert task.status == Task.Status.UNKNOWN
    assert not AuditEntry.objects.exists()


def test_an_admin_marks_a_task_as_never_charged_from_its_page(team_admin_client, team_admin):
    task = lost_task()
    response = team_admin_client.post(
        resolve_url(task), {"action": "never_charged", "reason": "no charge in the account"}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("history:task_detail", kwargs={"task_id": task.pk})
    assert "never charged" in response.content.decode()
    task.refresh_from_db()
    assert (task.status, task.spend, task.spend_is_final) == (Task.Status.FAILED, 0, True)
    assert AuditEntry.objects.get(action="task.mark_never_charged").actor == team_admin


@pytest.mark.parametrize(
    ("posted", "message"),
    [
        ({"action": "fetch", "upstream_task_id": "", "reason": "found it"}, "Enter the upstream task id"),
        (
            {"action": "fetch", "upstream_task_id": "bad id <script>", "reason": "x"},
            "not an upstream task id",
        ),
        ({"action": "fetch", "upstream_task_id": "abc-123", "reason": ""}, "This field is required"),
    ],
)
def test_a_bad_upstream_id_is_a_field_error_with_the_input_kept(team_admin_client, posted, message):
    task = lost_task()
    response = team_admin_client.post(resolve_url(task), posted)
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    if posted["upstream_task_id"]:
        assert 'value="bad id &lt;script&gt;"' in page or f'value="{posted["upstream_task_id"]}"' in page
    task.refresh_from_db()
    assert task.status == Task.Status.UNKNOWN


def test_an_id_belonging_to_another_task_is_a_field_error(team_admin_client):
    task = lost_task()
    other = make_task(status="submitted")
    response = team_admin_client.post(
        resolve_url(task), {"action": "fetch", "upstream_task_id": other.upstream_task_id, "reason": "x"}
    )
    assert response.status_code == 400
    assert "belongs to another task" in response.content.decode()


def test_resolving_a_task_that_is_not_unknown_is_refused_not_a_500(team_admin_client):
    task = make_task(status="completed")
    response = team_admin_client.post(resolve_url(task), {"action": "never_charged", "reason": "x"})
    assert response.status_code == 400
    assert "reply was lost" in response.content.decode()
    assert (
        team_admin_client.post(
            reverse("history:task_resolve", kwargs={"task_id": "00000000-0000-0000-0000-000000000000"}),
            {"action": "never_charged", "reason": "x"},
        ).status_code
        == 404
    )


@pytest.mark.django_db(transaction=True)
def test_an_admin_completes_a_lost_task_by_its_upstream_id_from_its_page(direct, client, team_admin):
    client.force_login(team_admin)
    task = lost_reply_task(direct)
    row = upstream_row(task)
    wait_until_ready(row)
    response = client.post(
        resolve_url(task),
        {"action": "fetch", "upstream_task_id": row.id, "reason": "in the account"},
        follow=True,
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Found upstream" in page
    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED and task.cost == row.cost and task.spend_is_final
    assert row.id in page  # the upstream id, now on the page


def test_the_spend_page_says_how_much_is_still_provisional_and_why(team_admin_client):
    make_task(status="unknown", upstream_task_id=None, spend=QUEUED_CHARGE, spend_is_final=False)
    make_task(status="submitted", spend=QUEUED_CHARGE, spend_is_final=False)
    make_task(status="submitted", spend=QUEUED_CHARGE, spend_is_final=False)
    make_task(status="completed", created_at=timezone.now() - timedelta(days=90))
    page = team_admin_client.get(reverse("spend:page")).content.decode()
    assert "$0.0306</span></a> still provisional across 3 tasks" in page
    assert "reply lost: waiting for reconciliation" in page
    assert "accepted, waiting for the result" in page
    assert f"{reverse('history:task_list')}?status=unknown&amp;provisional=1" in page
    assert f"{reverse('history:task_list')}?status=submitted&amp;provisional=1" in page
    # The link opens exactly those tasks.
    listed = team_admin_client.get(reverse("history:task_list") + "?status=submitted&provisional=1")
    assert listed.content.decode().count('class="badge badge-submitted"') >= 2


def test_the_spend_page_shows_no_provisional_panel_when_everything_is_final(team_admin_client):
    make_task(status="completed")
    assert 'id="provisional"' not in team_admin_client.get(reverse("spend:page")).content.decode()
