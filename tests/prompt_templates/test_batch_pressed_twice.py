"""Submit pressed twice without JavaScript (a double click, the browser's resend): the same form, the same
key, posted again while the first press is still being handled, with a budget that has room for one
batch. The second press shows what the first shows (the batch's page) and sends nothing: never "budget
exceeded, nothing was sent" about a batch that was sent. A new batch over the budget is still refused."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from sandbox import stats
from tasks.models import Batch, Budget, Task
from tasks.prompt_templates.services import template_create
from tasks.submission import sending
from tasks.upstream.providers import queued_charge_per_task
from tests.concurrency import AnotherTransactionFirst
from tests.factories import make_catalog
from tests.submission.sending import send_planned

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = "dish,city\npho,Hanoi\nramen,Tokyo\n"


@pytest.fixture
def page(member_user, live_credential):
    """The batch page of a template, checked (2 tasks), and a budget with room for that batch once: its
    URL and the confirmation's data."""
    make_catalog()
    template = template_create(
        name="Food",
        provider="chat_gpt",
        fields={"user_prompt": "Best {{dish}} in {{city}}?"},
        user=member_user,
    )
    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=2 * queued_charge_per_task())
    url = reverse("prompt_templates:batch_new", args=[template.pk])
    data = {
        "credential": live_credential.pk,
        "models": ["gpt-4.1"],
        "rows_text": ROWS,
        "idempotency_key": "k",
    }
    client = Client()
    client.force_login(member_user)
    checked = client.post(url, {**data, "confirm": "0"}).content.decode()
    assert "Submit 2 tasks" in checked
    data |= {"planned": re.search(r'name="planned" value="([^"]*)"', checked).group(1), "confirm": "1"}
    return url, data


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _pressed(user, url, data):
    return _client(user).post(url, data)


def test_submit_pressed_again_while_the_first_press_is_sending_shows_the_batch_not_a_budget_error(
    member_user, page, monkeypatch
):
    url, data = page
    stats.clear()
    # The second press arrives as the first is about to write its tasks.
    browser = _client(member_user)  # logged in before: the second press writes nothing before its submit
    second = AnotherTransactionFirst(sending.submit_task_ids, lambda: browser.post(url, data))
    monkeypatch.setattr(sending, "submit_task_ids", second)

    first = _pressed(member_user, url, data)
    again = second.join()

    batch = Batch.objects.get()
    assert first.status_code == 302 and first.url == reverse("prompt_templates:batch_detail", args=[batch.pk])
    assert not isinstance(again, Exception), again
    assert "exceeded" not in again.content.decode()
    assert again.status_code == 302 and again.url == first.url  # the batch's page, as the first press
    send_planned()
    assert Task.objects.count() == 2
    assert stats.request_count(function="task_post", method="POST") == 1
    assert set(Task.objects.values_list("status", flat=True)) == {Task.Status.SUBMITTED}


def test_submit_pressed_again_after_the_first_press_shows_the_batch(member_user, page):
    url, data = page
    stats.clear()

    first = _pressed(member_user, url, data)
    again = _pressed(member_user, url, data)

    assert first.status_code == again.status_code == 302 and again.url == first.url
    send_planned()
    assert Batch.objects.count() == 1 and Task.objects.count() == 2
    assert stats.request_count(function="task_post", method="POST") == 1


def test_a_new_batch_over_the_budget_is_still_refused_with_nothing_sent(member_user, page):
    url, data = page
    assert _pressed(member_user, url, data).status_code == 302
    send_planned()
    stats.clear()

    # A new page (a new key), other rows: a batch of its own, and the budget has no room left for it.
    other = {**data, "idempotency_key": "new-page", "rows_text": "dish,city\nsoup,Lima\nrice,Seoul\n"}
    checked = _pressed(member_user, url, {**other, "confirm": "0"}).content.decode()
    other["planned"] = re.search(r'name="planned" value="([^"]*)"', checked).group(1)
    refused = _pressed(member_user, url, other)

    html = refused.content.decode()
    assert (
        refused.status_code == 200 and "Team budget would be exceeded" in html and "Nothing was sent" in html
    )
    send_planned()
    assert Batch.objects.count() == 1 and Task.objects.count() == 2
    assert stats.request_count(function="task_post", method="POST") == 0
