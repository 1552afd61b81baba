"""The Django admin: read-only tasks with a CSV export, credentials without secrets, audited budgets."""

import csv
import io
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from tasks.models import AuditEntry, Budget
from tests.factories import make_credential, make_task, make_user

pytestmark = pytest.mark.django_db

SECRET = "aisa-live-visible-nowhere-9876"


@pytest.fixture
def staff_admin_client(client):
    user = make_user("staff-admin", is_staff=True)
    user.groups.add(Group.objects.get(name="Admins"))
    client.force_login(user)
    return client


def test_the_task_list_shows_cost_status_tag_person_and_model(staff_admin_client):
    person = make_user("alice")
    make_task(submitted_by=person, tag="launch", model_name="gpt-4.1-mini")

    response = staff_admin_client.get(reverse("admin:tasks_task_changelist"), {"status": "completed"})

    html = response.content.decode()
    assert response.status_code == 200
    for text in ("alice", "launch", "gpt-4.1-mini", "0.028800", "Completed"):
        assert text in html


def test_tasks_are_read_only_in_the_admin(staff_admin_client):
    task = make_task()

    page = staff_admin_client.get(reverse("admin:tasks_task_change", args=[task.pk]))
    post = staff_admin_client.post(reverse("admin:tasks_task_change", args=[task.pk]), {"tag": "changed"})

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert post.status_code == 403
    assert staff_admin_client.get(reverse("admin:tasks_task_add")).status_code == 403


def test_search_and_date_hierarchy_work(staff_admin_client):
    make_task(user_prompt="amusement parks in France", tag="parks")

    found = staff_admin_client.get(reverse("admin:tasks_task_changelist"), {"q": "parks"})
    by_year = staff_admin_client.get(reverse("admin:tasks_task_changelist"), {"created_at__year": "2000"})

    assert "amusement parks" in found.content.decode()
    assert "0 tasks" in by_year.content.decode() or "amusement parks" not in by_year.content.decode()


def test_the_csv_action_exports_the_selected_tasks(staff_admin_client):
    tasks = [make_task(tag="a"), make_task(tag="=cmd")]

    response = staff_admin_client.post(
        reverse("admin:tasks_task_changelist"),
        {"action": "export_tasks_csv", "_selected_action": [str(t.pk) for t in tasks]},
    )

    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert response["Content-Type"].startswith("text/csv")
    assert {row["id"] for row in rows} == {str(t.pk) for t in tasks}
    assert {row["tag"] for row in rows} == {"a", "'=cmd"}
    assert all(Decimal(row["spend"]) == Decimal("0.0288") for row in rows)


def test_credentials_in_the_admin_never_show_the_secret(staff_admin_client):
    credential = make_credential("Main", secret=SECRET)

    listing = staff_admin_client.get(reverse("admin:tasks_credential_changelist")).content.decode()
    detail = staff_admin_client.get(
        reverse("admin:tasks_credential_change", args=[credential.pk])
    ).content.decode()

    for html in (listing, detail):
        assert SECRET not in html
        assert credential.secret_encrypted not in html
        assert "…9876" in html


def test_budget_changes_in_the_admin_are_audited(staff_admin_client):
    budget = Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("10"))

    staff_admin_client.post(
        reverse("admin:tasks_budget_change", args=[budget.pk]),
        {"scope": "team", "tag": "", "monthly_limit": "25", "warn_ratio": "0.8", "is_active": "on"},
    )

    budget.refresh_from_db()
    assert budget.monthly_limit == Decimal("25")
    entry = AuditEntry.objects.get(action="budget.update")
    assert entry.changes == {"monthly_limit": {"from": "10", "to": "25"}}


def test_saving_a_budget_unchanged_in_the_admin_adds_nothing_to_the_audit_log(staff_admin_client):
    budget = Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("10"))

    staff_admin_client.post(
        reverse("admin:tasks_budget_change", args=[budget.pk]),
        {"scope": "team", "tag": "", "monthly_limit": "10", "warn_ratio": "0.8", "is_active": "on"},
    )

    assert not AuditEntry.objects.filter(action="budget.update").exists()


def test_the_audit_log_is_read_only_in_the_admin(staff_admin_client):
    budget = Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("10"))
    staff_admin_client.post(reverse("admin:tasks_budget_delete", args=[budget.pk]), {"post": "yes"})
    entry = AuditEntry.objects.get(action="budget.delete")

    page = staff_admin_client.get(reverse("admin:tasks_auditentry_change", args=[entry.pk]))

    assert page.status_code == 200
    assert "monthly_limit: 10" in page.content.decode()
    assert (
        staff_admin_client.post(reverse("admin:tasks_auditentry_delete", args=[entry.pk])).status_code == 403
    )


def test_members_cannot_open_the_admin(member_client):
    assert member_client.get(reverse("admin:tasks_task_changelist"))["Location"].startswith("/admin/login/")
