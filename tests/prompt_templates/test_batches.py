"""Batches: CSV rows with line-numbered errors, the plan and its charge, chunks of ≤ 100 per upstream call."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from sandbox import stats
from tasks.models import Batch, Budget, Task
from tasks.prompt_templates import batches
from tasks.prompt_templates import rows as rows_module
from tasks.prompt_templates import views as prompt_templates_views
from tasks.prompt_templates.services import template_create
from tasks.spend.budgets import BudgetExceeded, budget_spent
from tasks.submission import sending
from tasks.upstream import clients
from tests.concurrency import AnotherTransactionFirst
from tests.factories import make_catalog, make_member
from tests.submission.fake_upstream import CHARGE, FakeUpstream
from tests.submission.sending import send_planned

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
    rows, errors = rows_module.parse_rows('dish,city\npho,Hanoi\n"ramen, spicy",Tokyo\n', ["dish", "city"])

    assert errors == []
    assert [(r["dish"], r["city"], r["_line"]) for r in rows] == [
        ("pho", "Hanoi", "2"),
        ("ramen, spicy", "Tokyo", "3"),
    ]


def test_rows_typed_with_a_space_after_each_comma_read_as_their_values():
    # As people type a list by hand: the values were " Hanoi" (a double space in the prompt), and a
    # quoted value after ", " was not read as quoted ("3 values for 2 columns").
    rows, errors = rows_module.parse_rows(
        'dish, city\npho, Hanoi\n"pizza, margherita", Napoli\nramen, "Tokyo, Shibuya"\n', ["dish", "city"]
    )

    assert errors == []
    assert [(r["dish"], r["city"]) for r in rows] == [
        ("pho", "Hanoi"),
        ("pizza, margherita", "Napoli"),
        ("ramen", "Tokyo, Shibuya"),
    ]


def test_bad_rows_are_reported_by_line_number():
    text = "dish,city\npho,Hanoi\n\nramen\n,Paris\n"

    _, errors = rows_module.parse_rows(text, ["dish", "city"])

    assert errors == ["Line 4: 1 value for 2 columns.", "Line 5: no value for dish."]


def test_a_quote_left_open_is_reported_on_the_line_it_opens():
    # The rest of the file read as one value: the error named the last line, and its rows were gone.
    text = 'dish,city\npho,Hanoi\n"ramen,Tokyo\npizza,Napoli\nbanh mi,Saigon\n'

    rows, errors = rows_module.parse_rows(text, ["dish", "city"])

    assert [r["dish"] for r in rows] == ["pho"]
    assert errors == [
        'Line 3: a quote (") opens a value that runs to line 5, so lines 3 to 5 read as 1 value for 2 '
        'columns. Close the quote, or double it ("") to keep it in the value.'
    ]


def test_a_header_without_a_variable_is_reported():
    _, errors = rows_module.parse_rows("dish\npho\n", ["dish", "city"])

    assert errors[0].startswith("Line 1: the header lacks city")


def test_a_variable_missing_from_the_header_is_one_error_not_one_per_row(template, credential):
    # A file of 300 rows without a city column: 301 errors, the page listing 50 "no value for city".
    text = "dish,town\n" + "pho,Hanoi\n" * 300 + "ramen\n"

    plan = batches.batch_plan(
        version=template.versions.get(), rows_text=text, models=["gpt-4.1"], credential=credential
    )

    assert plan.errors == [
        "Line 1: the header lacks city (it has: dish, town).",
        "Line 302: 1 value for 2 columns.",
    ]


def test_a_header_naming_a_variable_twice_is_reported_not_read_from_its_last_column():
    # An export with two "city" columns: which one fills {{city}} was a silent guess (the last).
    rows, errors = rows_module.parse_rows("dish,city,notes,city\npho,Hanoi,x,Saigon\n", ["dish", "city"])

    assert errors == ["Line 1: the header names city twice; keep one column for it."]
    assert rows == []


def test_header_names_match_variables_ignoring_case_and_surrounding_spaces():
    # A spreadsheet's "Country" column, or "Dish " with the space a cell kept, fills {{dish}}.
    rows, errors = rows_module.parse_rows("Dish ,  CITY\npho,Hanoi\n", ["dish", "city"])

    assert errors == []
    assert [(r["dish"], r["city"]) for r in rows] == [("pho", "Hanoi")]


def test_two_headers_naming_one_variable_but_for_case_are_an_error_naming_both():
    rows, errors = rows_module.parse_rows("dish,city,City\npho,Hanoi,Saigon\n", ["dish", "city"])

    assert rows == []
    assert errors == ["Line 1: the columns “city” and “City” both name city (case aside); keep one of them."]


def test_variables_that_differ_only_in_case_are_matched_exactly():
    rows, errors = rows_module.parse_rows("City,city\nHanoi,Saigon\n", ["city", "City"])

    assert errors == []
    assert [(r["city"], r["City"]) for r in rows] == [("Saigon", "Hanoi")]


def test_the_check_says_which_columns_were_read_as_which_variables(member_client, template, credential):
    url = reverse("prompt_templates:batch_new", args=[template.pk])
    data = {"credential": credential.pk, "models": ["gpt-4.1"], "idempotency_key": "k"}

    html = member_client.post(url, {**data, "rows_text": "Dish,City \npho,Hanoi\n"}).content.decode()

    assert "1 task" in html
    assert "Columns read as variables: “Dish” as dish, “City ” as city." in html


def test_the_check_says_which_rows_repeat_an_earlier_one(member_client, template, credential):
    # Each is sent and charged again: a pasted block copied twice cost double without a word.
    url = reverse("prompt_templates:batch_new", args=[template.pk])
    rows = "dish,city\npho,Hanoi\nramen,Tokyo\npho, Hanoi\nramen,Tokyo\nbun,Hue\n"
    data = {"credential": credential.pk, "models": ["gpt-4.1"], "idempotency_key": "k", "rows_text": rows}

    html = member_client.post(url, data).content.decode()

    assert "5 tasks" in html and "Submit 5 tasks" in html
    assert "2 rows repeat an earlier one (line 4 repeats line 2, line 5 repeats line 3)" in html


def test_the_plan_checks_every_task_with_the_builder_form(template, credential):
    version = template.versions.get()
    text = "dish,city\npho,Hanoi\n" + "x" * 490 + ",Paris\n"

    plan = batches.batch_plan(
        version=version, rows_text=text, models=["gpt-4.1", "o3-mini"], credential=credential
    )

    assert plan.task_count == 4
    assert not plan.ok
    assert plan.errors == [
        "Line 3 (gpt-4.1, o3-mini): User prompt: At most 500 characters (505 with the variables filled in).",
    ]


def test_a_problem_that_concerns_two_fields_is_listed_once(member, credential):
    """The builder shows a cross-field problem beside each field it concerns; the batch's list of
    problems names it once, not once per field (“Model: o1 does not support web search.” and
    “Web search: o1 does not support web search.”)."""
    make_catalog()
    fields = {"user_prompt": "About {{topic}}", "model_name": "gpt-4.1", "web_search": True}
    version = template_create(name="Search", provider="chat_gpt", fields=fields, user=member).versions.get()

    plan = batches.batch_plan(
        version=version, rows_text="topic\nsolar\n", models=["o1"], credential=credential
    )

    web_search = [error for error in plan.errors if "does not support web search" in error]
    assert len(web_search) == 1, plan.errors
    assert web_search[0].startswith("Line 2 (o1): ")


def test_each_row_gets_the_body_and_errors_a_form_of_its_own_would_give(member, credential):
    """The plan checks the first valid row with the whole form and the others with its `body_with`:
    the result is the same as a form per row (line breaks as LF, lengths with the variables filled)."""
    from tasks.builder.forms import TaskRequestForm, form_data_from_fields
    from tasks.models import ProviderModel
    from tasks.upstream.providers import provider_rules

    make_catalog()
    fields = {**FIELDS, "system_message": "Answer about {{city}} in one line."}
    version = template_create(
        name="Two texts", provider="chat_gpt", fields=fields, user=member
    ).versions.get()
    text = 'dish,city\npho,Hanoi\n"ramen\r\nspicy",Tokyo\n' + "y" * 495 + ",Oslo\nbun,Hue\n"

    plan = batches.batch_plan(version=version, rows_text=text, models=["gpt-4.1"], credential=credential)

    rules = provider_rules("chat_gpt")
    catalog = list(ProviderModel.objects.filter(provider="chat_gpt"))
    expected = []
    for dish, city in [("pho", "Hanoi"), ("ramen\r\nspicy", "Tokyo"), ("bun", "Hue")]:
        data = form_data_from_fields(rules, fields, credential=credential)
        data.update({"var_dish": dish, "var_city": city})
        form = TaskRequestForm(data, rules=rules, catalog=catalog, credential_checked=True)
        assert form.is_valid(), form.errors
        expected.append(form.body)
    assert plan.bodies == expected
    assert plan.bodies[1]["user_prompt"] == "Best ramen\nspicy in Tokyo?"
    assert plan.errors == [
        "Line 5 (gpt-4.1): User prompt: At most 500 characters (509 with the variables filled in).",
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
    send_planned()  # a worker sends what was planned

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
    send_planned()  # a worker sends what was planned
    stats.clear()

    second = batches.batch_submit(plan=plan, credential=live_credential, user=member, idempotency_key="b2")
    send_planned()  # a worker sends what was planned

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
    send_planned()  # a worker sends what was planned
    stats.clear()
    monkeypatch.setattr(batches, "_first_task_of", lambda key: None)  # looked up too early

    second = batches.batch_submit(plan=plan, credential=live_credential, user=member, idempotency_key="b3")
    send_planned()  # a worker sends what was planned

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
    url = reverse("prompt_templates:batch_new", args=[template.pk])
    data = {
        "credential": credential.pk,
        "models": ["gpt-4.1"],
        "rows_text": csv_rows(2),
        "idempotency_key": "k",
    }

    html = member_client.post(url, {**data, "confirm": "0"}).content.decode()

    assert "2 tasks" in html and "$0.0204" in html
    assert Task.objects.count() == 0


@pytest.mark.parametrize(
    "change",
    [
        {"rows_text": csv_rows(5)},  # rows added after the check
        {"models": ["gpt-4.1", "gpt-4.1-mini"]},  # a model ticked after the check
    ],
)
def test_submit_sends_only_what_was_checked(member_client, template, credential, change):
    url = reverse("prompt_templates:batch_new", args=[template.pk])
    data = {
        "credential": credential.pk,
        "models": ["gpt-4.1"],
        "rows_text": csv_rows(2),
        "idempotency_key": "k",
    }
    checked = member_client.post(url, {**data, "confirm": "0"}).content.decode()
    assert "Submit 2 tasks" in checked and "$0.0204" in checked
    planned = re.search(r'name="planned" value="([^"]*)"', checked).group(1)

    # The person edits the form, then presses "Submit 2 tasks" without checking again.
    response = member_client.post(url, {**data, **change, "planned": planned, "confirm": "1"})

    html = response.content.decode()
    assert response.status_code == 200 and Task.objects.count() == 0 and not Batch.objects.exists()
    assert "changed after they were checked, so nothing was sent" in html
    count = re.search(r"Submit (\d+) tasks", html).group(1)
    assert count in ("5", "4")  # the new plan, to confirm
    new_planned = re.search(r'name="planned" value="([^"]*)"', html).group(1)
    assert new_planned != planned

    # Confirming the new plan sends it.
    sent = member_client.post(url, {**data, **change, "planned": new_planned, "confirm": "1"})
    assert sent.status_code == 302 and Task.objects.count() == int(count)


def test_a_checked_batch_submitted_unchanged_is_sent(member_client, template, credential):
    url = reverse("prompt_templates:batch_new", args=[template.pk])
    data = {
        "credential": credential.pk,
        "models": ["gpt-4.1"],
        "rows_text": csv_rows(2),
        "idempotency_key": "k",
    }
    checked = member_client.post(url, {**data, "confirm": "0"}).content.decode()
    planned = re.search(r'name="planned" value="([^"]*)"', checked).group(1)

    response = member_client.post(url, {**data, "planned": planned, "confirm": "1"})

    assert response.status_code == 302 and Task.objects.count() == 2


def test_the_batch_page_reports_bad_rows_before_sending(member_client, template, credential):
    url = reverse("prompt_templates:batch_new", args=[template.pk])
    data = {
        "credential": credential.pk,
        "models": ["gpt-4.1"],
        "rows_text": "dish,city\npho\n",
        "idempotency_key": "k",
    }

    html = member_client.post(url, {**data, "confirm": "1"}).content.decode()

    assert "Line 2: 1 value for 2 columns." in html
    assert Task.objects.count() == 0


def test_the_batch_page_accepts_an_uploaded_csv(member_client, template, credential):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("rows.csv", csv_rows(3).encode(), content_type="text/csv")
    data = {"credential": credential.pk, "models": ["gpt-4.1"], "rows_file": upload, "idempotency_key": "k"}

    html = member_client.post(
        reverse("prompt_templates:batch_new", args=[template.pk]), data
    ).content.decode()

    assert "3 tasks" in html


def test_the_batch_progress_page_and_its_htmx_fragment(member_client, template, member_user):
    batch = Batch.objects.create(name="Nightly", created_by=member_user)

    assert (
        "Nightly"
        in member_client.get(reverse("prompt_templates:batch_detail", args=[batch.pk])).content.decode()
    )
    fragment = member_client.get(
        reverse("prompt_templates:batch_detail", args=[batch.pk]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert fragment.lstrip().startswith('<div id="batch-live"')


def test_the_polled_fragment_redraws_the_table_with_the_counts_and_stops_when_all_are_final(
    member_client, member_user
):
    from tests.factories import make_task

    batch = Batch.objects.create(name="Nightly", created_by=member_user)
    task = make_task(status=Task.Status.SUBMITTED, batch=batch, user_prompt="Still waiting")
    url = reverse("prompt_templates:batch_detail", args=[batch.pk])

    fragment = member_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "Still waiting" in fragment and "badge-submitted" in fragment
    assert 'hx-trigger="every 3s"' in fragment

    Task.objects.filter(pk=task.pk).update(status=Task.Status.COMPLETED)
    fragment = member_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "badge-completed" in fragment and "badge-submitted" not in fragment
    assert "hx-trigger" not in fragment  # every task is final: the polling stops


def test_a_batch_whose_last_tasks_lost_their_reply_stops_polling_at_100_percent(member_client, member_user):
    from tests.factories import make_task

    batch = Batch.objects.create(name="Nightly", created_by=member_user, task_count=2)
    make_task(status=Task.Status.COMPLETED, batch=batch)
    make_task(status=Task.Status.UNKNOWN, batch=batch, spend_is_final=False)
    url = reverse("prompt_templates:batch_detail", args=[batch.pk])

    fragment = member_client.get(url, headers={"HX-Request": "true"}).content.decode()

    # Nothing more happens to either task by itself: the lost reply is reconciled by the worker, and
    # its task page does not poll either.
    assert "hx-trigger" not in fragment
    assert 'value="100"' in fragment
    assert "Reply lost" in fragment


def test_a_batch_larger_than_the_page_links_to_all_its_tasks(member_client, member_user, monkeypatch):
    from tests.factories import make_task

    monkeypatch.setattr(prompt_templates_views, "BATCH_PAGE_TASKS", 2)
    batch = Batch.objects.create(name="Nightly", created_by=member_user)
    for i in range(3):
        make_task(batch=batch, user_prompt=f"Prompt {i}")

    html = member_client.get(reverse("prompt_templates:batch_detail", args=[batch.pk])).content.decode()

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
    url = reverse("prompt_templates:batch_detail", args=[batch.pk])

    html = member_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "2 more of the batch's 3 tasks are being written and sent." in html
    assert 'hx-trigger="every 3s"' in html  # not done while its submission may still write them

    Batch.objects.filter(pk=batch.pk).update(created_at=timezone.now() - timedelta(minutes=11))
    html = member_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "2 of the batch's 3 tasks were never written" in html
    assert 'hx-trigger="every 3s"' not in html


# --- Rows reported at once, mixed providers, variables kept ------------------------------------------


def test_every_bad_row_is_reported_in_one_check(template, credential):
    """A row that cannot be read does not hide the problems of the rows that can: one check lists all."""
    text = "dish,city\npho\n" + "x" * 490 + ",Paris\nramen,\nudon,Osaka\n"

    plan = batches.batch_plan(
        version=template.versions.get(), rows_text=text, models=["gpt-4.1"], credential=credential
    )

    assert plan.errors == [
        "Line 2: 1 value for 2 columns.",
        "Line 3 (gpt-4.1): User prompt: At most 500 characters (505 with the variables filled in).",
        "Line 4: no value for city.",
    ]


def test_a_batch_may_mix_chatgpt_and_claude_models(template, credential):
    plan = batches.batch_plan(
        version=template.versions.get(),
        rows_text=csv_rows(2),
        models=["gpt-4.1", "claude-3-5-haiku"],
        credential=credential,
    )

    assert plan.ok, plan.errors
    assert plan.providers == ["chat_gpt", "claude"]
    assert plan.body_providers == ["chat_gpt", "claude", "chat_gpt", "claude"]
    assert [body["model_name"] for body in plan.bodies] == ["gpt-4.1", "claude-3-5-haiku"] * 2


def test_each_model_is_checked_with_its_own_providers_rules(member, credential):
    """A ChatGPT template's temperature of 1.5 is fine for GPT and out of Claude's 0–1 range."""
    make_catalog()
    template = template_create(
        name="Warm", provider="chat_gpt", fields={**FIELDS, "temperature": 1.5}, user=member
    )

    plan = batches.batch_plan(
        version=template.versions.get(),
        rows_text=csv_rows(1),
        models=["gpt-4.1", "claude-3-5-haiku"],
        credential=credential,
    )

    assert plan.errors == ["Line 2 (claude-3-5-haiku): Temperature: Must be between 0 and 1."]


@pytest.mark.django_db(transaction=True)
def test_a_mixed_batch_is_sent_as_one_submission_per_provider(template, live_credential, member):
    plan = batches.batch_plan(
        version=template.versions.get(),
        rows_text=csv_rows(3),
        models=["gpt-4.1", "claude-3-5-haiku"],
        credential=live_credential,
    )
    stats.clear()

    batch = batches.batch_submit(plan=plan, credential=live_credential, user=member, idempotency_key="mix")
    send_planned()  # a worker sends what was planned

    assert stats.request_count(function="task_post", method="POST") == 2
    assert stats.tasks_posted(provider="chat_gpt") == 3
    assert stats.tasks_posted(provider="claude") == 3
    assert sorted(batch.tasks.order_by().values_list("provider", "status").distinct()) == [
        ("chat_gpt", Task.Status.SUBMITTED),
        ("claude", Task.Status.SUBMITTED),
    ]
    assert (batch.row_count, batch.model_names, batch.task_count) == (3, ["gpt-4.1", "claude-3-5-haiku"], 6)


def test_a_mixed_batch_over_budget_is_refused_whole_before_anything_is_written(
    template, credential, member, monkeypatch
):
    """Either provider's share fits the budget; the whole batch does not: nothing is written or sent."""
    upstream = FakeUpstream()
    monkeypatch.setattr(clients, "LLMResponsesClient", upstream)
    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=CHARGE * 3)
    plan = batches.batch_plan(
        version=template.versions.get(),
        rows_text=csv_rows(2),
        models=["gpt-4.1", "claude-3-5-haiku"],
        credential=credential,
    )

    with pytest.raises(BudgetExceeded):
        batches.batch_submit(plan=plan, credential=credential, user=member, idempotency_key="mix-over")

    assert upstream.calls == []
    assert not Batch.objects.exists() and not Task.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_submission_made_while_a_batch_is_written_cannot_take_what_the_rest_of_the_batch_needs(
    template, credential, member, monkeypatch
):
    """Between a two-provider batch's ChatGPT rows and its Claude rows, another submission asks for the
    budget's last share: the batch's one transaction holds the budgets' lock until every row is written, so
    the other waits and is refused, and the batch is written whole."""
    monkeypatch.setattr(clients, "LLMResponsesClient", FakeUpstream())
    team = Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=CHARGE * 4)
    plan = batches.batch_plan(
        version=template.versions.get(),
        rows_text=csv_rows(2),
        models=["gpt-4.1", "claude-3-5-haiku"],
        credential=credential,
    )
    other = sending.TaskSpec(provider="chat_gpt", body={"user_prompt": "Other?", "model_name": "gpt-4.1"})
    real_submit = sending.submit_task_ids
    meanwhile = AnotherTransactionFirst(
        real_submit, lambda: sending.submit_tasks(specs=[other], credential=credential, user=member)
    )

    def submit_task_ids(*, specs, **kwargs):
        step = meanwhile if specs[0].provider == "claude" else real_submit
        return step(specs=specs, **kwargs)

    monkeypatch.setattr(sending, "submit_task_ids", submit_task_ids)

    batch = batches.batch_submit(plan=plan, credential=credential, user=member, idempotency_key="mix-held")
    refused = meanwhile.join()

    assert isinstance(refused, BudgetExceeded), refused
    assert batch.tasks.count() == Task.objects.count() == 4
    assert budget_spent(team) == CHARGE * 4


def test_each_task_of_a_batch_keeps_the_row_that_made_it(template, credential, member, monkeypatch):
    monkeypatch.setattr(clients, "LLMResponsesClient", FakeUpstream())
    plan = batches.batch_plan(
        version=template.versions.get(), rows_text=csv_rows(2), models=["gpt-4.1"], credential=credential
    )

    batch = batches.batch_submit(plan=plan, credential=credential, user=member, idempotency_key="vars")

    assert list(batch.tasks.order_by("created_at").values_list("variables", flat=True)) == [
        {"dish": "dish0", "city": "city0"},
        {"dish": "dish1", "city": "city1"},
    ]


# --- Pages: the checklist, the batch list, the batch page, the task list's picker ---------------------


def _dated_catalog():
    """The catalog as a real `models` fetch stores it: base names and their dated versions."""
    from django.utils import timezone

    from sandbox.catalog import CATALOG
    from tasks.models import ProviderModel

    make_catalog()
    for provider, models in CATALOG.items():
        for model in models:
            ProviderModel.objects.update_or_create(
                provider=provider,
                model_name=model.dated_name,
                defaults={"task_post_supported": model.task_post_supported, "fetched_at": timezone.now()},
            )


def test_the_model_checklist_lists_every_provider_one_entry_per_model(member_client, template, credential):
    _dated_catalog()

    html = member_client.get(reverse("prompt_templates:batch_new", args=[template.pk])).content.decode()

    values = re.findall(r'name="models" value="([^"]+)"', html)
    assert "gpt-4.1" in values and "claude-3-5-haiku" in values
    assert not [value for value in values if re.search(r"\d{4}-?\d{2}-?\d{2}$", value)]
    assert len(values) == len(set(values))
    assert "gpt-4.1 (web search) — now gpt-4.1-2025-04-14" in html
    assert "o1-pro" in values  # cannot be queued: sent live
    assert "o1-pro (reasoning, live only)" in html


def test_geminis_dated_versions_are_hints_on_their_base_names_not_entries(
    member_client, template, credential
):
    """Gemini dates its versions its own way (gemini-2.5-pro-preview-06-05, gemini-2.0-flash-lite-001):
    they were listed as models of their own beside their base names (six Gemini entries for three models,
    none with its “now” hint), so a batch could run the same model twice."""
    from sandbox.catalog import CATALOG

    _dated_catalog()

    html = member_client.get(reverse("prompt_templates:batch_new", args=[template.pk])).content.decode()

    values = set(re.findall(r'name="models" value="([^"]+)"', html))
    for model in CATALOG["gemini"]:
        assert model.base_name in values
        assert model.dated_name not in values
        assert f"— now {model.dated_name}" in html


def test_the_batch_list_shows_who_when_what_how_far_and_cost(member_client, template, member):
    from tests.factories import make_task

    version = template.versions.get()
    batch = Batch.objects.create(
        name="Nightly dishes",
        template_version=version,
        created_by=member,
        task_count=4,
        row_count=2,
        model_names=["gpt-4.1", "claude-3-5-haiku"],
        estimated_charge=Decimal("0.0408"),
    )
    for status in ("completed", "completed", "failed", "pending"):
        make_task(batch=batch, status=status)
    other_template = template_create(name="Other", provider="chat_gpt", fields=FIELDS, user=member)
    Batch.objects.create(name="Someone else's", template_version=other_template.versions.get())

    html = member_client.get(reverse("prompt_templates:batch_list")).content.decode()
    assert "Nightly dishes" in html and "Someone else" in html
    row = re.search(r"<tr>\s*<th scope=\"row\"><a[^>]*>Nightly dishes</a>.*?</tr>", html, re.S).group(0)
    assert member.get_username() in row
    assert "Food</a> v1" in row
    assert "2 × 2" in row and "gpt-4.1, claude-3-5-haiku" in row
    assert re.search(r"Completed</span></a> 2", row) and re.search(r"Failed</span></a> 1", row)
    assert f"?batch={batch.pk}&amp;status=failed" in row
    spent = sum(batch.tasks.values_list("spend", flat=True), Decimal(0))
    assert f"${spent:.4f}".rstrip("0") in row and "$0.0408" in row

    of_template = member_client.get(
        reverse("prompt_templates:batch_list") + f"?template={template.pk}"
    ).content.decode()
    assert "Nightly dishes" in of_template and "Someone else" not in of_template


@pytest.mark.parametrize("page", ["2", "99999999999999999999", "9" * 400])
def test_a_batch_list_page_past_the_end_is_empty_and_says_so(member_client, template, page):
    Batch.objects.create(name="Nightly dishes", template_version=template.versions.get())

    for query in ({"page": page}, {"page": page, "template": template.pk}):
        response = member_client.get(reverse("prompt_templates:batch_list"), query)

        assert response.status_code == 200
        html = response.content.decode()
        assert "Nightly dishes" not in html and "No batches yet" not in html
        assert f"No batches on page {page}: the list ends before it." in html
        assert "Newest batches</a>" in html and 'rel="next"' not in html


def test_the_batch_list_is_in_the_nav_and_on_each_templates_page(member_client, template):
    home = member_client.get("/").content.decode()
    assert f'href="{reverse("prompt_templates:batch_list")}"' in home
    page = member_client.get(reverse("prompt_templates:detail", args=[template.pk])).content.decode()
    assert f'href="{reverse("prompt_templates:batch_list")}?template={template.pk}"' in page


def test_the_batch_page_shows_each_tasks_variables_a_breadcrumb_and_exports(member_client, template, member):
    from tests.factories import make_task

    batch = Batch.objects.create(name="Nightly", template_version=template.versions.get(), created_by=member)
    make_task(batch=batch, user_prompt="Best pho in Hanoi?", variables={"dish": "pho", "city": "Hanoi"})
    make_task(user_prompt="Not in the batch")

    html = member_client.get(reverse("prompt_templates:batch_detail", args=[batch.pk])).content.decode()

    assert "<code>dish</code> = pho<br><code>city</code> = Hanoi" in html  # the template's order
    crumbs = re.search(r'<nav class="crumbs".*?</nav>', html, re.S).group(0)
    assert ">Templates</a>" in crumbs and ">Food</a>" in crumbs and "Nightly" in crumbs
    export = f"/tasks/export.csv?batch={batch.pk}"
    assert export in html and f"/tasks/export.json?batch={batch.pk}" in html
    exported = b"".join(member_client.get(export).streaming_content).decode()
    assert "Best pho in Hanoi?" in exported and "Not in the batch" not in exported


def test_the_task_lists_batch_filter_is_a_picker_of_named_batches(member_client, template, member):
    from tests.factories import make_task

    batch = Batch.objects.create(
        name="Nightly dishes", template_version=template.versions.get(), task_count=1
    )
    make_task(batch=batch, user_prompt="In the batch")
    make_task(user_prompt="Not in the batch")

    html = member_client.get(reverse("history:task_list")).content.decode()
    picker = re.search(r'<select name="batch".*?</select>', html, re.S).group(0)
    assert f'<option value="{batch.pk}">Nightly dishes · Food v1 · ' in picker

    listed = member_client.get(reverse("history:task_list") + f"?batch={batch.pk}").content.decode()
    assert "In the batch" in listed and "Not in the batch" not in listed
    assert f'<option value="{batch.pk}" selected>' in listed


def test_the_batch_confirmation_says_before_submit_when_the_batch_will_not_fit(
    member_client, template, credential
):
    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("0.03"))
    url = reverse("prompt_templates:batch_new", args=[template.pk])
    data = {
        "credential": credential.pk,
        "models": ["gpt-4.1"],
        "rows_text": csv_rows(3),
        "idempotency_key": "k",
    }

    html = member_client.post(url, {**data, "confirm": "0"}).content.decode()

    assert "This batch of 3 tasks needs $0.0306, the team budget has $0.0300 left this month." in html
    assert re.search(r'<button type="submit" class="primary" name="confirm" value="1" disabled', html)
    assert Task.objects.count() == 0


def _batch_being_sent(member, name: str) -> tuple[Batch, Task, Task]:
    """A batch with a queued task whose chunk a worker is sending (its row reads "Sending"), one still
    waiting for a worker, and one completed."""
    from django.utils import timezone

    from tasks.models import SendChunk
    from tests.factories import make_task

    batch = Batch.objects.create(name=name, created_by=member, task_count=3)
    being_sent = make_task(status="queued", batch=batch, user_prompt=f"{name}: being sent")
    waiting = make_task(status="queued", batch=batch, user_prompt=f"{name}: waiting")
    make_task(status="completed", batch=batch)
    chunk = SendChunk.objects.create(
        credential=being_sent.credential,
        provider="chat_gpt",
        batch=batch,
        task_count=1,
        state="sending",
        not_before=timezone.now(),
    )
    Task.objects.filter(pk=being_sent.pk).update(chunk=chunk)
    return batch, being_sent, waiting


def _listed(client, query: str) -> list[str]:
    return [str(task.pk) for task in client.get("/tasks/" + query).context["page"].tasks]


def test_a_batchs_status_counts_match_its_rows_and_the_lists_they_link_to(member_client, member):
    batch, being_sent, waiting = _batch_being_sent(member, "Nightly")

    html = member_client.get(reverse("prompt_templates:batch_list")).content.decode()
    row = re.search(r"<tr>\s*<th scope=\"row\"><a[^>]*>Nightly</a>.*?</tr>", html, re.S).group(0)
    assert re.search(r"Sending</span></a> 1", row) and re.search(r"Queued</span></a> 1", row)
    assert f"?batch={batch.pk}&amp;status=sending" in row
    assert _listed(member_client, f"?batch={batch.pk}&status=sending") == [str(being_sent.pk)]
    assert _listed(member_client, f"?batch={batch.pk}&status=queued") == [str(waiting.pk)]

    page = member_client.get(reverse("prompt_templates:batch_detail", args=[batch.pk])).content.decode()
    kpis = dict(re.findall(r'<div class="label">([\w ]+)</div><div class="value">(\d+)</div>', page))
    assert kpis["Sending"] == "1" and kpis["Queued"] == "1"
    rows = re.findall(r'<tr><td><span class="badge badge-(\w+)".*?>Nightly: ([\w ]+)</a>', page, re.S)
    assert sorted(rows) == [("queued", "waiting"), ("sending", "being sent")]


def test_the_batch_list_reads_what_is_being_sent_in_the_same_queries_for_1_batch_or_3(member_client, member):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert member_client.get(reverse("prompt_templates:batch_list")).status_code == 200
        return len(captured)

    _batch_being_sent(member, "First")
    one = count()
    _batch_being_sent(member, "Second")
    _batch_being_sent(member, "Third")
    assert count() == one


def test_batches_left_unnamed_and_sent_within_a_minute_read_apart(db):
    """A batch's ids are time-ordered (UUIDv7): their first characters are the minute they were made in,
    so unnamed batches sent together read "Batch 01a2511e" alike in the batch list and pickers."""
    first, second = Batch.objects.create(), Batch.objects.create()

    assert str(first) != str(second)
    assert str(first).removeprefix("Batch ") in str(first.pk)
