"""The builder's Submit pressed twice without JavaScript (a double click, the browser's resend): the same
form, the same key, the second press arriving while the first is being written, with a budget that has
room for one task. The second press shows the task the first sent, never "budget exceeded, nothing was
sent"; a new task over the budget is still refused."""

import pytest
from django.test import Client
from django.urls import reverse

from sandbox import stats
from tasks.models import Budget, Task
from tasks.submission import sending
from tasks.upstream.providers import queued_charge_per_task
from tests.concurrency import AnotherTransactionFirst
from tests.factories import form_data, make_catalog
from tests.submission.sending import send_planned

pytestmark = pytest.mark.django_db(transaction=True)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _pressed(user, data):
    return _client(user).post(reverse("builder:new"), data)


def test_submit_pressed_again_while_the_first_press_is_written_shows_the_task_not_a_budget_error(
    member_user, live_credential, monkeypatch
):
    make_catalog()
    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=queued_charge_per_task())  # one task
    data = form_data("chat_gpt", live_credential, user_prompt="Pressed twice?", idempotency_key="page")
    stats.clear()
    # The second press looks its key up before the first has committed, then waits for the budgets' lock.
    browser = _client(member_user)  # logged in before: the second press writes nothing before its submit
    second = AnotherTransactionFirst(
        sending.budgets_reserve, lambda: browser.post(reverse("builder:new"), data)
    )
    monkeypatch.setattr(sending, "budgets_reserve", second)

    first = _pressed(member_user, data)
    again = second.join()

    task = Task.objects.get()
    assert first.status_code == 302 and first.url == reverse("history:task_detail", args=[task.pk])
    assert not isinstance(again, Exception), again
    assert "exceeded" not in again.content.decode()
    assert again.status_code == 302 and again.url == first.url  # the task's page, as the first press
    send_planned()
    assert stats.request_count(function="task_post", method="POST") == 1


def test_a_new_task_over_the_budget_is_still_refused_with_nothing_sent(member_user, live_credential):
    make_catalog()
    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=queued_charge_per_task())
    assert (
        _pressed(member_user, form_data("chat_gpt", live_credential, idempotency_key="a")).status_code == 302
    )
    send_planned()
    stats.clear()

    refused = _pressed(
        member_user, form_data("chat_gpt", live_credential, user_prompt="Other?", idempotency_key="b")
    )

    html = refused.content.decode()
    assert (
        refused.status_code == 422 and "Team budget would be exceeded" in html and "Nothing was sent" in html
    )
    send_planned()
    assert Task.objects.count() == 1 and stats.request_count(function="task_post", method="POST") == 0
