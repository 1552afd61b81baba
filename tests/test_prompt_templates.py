"""Prompt templates: versions on every edit, variables, diff, duplicate, archive, and their pages."""

from decimal import Decimal
from unittest import mock

import pytest
from django.urls import reverse

from tasks.models import PromptTemplate, Task
from tasks.prompt_templates import (
    TemplateError,
    template_archive,
    template_create,
    template_duplicate,
    template_edit,
    template_fill,
    template_variables,
    version_diff,
)
from tests.builder_factories import form_data, make_catalog

FIELDS = {
    "user_prompt": "Best {{dish}} in {{city}}?",
    "system_message": "Answer as a {{role}}.",
    "model_name": "gpt-4.1",
    "message_chain": [{"role": "user", "message": "I live in {{city}}"}],
}


@pytest.fixture(autouse=True)
def catalog(db):
    make_catalog()


def test_variables_come_from_prompt_system_message_and_chain_in_order():
    assert template_variables(FIELDS) == ["dish", "city", "role"]


def test_filling_replaces_every_variable_and_leaves_the_source_alone():
    filled = template_fill(FIELDS, {"dish": "pho", "city": "Hanoi", "role": "chef"})

    assert filled["user_prompt"] == "Best pho in Hanoi?"
    assert filled["system_message"] == "Answer as a chef."
    assert filled["message_chain"][0]["message"] == "I live in Hanoi"
    assert FIELDS["user_prompt"] == "Best {{dish}} in {{city}}?"


def test_every_edit_is_a_new_version_and_old_ones_stay(member_user):
    template = template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)

    v2 = template_edit(
        template=template, fields={**FIELDS, "temperature": 0.2}, user=member_user, note="cooler"
    )

    assert [v.number for v in template.versions.all()] == [2, 1]
    assert v2.note == "cooler"
    assert "temperature" not in template.versions.get(number=1).fields
    diff = version_diff(template.versions.get(number=1), v2)
    assert ("add", "temperature: 0.2") in diff


def test_names_are_unique_case_insensitively(member_user):
    template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)

    with pytest.raises(TemplateError):
        template_create(name="food", provider="chat_gpt", fields=FIELDS, user=member_user)


def test_duplicate_starts_from_the_current_version(member_user):
    template = template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)
    template_edit(template=template, fields={**FIELDS, "tag": "v2"}, user=member_user)

    copy = template_duplicate(template=template, user=member_user)

    assert copy.name == "Food (copy)"
    assert copy.versions.get().fields["tag"] == "v2"


def test_an_archived_template_keeps_its_history_but_takes_no_edits(member_user):
    template = template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)

    template_archive(template=template, user=member_user)

    assert template.versions.count() == 1
    with pytest.raises(TemplateError):
        template_edit(template=template, fields=FIELDS, user=member_user)


# --- pages --------------------------------------------------------------------------------------------


def test_saving_the_builder_form_as_a_template_keeps_variables_unfilled(member_client, credential):
    data = form_data("chat_gpt", credential, user_prompt="Best {{dish}}?", template_name="Dishes")

    response = member_client.post(reverse("template_save"), {**data, "save_as": "new"})

    template = PromptTemplate.objects.get()
    assert response["Location"] == reverse("template_detail", kwargs={"template_id": template.pk})
    assert template.versions.get().fields == {"user_prompt": "Best {{dish}}?", "model_name": "gpt-4.1"}


def test_saving_as_a_version_records_the_note(member_client, member_user, credential):
    template = template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)
    version = template.versions.get()
    data = form_data("chat_gpt", credential, user_prompt="Best {{dish}} now?", template_version=version.pk)

    member_client.post(reverse("template_save"), {**data, "save_as": "version", "template_note": "now"})

    assert template.versions.first().number == 2
    assert template.versions.first().note == "now"


def test_running_a_template_prefills_the_builder_and_asks_for_the_variables(
    member_client, member_user, credential
):
    template = template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)

    html = member_client.get(reverse("builder") + f"?template={template.pk}").content.decode()

    assert "Best {{dish}} in {{city}}?</textarea>" in html
    assert 'name="var_dish"' in html and 'name="var_role"' in html
    assert "From template" in html


def test_a_task_records_the_template_version_and_is_sent_filled(member_client, member_user, credential):
    from tasks.clients import StatusClass, TaskOutcome

    template = template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)
    version = template.versions.get()
    data = form_data(
        "chat_gpt", credential, user_prompt=FIELDS["user_prompt"], system_message=FIELDS["system_message"],
        template_version=version.pk, var_dish="pho", var_city="Hanoi", var_role="chef",
    )  # fmt: skip
    outcome = TaskOutcome(
        id="up-1", status_code=20100, status_message="Task Created.", status_class=StatusClass.CREATED,
        cost=Decimal("0.0102"), data={}, result=None, raw={},
    )  # fmt: skip
    with mock.patch("tasks.services.LLMResponsesClient") as client_class:
        client_class.for_credential.return_value.task_post.return_value = [outcome]
        member_client.post(reverse("builder"), data)

    task = Task.objects.get()
    assert task.template_version == version
    assert task.request_body["user_prompt"] == "Best pho in Hanoi?"
    assert task.request_body["system_message"] == "Answer as a chef."


def test_a_missing_variable_blocks_the_submit(member_client, credential):
    data = form_data("chat_gpt", credential, user_prompt="Best {{dish}}?")

    response = member_client.post(reverse("builder"), data)

    assert response.status_code == 422
    assert "Fill in {{dish}}." in response.content.decode()


def test_template_pages_list_detail_old_version_with_diff(member_client, member_user):
    template = template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)
    v1 = template.versions.get()
    template_edit(template=template, fields={**FIELDS, "tag": "new"}, user=member_user, note="tagged")

    assert "Food" in member_client.get(reverse("template_list")).content.decode()
    html = member_client.get(reverse("template_version", args=[template.pk, v1.pk])).content.decode()
    assert "Compared with the current version (v2)" in html
    assert "tag: &quot;new&quot;" in html
    fragment = member_client.get(
        reverse("template_version", args=[template.pk, v1.pk]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert fragment.lstrip().startswith('<section id="version"')


def test_duplicate_and_archive_pages(member_client, member_user):
    template = template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)

    member_client.post(reverse("template_duplicate", args=[template.pk]))
    member_client.post(reverse("template_archive", args=[template.pk]), {"archive": "1"})

    assert PromptTemplate.objects.filter(name="Food (copy)").exists()
    assert "Food (copy)" in member_client.get(reverse("template_list")).content.decode()
    assert ">Food</a>" in member_client.get(reverse("template_list") + "?archived=1").content.decode()


def test_template_pages_need_the_permission(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("nobody", password="x"))

    assert client.get(reverse("template_list")).status_code == 403
