"""One builder request as a monitor's prompt, whole: from the builder or a task's page, sent as the builder
would send it on each of the monitor's models."""

import json
import re
from html import unescape

import pytest
from django.urls import reverse

from tasks.builder.forms import TaskRequestForm, catalog_for
from tasks.models import Monitor, Task
from tasks.monitors.plans import run_plan
from tasks.upstream.providers import provider_rules

pytestmark = pytest.mark.django_db


def builder_data(credential, **fields):
    data = {
        "provider": "chat_gpt",
        "credential": str(credential.pk),
        "idempotency_key": "k" * 32,
        "model_name": "gpt-4.1",
        "mode": "task_post",
        "user_prompt": "Which hotel in Paris?",
        "system_message": "Answer in one line.",
        "chain-0-role": "user",
        "chain-0-message": "Hello",
        "chain-1-role": "ai",
        "chain-1-message": "Hi, how can I help?",
        "max_output_tokens": "500",
        "temperature": "0.3",
        "web_search": "on",
        "web_search_country_iso_code": "fr",
        "web_search_city": "Paris",
        "tag": "their-own-tag",
    }
    data.update(fields)
    return data


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    return unescape(match.group(1)) if match else ""


def monitor_post(page: str, **fields) -> dict:
    data = {
        "name": "Paris hotels",
        "request_json": hidden(page, "request_json"),
        "request_provider": hidden(page, "request_provider"),
        "user_prompt": "Which hotel in Paris?",
        "targets": "gpt-4.1\nclaude-3-5-haiku",
        "cadence": "daily",
        "time_of_day": "09:00",
        "minute": "0",
        "time_zone": "UTC",
    }
    data.update(fields)
    return data


def test_monitor_this_request_opens_the_form_prefilled_and_the_run_sends_the_builders_body(
    member_client, credential, catalog
):
    data = builder_data(credential)
    response = member_client.post(reverse("monitors:from_request"), data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "One builder request for <strong>ChatGPT</strong>" in page
    assert "Answer in one line." in page and "FR" in page  # the summary, readable
    assert f"gpt-4.1 | {credential.name}" in page  # its model, on its credential
    assert not Task.objects.exists()  # nothing sent

    saved = member_client.post(reverse("monitors:create"), monitor_post(page))
    assert saved.status_code == 302
    monitor = Monitor.objects.get()
    assert monitor.request_provider == "chat_gpt"
    assert monitor.request_fields["temperature"] == 0.3

    plan = run_plan(monitor=monitor)
    assert not plan.errors
    sent = {group.provider: group.bodies[0] for group in plan.groups}
    rules = provider_rules("chat_gpt")
    builder = TaskRequestForm(data, rules=rules, catalog=catalog_for("chat_gpt"))
    assert builder.is_valid(), builder.errors
    assert sent["chat_gpt"] == {**builder.body, "tag": "paris-hotels"}  # builder body + own tag
    # On Claude the same request, in the fields Claude has.
    assert sent["claude"]["user_prompt"] == "Which hotel in Paris?"
    assert sent["claude"]["system_message"] == "Answer in one line."
    assert sent["claude"]["message_chain"] == builder.body["message_chain"]


def test_editing_a_request_monitor_keeps_the_whole_request(member_client, credential, catalog):
    page = member_client.post(reverse("monitors:from_request"), builder_data(credential)).content.decode()
    member_client.post(reverse("monitors:create"), monitor_post(page))
    monitor = Monitor.objects.get()
    edit = member_client.get(reverse("monitors:edit", args=[monitor.slug])).content.decode()
    assert "Answer in one line." in edit
    member_client.post(
        reverse("monitors:edit", args=[monitor.slug]), monitor_post(edit, user_prompt="Which hotel in Rome?")
    )
    monitor.refresh_from_db()
    assert monitor.request_fields["user_prompt"] == "Which hotel in Rome?"
    assert monitor.request_fields["system_message"] == "Answer in one line."
    assert monitor.request_fields["web_search_country_iso_code"] == "FR"


def test_a_bad_builder_request_comes_back_to_the_builder_with_its_errors_and_input(
    member_client, credential, catalog
):
    response = member_client.post(
        reverse("monitors:from_request"), builder_data(credential, temperature="hot", user_prompt="Keep me")
    )
    assert response.status_code == 422
    page = response.content.decode()
    assert "Keep me" in page and 'value="hot"' in page
    assert not Monitor.objects.exists()


def test_a_partial_or_tampered_request_is_an_error_with_the_input_kept(member_client, credential, catalog):
    page = member_client.post(reverse("monitors:from_request"), builder_data(credential)).content.decode()
    for bad in ("{not json", "[1, 2]", json.dumps({"temperature": "hot"})):
        response = member_client.post(
            reverse("monitors:create"), monitor_post(page, request_json=bad, name="Kept name")
        )
        assert response.status_code == 200, bad
        assert "Kept name" in response.content.decode()
    assert not Monitor.objects.exists()


def test_monitor_this_request_from_a_tasks_page(member_client, credential, catalog):
    from tests.factories import make_task

    task = make_task(
        credential=credential,
        request_body={"user_prompt": "Best hotel?", "model_name": "gpt-4.1", "system_message": "Be brief."},
    )
    detail = member_client.get(reverse("history:task_detail", args=[task.pk])).content.decode()
    link = f"{reverse('monitors:create')}?from_task={task.pk}"
    assert link in detail
    page = member_client.get(link).content.decode()
    assert "Be brief." in page and "Best hotel?" in page
    assert member_client.get(f"{reverse('monitors:create')}?from_task=nope").status_code == 404


def test_the_batch_list_names_a_request_monitors_run_by_its_monitor_not_as_a_deleted_template(
    member_client, credential, catalog
):
    from tasks.models import Batch
    from tasks.monitors.runs import run_now

    page = member_client.post(reverse("monitors:from_request"), builder_data(credential)).content.decode()
    member_client.post(reverse("monitors:create"), monitor_post(page))
    monitor = Monitor.objects.get()
    run, _ = run_now(monitor=monitor, user=None)
    assert Batch.objects.get().pk == run.batch_id and run.batch.template_version_id is None

    listed = member_client.get(reverse("prompt_templates:batch_list")).content.decode()
    assert "the monitor&#x27;s own requests" in listed or "the monitor's own requests" in listed
    assert reverse("monitors:detail", args=[monitor.slug]) in listed
    assert ">deleted<" not in listed
