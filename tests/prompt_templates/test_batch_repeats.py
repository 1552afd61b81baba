"""The same batch submitted again from a new page (Back after a submit, a reload, a second tab: a new
idempotency key, the same rows pasted again) is not sent until the person says so."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse

from tasks.models import Batch, Task
from tasks.prompt_templates.services import template_create
from tests.factories import make_catalog, make_member


@pytest.fixture
def template(member_user):
    make_catalog()
    fields = {"user_prompt": "Best {{dish}} in {{city}}?", "model_name": "gpt-4.1"}
    return template_create(name="Food", provider="chat_gpt", fields=fields, user=member_user)


ROWS = "dish,city\npho,Hanoi\nramen,Tokyo\n"


def submit(client, template, credential, *, key: str, name: str = "", rows: str = ROWS, **extra):
    """A page with idempotency key `key`: rows checked, then "Submit" pressed (or `extra`'s button)."""
    url = reverse("prompt_templates:batch_new", args=[template.pk])
    data = {"credential": credential.pk, "models": ["gpt-4.1"], "rows_text": rows, "idempotency_key": key}
    data["name"] = name
    checked = client.post(url, {**data, "confirm": "0"}).content.decode()
    planned = re.search(r'name="planned" value="([^"]*)"', checked).group(1)
    return client.post(url, {**data, "planned": planned, **(extra or {"confirm": "1"})})


def test_the_same_batch_from_a_new_page_asks_before_it_is_sent_again(member_client, template, credential):
    first = submit(member_client, template, credential, key="first-page", name="Dishes")
    assert first.status_code == 302
    earlier = Batch.objects.get()

    # Back (or a reload, a second tab): a new page, the same rows, another name.
    again = submit(member_client, template, credential, key="new-page", name="Dishes, again")

    html = again.content.decode()
    assert again.status_code == 422 and Batch.objects.count() == 1 and Task.objects.count() == 2
    time = earlier.created_at.astimezone().strftime("%H:%M")
    link = reverse("prompt_templates:batch_detail", args=[earlier.pk])
    assert (
        f'You sent this same batch at <time datetime="{earlier.created_at.isoformat()}">{time}</time>' in html
    )
    assert f'<a href="{link}">Dishes</a>, 2 tasks.' in html
    assert "Sending it again makes 2 more tasks, charged again." in html
    assert '<button type="submit" class="secondary" name="send_again" value="1"' in html
    assert ">Submit 2 tasks</button>" not in html  # only "Send it again" sends
    assert "pho,Hanoi\nramen,Tokyo" in html and 'value="Dishes, again"' in html  # the form kept

    anyway = submit(member_client, template, credential, key="new-page", name="Dishes, again", send_again="1")

    assert anyway.status_code == 302 and Batch.objects.count() == 2 and Task.objects.count() == 4
    second = Batch.objects.exclude(pk=earlier.pk).get()
    assert anyway.url == reverse("prompt_templates:batch_detail", args=[second.pk])
    assert second.name == "Dishes, again"
    # "Send it again" pressed twice (or its page resent): still that one second batch.
    twice = submit(member_client, template, credential, key="new-page", send_again="1")
    assert twice.url == anyway.url and Task.objects.count() == 4


def test_a_resent_confirmation_of_the_same_page_shows_its_batch_without_asking(
    member_client, template, credential
):
    first = submit(member_client, template, credential, key="the-page")

    resent = submit(member_client, template, credential, key="the-page")

    assert resent.status_code == 302 and resent.url == first.url
    assert Batch.objects.count() == 1 and Task.objects.count() == 2


@pytest.mark.parametrize(
    "case", ["other rows", "refused by the upstream", "over 10 minutes ago", "by another person"]
)
def test_a_batch_not_the_same_as_a_recent_one_of_the_persons_own_is_sent_without_asking(
    member_client, template, credential, django_user_model, case
):
    assert submit(member_client, template, credential, key="a").status_code == 302
    earlier = Batch.objects.get()
    rows = ROWS
    if case == "other rows":
        rows += "bun cha,Hanoi\n"
    elif case == "refused by the upstream":  # every task of it
        earlier.tasks.update(status=Task.Status.FAILED)
    elif case == "over 10 minutes ago":
        Batch.objects.filter(pk=earlier.pk).update(created_at=earlier.created_at - timedelta(minutes=11))
    else:
        member_client.force_login(make_member(django_user_model, "other-member"))

    response = submit(member_client, template, credential, key="b", rows=rows)

    assert response.status_code == 302 and Batch.objects.count() == 2
