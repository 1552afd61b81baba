"""Batches: CSV rows with line-numbered errors, the plan and its charge, chunks of ≤ 100 per upstream call."""

from decimal import Decimal

import pytest
from django.urls import reverse

from sandbox import stats
from tasks import batches
from tasks.budgets import BudgetExceeded
from tasks.models import Batch, Budget, Task
from tasks.prompt_templates import template_create
from tests.builder_factories import make_catalog, make_member

FIELDS = {"user_prompt": "Best {{dish}} in {{city}}?", "model_name": "gpt-4.1"}


@pytest.fixture
def member(db, django_user_model):
    return make_member(django_user_model)


@pytest.fixture
def template(member):
    make_catalog()
    return template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member)


def csv_rows(n: int) -> str:
    return "dish,city\n" + "".join(f"dish{i},city{i}\n" for i in range(n))


def test_rows_parse_with_the_header_as_variable_names():
    rows, errors = batches.parse_rows('dish,city\npho,Hanoi\n"ramen, spicy",Tokyo\n', ["dish", "city"])

    assert errors == []
    assert [(r["dish"], r["city"], r["_line"]) for r in rows] == [
        ("pho", "Hanoi", "2"),
        ("ramen, spicy", "Tokyo", "3"),
    ]


def test_bad_rows_are_reported_by_line_number():
    text = "dish,city\npho,Hanoi\n\nramen\n,Paris\n"

    _, errors = batches.parse_rows(text, ["dish", "city"])

    assert errors == ["Line 4: 1 values for 2 columns.", "Line 5: no value for dish."]


def test_a_header_without_a_variable_is_reported():
    _, errors = batches.parse_rows("dish\npho\n", ["dish", "city"])

    assert errors[0].startswith("Line 1: the header lacks city")


def test_the_plan_checks_every_task_with_the_builder_form(template, credential):
    version = template.versions.get()
    text = "dish,city\npho,Hanoi\n" + "x" * 490 + ",Paris\n"

    plan = batches.batch_plan(
        version=version, rows_text=text, models=["gpt-4.1", "o3-mini"], credential=credential
    )

    assert plan.task_count == 4
    assert not plan.ok
    assert plan.errors == [
        "Line 3 (gpt-4.1): User prompt: At most 500 characters (505 with the variables filled in).",
        "Line 3 (o3-mini): User prompt: At most 500 characters (505 with the variables filled in).",
    ]


def test_the_plan_counts_tasks_and_the_total_charge(template, credential):
    plan = batches.batch_plan(
        version=template.versions.get(),
        rows_text=csv_rows(3),
        models=["gpt-4.1", "gpt-4.1-mini"],
        credential=credential,
    )

    assert plan.ok
    assert plan.task_count == 6
    assert str(plan.total_charge) == "0.0612"
    assert plan.bodies[0] == {"user_prompt": "Best dish0 in city0?", "model_name": "gpt-4.1"}


def test_planning_takes_the_same_few_queries_for_3_rows_or_300(
    template, credential, django_assert_max_num_queries
):
    version = template.versions.get()
    for rows in (3, 300):
        with django_assert_max_num_queries(3):
            plan = batches.batch_plan(
                version=version, rows_text=csv_rows(rows), models=["gpt-4.1"], credential=credential
            )
        assert plan.ok and len(plan.bodies) == rows


def test_a_plan_without_a_credential_says_so_for_each_task(template):
    plan = batches.batch_plan(
        version=template.versions.get(), rows_text=csv_rows(1), models=["gpt-4.1"], credential=None
    )

    assert plan.errors == ["Line 2 (gpt-4.1): Credential: Choose a credential."]


@pytest.mark.django_db(transaction=True)
def test_250_rows_are_posted_in_3_upstream_calls(template, live_credential, member):
    plan = batches.batch_plan(
        version=template.versions.get(),
        rows_text=csv_rows(250),
        models=["gpt-4.1"],
        credential=live_credential,
    )
    stats.clear()

    batch = batches.batch_submit(plan=plan, credential=live_credential, user=member, idempotency_key="b1")

    assert stats.request_count(function="task_post", method="POST") == 3
    assert batch.tasks.count() == 250
    assert batch.tasks.filter(status=Task.Status.SUBMITTED).count() == 250
    assert set(batch.tasks.values_list("template_version", flat=True)) == {template.versions.get().pk}


@pytest.mark.django_db(transaction=True)
def test_a_resent_batch_confirmation_posts_nothing_again(template, live_credential, member):
    plan = batches.batch_plan(
        version=template.versions.get(), rows_text=csv_rows(5), models=["gpt-4.1"], credential=live_credential
    )
    first = batches.batch_submit(plan=plan, credential=live_credential, user=member, idempotency_key="b2")
    stats.clear()

    second = batches.batch_submit(plan=plan, credential=live_credential, user=member, idempotency_key="b2")

    assert second == first
    assert stats.request_count(function="task_post", method="POST") == 0
    assert Task.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_a_confirmation_that_loses_the_race_to_its_twin_shows_the_twins_batch(
    template, live_credential, member, monkeypatch
):
    """Two confirmations of one form, the second looking up its key before the first had written its
    tasks: the second creates nothing, posts nothing and leaves no empty batch behind."""
    plan = batches.batch_plan(
        version=template.versions.get(), rows_text=csv_rows(5), models=["gpt-4.1"], credential=live_credential
    )
    first = batches.batch_submit(plan=plan, credential=live_credential, user=member, idempotency_key="b3")
    stats.clear()
    monkeypatch.setattr(batches, "_first_task_of", lambda key: None)  # looked up too early

    second = batches.batch_submit(plan=plan, credential=live_credential, user=member, idempotency_key="b3")

    assert second == first
    assert stats.request_count(function="task_post", method="POST") == 0
    assert Task.objects.count() == 5
    assert Batch.objects.count() == 1


def test_a_batch_over_budget_is_refused_and_leaves_no_batch(template, live_credential, member):
    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("0.01"))
    plan = batches.batch_plan(
        version=template.versions.get(), rows_text=csv_rows(5), models=["gpt-4.1"], credential=live_credential
    )
    stats.clear()

    with pytest.raises(BudgetExceeded):
        batches.batch_submit(plan=plan, credential=live_credential, user=member, idempotency_key="b4")

    assert stats.request_count(function="task_post", method="POST") == 0
    assert not Batch.objects.exists() and not Task.objects.exists()


def test_the_batch_page_checks_then_shows_count_and_charge(member_client, template, credential):
    url = reverse("batch_new", args=[template.pk])
    data = {
        "credential": credential.pk,
        "models": ["gpt-4.1"],
        "rows_text": csv_rows(2),
        "idempotency_key": "k",
    }

    html = member_client.post(url, {**data, "confirm": "0"}).content.decode()

    assert "2 tasks" in html and "$0.0204" in html
    assert Task.objects.count() == 0


def test_the_batch_page_reports_bad_rows_before_sending(member_client, template, credential):
    url = reverse("batch_new", args=[template.pk])
    data = {
        "credential": credential.pk,
        "models": ["gpt-4.1"],
        "rows_text": "dish,city\npho\n",
        "idempotency_key": "k",
    }

    html = member_client.post(url, {**data, "confirm": "1"}).content.decode()

    assert "Line 2: 1 values for 2 columns." in html
    assert Task.objects.count() == 0


def test_the_batch_page_accepts_an_uploaded_csv(member_client, template, credential):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("rows.csv", csv_rows(3).encode(), content_type="text/csv")
    data = {"credential": credential.pk, "models": ["gpt-4.1"], "rows_file": upload, "idempotency_key": "k"}

    html = member_client.post(reverse("batch_new", args=[template.pk]), data).content.decode()

    assert "3 tasks" in html


def test_the_batch_progress_page_and_its_htmx_fragment(member_client, template, member_user):
    batch = Batch.objects.create(name="Nightly", created_by=member_user)

    assert "Nightly" in member_client.get(reverse("batch_detail", args=[batch.pk])).content.decode()
    fragment = member_client.get(
        reverse("batch_detail", args=[batch.pk]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert fragment.lstrip().startswith('<div id="batch-live"')


def test_the_polled_fragment_redraws_the_table_with_the_counts_and_stops_when_all_are_final(
    member_client, member_user
):
    from tests.factories import make_task

    batch = Batch.objects.create(name="Nightly", created_by=member_user)
    task = make_task(status=Task.Status.SUBMITTED, batch=batch, user_prompt="Still waiting")
    url = reverse("batch_detail", args=[batch.pk])

    fragment = member_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "Still waiting" in fragment and "badge-submitted" in fragment
    assert 'hx-trigger="every 3s"' in fragment

    Task.objects.filter(pk=task.pk).update(status=Task.Status.COMPLETED)
    fragment = member_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "badge-completed" in fragment and "badge-submitted" not in fragment
    assert "hx-trigger" not in fragment  # every task is final: the polling stops


def test_a_batch_larger_than_the_page_links_to_all_its_tasks(member_client, member_user, monkeypatch):
    from tasks.views import builder as builder_views
    from tests.factories import make_task

    monkeypatch.setattr(builder_views, "BATCH_PAGE_TASKS", 2)
    batch = Batch.objects.create(name="Nightly", created_by=member_user)
    for i in range(3):
        make_task(batch=batch, user_prompt=f"Prompt {i}")

    html = member_client.get(reverse("batch_detail", args=[batch.pk])).content.decode()

    assert html.count("badge-completed") == 2
    assert "The first 2 of 3 tasks." in html
    assert f"/tasks/?batch={batch.pk}" in html
    listed = member_client.get(f"/tasks/?batch={batch.pk}").content.decode()
    assert all(f"Prompt {i}" in listed for i in range(3))


def test_the_batch_page_tells_planned_tasks_being_written_from_those_never_written(
    member_client, member_user
):
    from datetime import timedelta

    from django.utils import timezone

    from tests.factories import make_task

    batch = Batch.objects.create(name="Nightly", created_by=member_user, task_count=3)
    make_task(status=Task.Status.COMPLETED, batch=batch)
    url = reverse("batch_detail", args=[batch.pk])

    html = member_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "2 more of the batch's 3 tasks are being written and sent." in html
    assert 'hx-trigger="every 3s"' in html  # not done while its submission may still write them

    Batch.objects.filter(pk=batch.pk).update(created_at=timezone.now() - timedelta(minutes=11))
    html = member_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "2 of the batch's 3 tasks were never written" in html
    assert 'hx-trigger="every 3s"' not in html
