"""The generator makes realistic, consistent tasks that the history pages can show."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Q
from django.urls import reverse

from tasks.models import Task, TaskEvent

pytestmark = pytest.mark.django_db


COUNT = 1000  # enough for every spread asserted below; each test generates its own (~6 ms a task on SQLite)


@pytest.fixture
def generated(django_db_blocker):
    call_command("generate_tasks", count=COUNT, batch_size=500, tags=30, users=5, sample=0.05, stdout=None)
    return Task.objects.all()


def test_generates_the_requested_number_with_consistent_money(generated):
    assert generated.count() == COUNT
    completed = generated.filter(status="completed")
    assert completed.count() > COUNT * 2 / 3
    assert not completed.filter(Q(cost__isnull=True) | Q(spend_is_final=False)).exists()
    assert not generated.filter(status="failed").exclude(spend=0).exists()
    assert not generated.filter(status__in=Task.ACTIVE_STATUSES, spend_is_final=True).exists()


def test_spreads_over_providers_tags_people_and_a_year(generated):
    providers = dict(generated.values_list("provider").annotate(n=Count("id")))
    assert providers["chat_gpt"] > providers["claude"] > 0
    assert generated.exclude(tag="").values("tag").distinct().count() > 10
    assert generated.values("submitted_by").distinct().count() == 5
    dates = sorted(generated.values_list("created_at", flat=True))
    assert (dates[-1] - dates[0]).days > 300


def test_a_sample_has_events_and_the_pages_show_it(generated, member_client):
    with_events = Task.objects.filter(events__isnull=False).distinct()
    assert with_events.exists()
    task = with_events.filter(status="completed").first()
    assert TaskEvent.objects.filter(task=task, kind="completed").exists()

    assert member_client.get(reverse("history:task_detail", args=[task.pk])).status_code == 200
    assert member_client.get(reverse("history:task_list"), {"provider": "claude"}).status_code == 200
    tag = generated.exclude(tag="").values_list("tag", flat=True).first()
    assert member_client.get(reverse("history:tag_detail", kwargs={"tag": tag})).status_code == 200


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="statistics are PostgreSQL's here; set DATABASE_URL=postgres://… to run this",
)
def test_every_table_it_fills_has_statistics_for_the_planner(generated):
    """A server without autovacuum plans a never-analysed table blind: the tag page's brand mentions query
    took seconds on a fresh 1 M-task database. ANALYZE is transactional, so the test's rollback undoes it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples FROM pg_class WHERE relname IN "
            "('tasks_task', 'tasks_taskevent', 'tasks_brandmention')"
        )
        estimates = dict(cursor.fetchall())
    assert set(estimates) == {"tasks_task", "tasks_taskevent", "tasks_brandmention"}
    assert all(rows > 0 for rows in estimates.values()), estimates


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the visibility map is PostgreSQL's; set DATABASE_URL=postgres://… to run this",
)
@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_it_leaves_the_tables_vacuumed_so_index_only_scans_skip_the_table():
    """Home's and spend's this-month figures read a covering index; on a freshly loaded table PostgreSQL
    still visits the table for each row until a vacuum marks its pages all-visible."""
    call_command("generate_tasks", count=3000, batch_size=1000, tags=30, users=5, sample=0.05, stdout=None)
    with connection.cursor() as cursor:
        cursor.execute("SELECT relallvisible, relpages FROM pg_class WHERE relname = 'tasks_task'")
        visible, pages = cursor.fetchone()
    assert pages > 0
    assert visible == pages
