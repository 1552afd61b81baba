"""Prompt templates: versions on every edit, variables, diff, rename, duplicate, archive, and their pages."""

from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from tasks.models import PromptTemplate, Task
from tasks.prompt_templates.services import (
    TemplateError,
    TemplateNameError,
    template_archive,
    template_create,
    template_duplicate,
    template_edit,
    template_fill,
    template_rename,
    template_variables,
    version_diff,
)
from tests.factories import form_data, make_catalog, make_task

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


def test_renaming_changes_name_and_description_and_adds_no_version(member_user):
    template = template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)

    renamed = template_rename(
        template=template, name="  Dishes  ", description=" Where to eat. ", user=member_user
    )

    template.refresh_from_db()
    assert (renamed.name, template.name) == ("Dishes", "Dishes")
    assert template.description == "Where to eat."
    assert [v.number for v in template.versions.all()] == [1]


@pytest.mark.parametrize("name", ["", "   ", "food", "FOOD", "x" * 151])
def test_a_rename_meets_the_rules_of_a_new_name(member_user, name):
    template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)
    drinks = template_create(name="Drinks", provider="chat_gpt", fields=FIELDS, user=member_user)

    with pytest.raises(TemplateNameError):
        template_rename(template=drinks, name=name, description="", user=member_user)

    drinks.refresh_from_db()
    assert drinks.name == "Drinks"


def test_a_template_may_change_the_case_of_its_own_name(member_user):
    template = template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)

    assert template_rename(template=template, name="FOOD", description="", user=member_user).name == "FOOD"


def test_a_name_taken_between_the_check_and_the_save_is_refused_not_a_crash(member_user):
    template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)
    drinks = template_create(name="Drinks", provider="chat_gpt", fields=FIELDS, user=member_user)

    unchecked = mock.patch("tasks.prompt_templates.services._check_name", side_effect=lambda name, **_: name)
    with unchecked, pytest.raises(TemplateNameError, match="already exists"):
        template_rename(template=drinks, name="Food", description="", user=member_user)

    assert PromptTemplate.objects.filter(name="Drinks").exists()


def test_an_archived_template_cannot_be_renamed(member_user):
    template = template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)
    template_archive(template=template, user=member_user)

    with pytest.raises(TemplateError, match="archived"):
        template_rename(template=template, name="Dishes", description="", user=member_user)


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

    response = member_client.post(reverse("prompt_templates:save"), {**data, "save_as": "new"})

    template = PromptTemplate.objects.get()
    assert response["Location"] == reverse("prompt_templates:detail", kwargs={"template_id": template.pk})
    assert template.versions.get().fields == {"user_prompt": "Best {{dish}}?", "model_name": "gpt-4.1"}


def test_saving_as_a_version_records_the_note(member_client, member_user, credential):
    template = template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)
    version = template.versions.get()
    data = form_data("chat_gpt", credential, user_prompt="Best {{dish}} now?", template_version=version.pk)

    member_client.post(
        reverse("prompt_templates:save"), {**data, "save_as": "version", "template_note": "now"}
    )

    assert template.versions.first().number == 2
    assert template.versions.first().note == "now"


def test_running_a_template_prefills_the_builder_and_asks_for_the_variables(
    member_client, member_user, credential
):
    template = template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)

    html = member_client.get(reverse("builder:new") + f"?template={template.pk}").content.decode()

    assert "Best {{dish}} in {{city}}?</textarea>" in html
    assert 'name="var_dish"' in html and 'name="var_role"' in html
    assert "From template" in html


@pytest.mark.parametrize("key", ["template", "version"])
@pytest.mark.parametrize("value", ["99999999999999999999", "-99999999999999999999", "9" * 400, "abc"])
def test_a_template_or_version_id_that_cannot_exist_is_a_404(member_client, member_user, key, value):
    template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)

    response = member_client.get(reverse("builder:new"), {key: value})

    assert response.status_code == 404


def test_a_task_records_the_template_version_and_is_sent_filled(member_client, member_user, credential):
    from tasks.upstream.outcomes import StatusClass, TaskOutcome

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
    with mock.patch("tasks.upstream.clients.LLMResponsesClient") as client_class:
        client_class.for_credential.return_value.task_post.return_value = [outcome]
        member_client.post(reverse("builder:new"), data)

    task = Task.objects.get()
    assert task.template_version == version
    assert task.request_body["user_prompt"] == "Best pho in Hanoi?"
    assert task.request_body["system_message"] == "Answer as a chef."


def _task_of_a_row(member_user, credential):
    """A task of FIELDS' template with one row's values, as a batch row or a filled builder makes it."""
    template = template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)
    version = template.versions.get()
    task = make_task(credential=credential, user_prompt="Best pho in Hanoi?", template_version=version)
    task.request_body = template_fill(FIELDS, {"dish": "pho", "city": "Hanoi", "role": "chef"})
    task.save(update_fields=["request_body"])
    return template, task


def test_a_task_of_a_template_with_variables_opens_in_the_builder_without_save_as_a_version(
    member_client, member_user, credential
):
    template, task = _task_of_a_row(member_user, credential)

    html = member_client.get(reverse("builder:new") + f"?from_task={task.pk}").content.decode()

    assert "Best pho in Hanoi?</textarea>" in html
    assert "Save as a new version of" not in html
    assert "Save as new template" in html
    assert "this task has {{dish}}, {{city}}, {{role}} filled in with its own values" in html
    assert reverse("prompt_templates:detail", kwargs={"template_id": template.pk}) in html


def test_a_task_of_a_template_with_variables_is_not_saved_over_the_templates_variables(
    member_client, member_user, credential
):
    template, task = _task_of_a_row(member_user, credential)
    data = form_data(
        "chat_gpt", credential, user_prompt="Best pho in Hanoi?", system_message="Answer as a chef.",
        template_version=template.versions.get().pk, run_again_of=task.pk,
    )  # fmt: skip

    response = member_client.post(reverse("prompt_templates:save"), {**data, "save_as": "version"})

    assert response.status_code == 422
    assert "This task has {{dish}}, {{city}}, {{role}} filled in" in response.content.decode()
    assert template.versions.get().fields == FIELDS


def test_a_task_of_a_template_without_variables_can_still_be_saved_as_its_next_version(
    member_client, member_user, credential
):
    template = template_create(
        name="Plain",
        provider="chat_gpt",
        fields={"user_prompt": "Hi", "model_name": "gpt-4.1"},
        user=member_user,
    )
    task = make_task(
        credential=credential,
        user_prompt="Hi",
        model_name="gpt-4.1",
        template_version=template.versions.get(),
    )

    html = member_client.get(reverse("builder:new") + f"?from_task={task.pk}").content.decode()

    assert "Save as a new version of “Plain”" in html


def test_a_missing_variable_blocks_the_submit(member_client, credential):
    data = form_data("chat_gpt", credential, user_prompt="Best {{dish}}?")

    response = member_client.post(reverse("builder:new"), data)

    assert response.status_code == 422
    assert "Fill in {{dish}}." in response.content.decode()


def test_template_pages_list_detail_old_version_with_diff(member_client, member_user):
    template = template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)
    v1 = template.versions.get()
    template_edit(template=template, fields={**FIELDS, "tag": "new"}, user=member_user, note="tagged")

    assert "Food" in member_client.get(reverse("prompt_templates:list")).content.decode()
    html = member_client.get(reverse("prompt_templates:version", args=[template.pk, v1.pk])).content.decode()
    assert "Compared with the current version (v2)" in html
    assert "tag: &quot;new&quot;" in html
    fragment = member_client.get(
        reverse("prompt_templates:version", args=[template.pk, v1.pk]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert fragment.lstrip().startswith('<section id="version"')


def test_duplicate_and_archive_pages(member_client, member_user):
    template = template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)

    member_client.post(reverse("prompt_templates:duplicate", args=[template.pk]))
    member_client.post(reverse("prompt_templates:archive", args=[template.pk]), {"archive": "1"})

    assert PromptTemplate.objects.filter(name="Food (copy)").exists()
    assert "Food (copy)" in member_client.get(reverse("prompt_templates:list")).content.decode()
    assert ">Food</a>" in member_client.get(reverse("prompt_templates:list") + "?archived=1").content.decode()


def test_template_pages_need_the_permission(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("nobody", password="x"))

    assert client.get(reverse("prompt_templates:list")).status_code == 403


# --- renaming on the template's page --------------------------------------------------------------------

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_renaming_with_a_plain_post_redirects_to_the_page_showing_the_new_name(member_client, member_user):
    template = template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)
    page = reverse("prompt_templates:detail", args=[template.pk])

    response = member_client.post(
        reverse("prompt_templates:rename", args=[template.pk]),
        {"name": "Dishes", "description": "Where to eat."},
    )

    assert response.status_code == 302
    assert response["Location"] == page
    html = member_client.get(page).content.decode()
    assert "<h1>Dishes" in html and "Where to eat." in html
    listing = member_client.get(reverse("prompt_templates:list")).content.decode()
    assert ">Dishes</a>" in listing and ">Food</a>" not in listing
    assert template.versions.count() == 1


def test_renaming_with_htmx_redraws_the_details_in_place(member_client, member_user):
    template = template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)

    response = member_client.post(
        reverse("prompt_templates:rename", args=[template.pk]), {"name": "Dishes", "description": ""}, **HTMX
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "HX-Redirect" not in response
    assert html.startswith("<title>Dishes · ")
    assert '<div id="template-details">' in html and "<h1>Dishes" in html
    assert "Details saved." in html
    assert 'id="version"' not in html  # only the details block, not the page
    assert PromptTemplate.objects.get().name == "Dishes"


@pytest.mark.parametrize("name", ["", "   ", "x" * 151])
def test_a_bad_name_is_refused_beside_the_field_with_the_input_kept(member_client, member_user, name):
    template = template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)

    response = member_client.post(
        reverse("prompt_templates:rename", args=[template.pk]), {"name": name, "description": "Kept text"}
    )

    html = response.content.decode()
    assert response.status_code == 422
    assert '<ul class="errorlist" id="id_name_error">' in html
    assert "Kept text</textarea>" in html
    assert '<details class="edit-details" open>' in html
    assert PromptTemplate.objects.get().name == "Food"


def test_a_name_another_template_has_is_refused_beside_the_field(member_client, member_user):
    template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)
    drinks = template_create(name="Drinks", provider="chat_gpt", fields=FIELDS, user=member_user)
    url = reverse("prompt_templates:rename", args=[drinks.pk])

    page = member_client.post(url, {"name": "food", "description": ""})
    fragment = member_client.post(url, {"name": "food", "description": ""}, **HTMX)

    assert page.status_code == 422
    assert "A template named “food” already exists." in page.content.decode()
    assert 'value="food"' in page.content.decode()
    # htmx swaps only 2xx answers: the refused fragment comes with 200 and carries the error.
    assert fragment.status_code == 200
    assert "A template named “food” already exists." in fragment.content.decode()
    assert "Details saved." not in fragment.content.decode()
    assert PromptTemplate.objects.get(pk=drinks.pk).name == "Drinks"


def test_an_archived_template_offers_no_rename_and_refuses_one(member_client, member_user):
    template = template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)
    template_archive(template=template, user=member_user)

    html = member_client.get(reverse("prompt_templates:detail", args=[template.pk])).content.decode()
    response = member_client.post(reverse("prompt_templates:rename", args=[template.pk]), {"name": "Dishes"})

    assert "Edit details" not in html
    assert response.status_code == 422
    assert "This template is archived; restore it before editing." in response.content.decode()
    assert PromptTemplate.objects.get().name == "Food"


def test_renaming_needs_the_permission_to_change_templates(client, django_user_model, member_user):
    template = template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)
    reader = django_user_model.objects.create_user("reader", password="x")
    reader.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_prompttemplate", "add_prompttemplate"])
    )
    client.force_login(reader)

    html = client.get(reverse("prompt_templates:detail", args=[template.pk])).content.decode()
    response = client.post(reverse("prompt_templates:rename", args=[template.pk]), {"name": "Dishes"}, **HTMX)

    assert "Edit details" not in html
    assert response.status_code == 403
    assert PromptTemplate.objects.get().name == "Food"


def test_duplicating_under_a_taken_name_says_so_instead_of_failing(member_client, member_user):
    template = template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)
    template_create(name="Drinks", provider="chat_gpt", fields=FIELDS, user=member_user)

    response = member_client.post(
        reverse("prompt_templates:duplicate", args=[template.pk]), {"name": "drinks"}, follow=True
    )

    assert response.status_code == 200
    assert "A template named “drinks” already exists." in response.content.decode()
    assert PromptTemplate.objects.count() == 2


def test_a_template_with_a_name_of_the_longest_length_can_be_duplicated(member_client, member_user):
    name = "Très long " + "x" * 140  # 150 characters: the longest name a template may have
    template = template_create(name=name, provider="chat_gpt", fields=FIELDS, user=member_user)

    response = member_client.post(reverse("prompt_templates:duplicate", args=[template.pk]), follow=True)

    copy = PromptTemplate.objects.exclude(pk=template.pk).get()
    assert copy.name.endswith(" (copy)") and len(copy.name) == 150
    assert response.redirect_chain[-1][0] == reverse("prompt_templates:detail", args=[copy.pk])
    assert "Duplicated as" in response.content.decode()
    again = template_duplicate(template=template, user=member_user)
    assert again.name.endswith(" (copy) 2") and len(again.name) == 150


@pytest.mark.parametrize("name", ["food", "   "])
def test_a_template_name_refused_on_save_shows_beside_the_name_field_not_as_a_failed_submission(
    member_client, member_user, credential, name
):
    template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member_user)
    data = form_data("chat_gpt", credential, user_prompt="Best {{dish}}?", template_name=name)

    response = member_client.post(reverse("prompt_templates:save"), {**data, "save_as": "new"})

    page = response.content.decode()
    assert response.status_code == 422
    assert PromptTemplate.objects.count() == 1
    assert "Not submitted." not in page  # nothing was being submitted: a template was being saved
    assert "Not saved." in page
    # The "Save as a template" panel is open, with the name typed, so the name can be changed at once.
    assert '<details class="save-template" open' in page
    assert f'name="template_name" maxlength="150" value="{name}"' in page
