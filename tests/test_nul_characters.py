"""A NUL character (U+0000) in any path, query parameter or posted field is refused with a 400 and
changes nothing, on SQLite and PostgreSQL alike (PostgreSQL cannot compare a text column with one)."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from tasks.builder.fields import ChainField
from tasks.builder.forms import TaskRequestForm, catalog_for
from tasks.history.forms import TaskEditForm
from tasks.models import PromptTemplate, Task, TaskEvent
from tasks.prompt_templates.services import template_create
from tasks.upstream.providers import provider_rules
from tests.factories import form_data, make_catalog, make_task

pytestmark = pytest.mark.django_db

NUL = "\x00"


@pytest.fixture(autouse=True)
def catalog(db):
    make_catalog()


@pytest.mark.parametrize(
    "url",
    [
        "/tags/?q=%00",
        "/tags/?q=a%00b&sort=tag",
        "/tags/a%00b/",
        "/tags/t/?prompt=%00",
        "/tasks/?q=%00",
        "/tasks/?tag=%00",
        "/tasks/?%00=1",
        "/tasks/export.csv?q=%00",
        "/tasks/export.json?tag=a%00",
        "/new/?user_prompt=%00",
        "/new/?chain-0-message=%00",
        "/spend/?tag=%00",
        "/admin/tasks/task/?q=%00",
    ],
)
def test_a_nul_in_a_path_or_query_is_a_400(admin_client, url):
    make_task(tag="t")

    response = admin_client.get(url)

    assert response.status_code == 400
    assert "NUL" in response.content.decode()


def test_a_nul_in_a_chain_message_is_refused_and_nothing_is_sent(member_client, credential):
    data = form_data("chat_gpt", credential, **{"chain-0-role": "user", "chain-0-message": f"a{NUL}b"})

    for name in ("builder:new", "builder:validate"):
        assert member_client.post(reverse(name), data).status_code == 400
    assert not Task.objects.exists()


def test_a_nul_in_a_form_key_is_refused(member_client, credential):
    data = {**form_data("chat_gpt", credential), f"chain-0-mess{NUL}age": "x"}

    assert member_client.post(reverse("builder:new"), data).status_code == 400
    assert not Task.objects.exists()


def test_a_nul_in_a_template_name_or_note_is_refused(member_client, credential):
    data = form_data("chat_gpt", credential, user_prompt="Best {{dish}}?")

    named = member_client.post(
        reverse("prompt_templates:save"), {**data, "save_as": "new", "template_name": f"a{NUL}"}
    )
    noted = member_client.post(
        reverse("prompt_templates:save"),
        {**data, "save_as": "new", "template_name": "ok", "template_note": NUL},
    )

    assert (named.status_code, noted.status_code) == (400, 400)
    assert not PromptTemplate.objects.exists()


def test_a_nul_in_a_template_rename_is_refused(member_client, member_user):
    template = template_create(
        name="Food", provider="chat_gpt", fields={"user_prompt": "x"}, user=member_user
    )

    response = member_client.post(
        reverse("prompt_templates:rename", args=[template.pk]), {"name": f"Fo{NUL}od", "description": ""}
    )

    assert response.status_code == 400
    template.refresh_from_db()
    assert template.name == "Food"


def test_a_nul_in_a_note_or_label_is_refused(member_client):
    task = make_task()

    for data in ({"labels": "", "note": f"a{NUL}b"}, {"labels": f"x{NUL}", "note": ""}):
        assert member_client.post(reverse("history:task_edit", args=[task.pk]), data).status_code == 400
    assert not TaskEvent.objects.filter(task=task, kind=TaskEvent.Kind.EDITED).exists()


def test_a_nul_in_batch_rows_is_refused(member_client, member_user, credential):
    template = template_create(
        name="Food", provider="chat_gpt", fields={"user_prompt": "Best {{dish}}?"}, user=member_user
    )
    data = {
        "credential": credential.pk,
        "models": "gpt-4.1",
        "rows_text": f"dish\npiz{NUL}za\n",
        "idempotency_key": "k",
        "confirm": "1",
    }

    assert (
        member_client.post(reverse("prompt_templates:batch_new", args=[template.pk]), data).status_code == 400
    )
    assert not Task.objects.exists()


def test_a_nul_in_the_login_form_is_refused(client):
    response = client.post(reverse("login"), {"username": f"a{NUL}", "password": "x"})

    assert response.status_code == 400


# --- where a view reads a form the guard has not seen (e.g. one that sets its own upload handlers),
# the fields refuse a NUL themselves and keep the rest of the input


def test_forms_refuse_a_nul_at_the_field(credential):
    rules = provider_rules("chat_gpt")
    data = form_data(
        "chat_gpt",
        credential,
        user_prompt=f"a{NUL}",
        **{"chain-0-role": "user", "chain-0-message": NUL + "x"},
    )
    form = TaskRequestForm(data, rules=rules, catalog=catalog_for("chat_gpt"))

    assert not form.is_valid()
    assert "Null characters are not allowed." in form.errors["user_prompt"]
    assert form.errors["message_chain"]
    assert not TaskEditForm({"note": NUL, "labels": ""}).is_valid()


def test_the_chain_field_refuses_a_nul_in_a_message():
    field = ChainField(max_turns=10)

    with pytest.raises(ValidationError, match="Null characters"):
        field.clean([{"role": "user", "message": f"a{NUL}"}])
