"""Line breaks are LF everywhere: browsers post a textarea's line breaks as CRLF, and a prompt is counted,
previewed and sent as the person sees it (each line break one character).

The posts here are real form encodings (multipart/form-data, as the test client sends by default, and
application/x-www-form-urlencoded, as htmx and a browser's plain form send), with CRLF in the values.
"""

from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tasks.models import PromptTemplate, Task
from tasks.prompt_templates.services import template_create
from tasks.upstream import clients
from tests.factories import form_data, make_catalog, make_task
from tests.submission.fake_upstream import FakeUpstream
from tests.submission.sending import send_planned

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
# 500 characters with 17 line breaks counted once each (517 if a CRLF counted twice).
PROMPT = "\n".join(["x" * 26] * 17 + ["y" * 41])
assert len(PROMPT) == 500 and PROMPT.count("\n") == 17


def crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


@pytest.fixture(autouse=True)
def catalog(db):
    make_catalog()


@pytest.fixture
def upstream(monkeypatch):
    fake = FakeUpstream()
    monkeypatch.setattr(clients, "LLMResponsesClient", fake)
    return fake


def post(client, url, data, encoding, **extra):
    if encoding == "urlencoded":
        body = urlencode(data, doseq=True)
        return client.post(url, body, content_type="application/x-www-form-urlencoded", **extra)
    return client.post(url, data, **extra)


ENCODINGS = ["multipart", "urlencoded"]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_500_character_prompt_with_crlf_line_breaks_passes_validation_and_submit_alike(
    member_client, credential, upstream, encoding
):
    data = form_data(
        "chat_gpt",
        credential,
        user_prompt=crlf(PROMPT),
        system_message=crlf("Be brief.\nUse lists."),
        **{"chain-0-role": "user", "chain-0-message": crlf("Earlier\r question")},
    )

    live = post(
        member_client, reverse("builder:validate"), {**data, "trigger_field": "user_prompt"}, encoding, **HTMX
    )
    submitted = post(member_client, reverse("builder:new"), data, encoding)

    assert live.context["form"].errors == {}
    assert submitted.status_code == 302
    send_planned()  # a worker sends what was planned
    sent = upstream.posted[0]
    assert sent["user_prompt"] == PROMPT
    assert sent["system_message"] == "Be brief.\nUse lists."
    assert sent["message_chain"] == [{"role": "user", "message": "Earlier\n question"}]
    assert "\r" not in str(Task.objects.get().request_body)
    # The preview is what was posted (the tag placeholder aside).
    previewed = dict(live.context["form"].body)
    assert {k: v for k, v in sent.items() if k != "tag"} == previewed


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_501_character_prompt_is_refused_however_its_line_breaks_are_sent(
    member_client, credential, upstream, encoding
):
    data = form_data("chat_gpt", credential, user_prompt=crlf(PROMPT + "z"))

    live = post(
        member_client, reverse("builder:validate"), {**data, "trigger_field": "user_prompt"}, encoding, **HTMX
    )
    submitted = post(member_client, reverse("builder:new"), data, encoding)

    assert "At most 500 characters (501)." in live.context["form"].errors["user_prompt"]
    assert submitted.status_code == 422
    assert "At most 500 characters (501)." in submitted.context["form"].errors["user_prompt"]
    assert "501 / 500" in submitted.content.decode()  # the page's counter agrees
    send_planned()  # a worker sends what was planned
    assert upstream.posted == []


def test_the_pages_counter_counts_a_crlf_once(member_client, credential):
    data = form_data("chat_gpt", credential, user_prompt=crlf(PROMPT), temperature="5")

    html = member_client.post(reverse("builder:new"), data).content.decode()

    assert "500 / 500" in html


def test_a_lone_cr_counts_as_one_line_break(member_client, credential, upstream):
    data = form_data("chat_gpt", credential, user_prompt=PROMPT.replace("\n", "\r"))

    assert member_client.post(reverse("builder:new"), data).status_code == 302
    send_planned()  # a worker sends what was planned
    assert upstream.posted[0]["user_prompt"] == PROMPT


def test_a_variable_value_with_crlf_is_filled_in_with_lf(member_client, credential, upstream):
    data = form_data("chat_gpt", credential, user_prompt="List:\n{{items}}", var_items=crlf("a\nb"))

    assert member_client.post(reverse("builder:new"), data).status_code == 302
    send_planned()  # a worker sends what was planned
    assert upstream.posted[0]["user_prompt"] == "List:\na\nb"


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_template_is_saved_with_lf_line_breaks(member_client, credential, encoding):
    data = form_data(
        "chat_gpt", credential, user_prompt=crlf("Best {{dish}}\nin town?"), template_name="Dishes"
    )

    response = post(
        member_client,
        reverse("prompt_templates:save"),
        {**data, "save_as": "new", "template_note": crlf("first\nversion")},
        encoding,
    )

    assert response.status_code == 302
    version = PromptTemplate.objects.get().versions.get()
    assert version.fields["user_prompt"] == "Best {{dish}}\nin town?"
    assert version.note == "first\nversion"


def test_a_template_description_is_saved_with_lf_line_breaks(member_client, member_user):
    template = template_create(
        name="Food", provider="chat_gpt", fields={"user_prompt": "x"}, user=member_user
    )

    member_client.post(
        reverse("prompt_templates:rename", args=[template.pk]),
        {"name": "Food", "description": "one\r\ntwo\rthree"},
    )

    template.refresh_from_db()
    assert template.description == "one\ntwo\nthree"


@pytest.fixture
def dish_template(member_user):
    return template_create(
        name="Food", provider="chat_gpt", fields={"user_prompt": "Best {{dish}}?"}, user=member_user
    )


def test_pasted_batch_rows_with_crlf_give_lf_values(member_client, credential, upstream, dish_template):
    data = {
        "credential": credential.pk,
        "models": ["gpt-4.1"],
        "rows_text": 'dish\r\n"deep\r\ndish pizza"\r\nsoup\r\n',
        "idempotency_key": "k",
        "confirm": "1",
    }

    response = post(
        member_client, reverse("prompt_templates:batch_new", args=[dish_template.pk]), data, "urlencoded"
    )

    assert response.status_code == 302
    send_planned()  # a worker sends what was planned
    assert sorted(body["user_prompt"] for body in upstream.posted) == ["Best deep\ndish pizza?", "Best soup?"]


@pytest.mark.parametrize("ending", ["\r\n", "\r"])
def test_an_uploaded_csv_with_crlf_or_cr_line_endings_gives_lf_values(
    member_client, credential, upstream, dish_template, ending
):
    text = ending.join(["dish", '"deep', 'dish pizza"', "soup", ""])
    data = {
        "credential": credential.pk,
        "models": ["gpt-4.1"],
        "rows_file": SimpleUploadedFile("rows.csv", text.encode(), content_type="text/csv"),
        "idempotency_key": "k",
        "confirm": "1",
    }

    response = member_client.post(reverse("prompt_templates:batch_new", args=[dish_template.pk]), data)

    assert response.status_code == 302, response.context["plan"].errors
    send_planned()  # a worker sends what was planned
    assert sorted(body["user_prompt"] for body in upstream.posted) == ["Best deep\ndish pizza?", "Best soup?"]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_note_is_saved_with_lf_line_breaks(member_client, encoding):
    task = make_task()

    post(
        member_client,
        reverse("history:task_edit", args=[task.pk]),
        {"labels": "", "note": "one\r\ntwo\rthree"},
        encoding,
    )

    task.refresh_from_db()
    assert task.note == "one\ntwo\nthree"
