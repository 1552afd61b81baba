"""The web process killed (SIGKILL, a real process) at each step of a builder submit, then the person
submits the same request again from a new page (Back or a reload: a new idempotency key). Every POST is
counted at the stand-in (over real HTTP, live_server): the request reaches it once, whatever the step.

Then the same page's Submit pressed again (the same key) with a team budget that has room for the task
once: the task is sent or shown, never refused as over the budget by its own first press.

Steps: before anything is written (the budgets' reservation); after the task's commit, as the worker is
woken; after the commit, as the view answers with the redirect the person never sees.
"""

import pytest
from django.urls import reverse

from sandbox.models import SandboxRequest
from tasks.models import Budget, Task
from tasks.upstream.providers import queued_charge_per_task
from tests.factories import form_data, make_catalog
from tests.submission.killing import run_killed_at
from tests.submission.test_kills import LEASE, finish, stand_in, worker  # noqa: F401 - stand_in is a fixture

pytestmark = pytest.mark.django_db(transaction=True)


def task_posts() -> int:
    return SandboxRequest.objects.filter(method="POST", function="task_post").count()


STEPS = [
    ("tasks.submission.sending:budgets_reserve", False),  # nothing written
    ("tasks.submission.sending:send_chunks_soon", True),  # the task committed, no worker woken
    ("tasks.builder.views:redirect", True),  # committed, the answer never sent
]


def _submit_killed_at(at: str, data: dict, user) -> None:
    code = (
        "from django.test import Client; from django.contrib.auth import get_user_model; "
        "client = Client(); "
        f"client.force_login(get_user_model().objects.get(pk={user.pk})); "
        f"client.post('/new/', {data!r})"
    )
    run_killed_at(at, code)


def _reached_the_upstream_once() -> None:
    code, output = finish(worker("--wait", str(LEASE)))
    assert code == 0, output
    assert Task.objects.count() == 1 and task_posts() == 1
    assert Task.objects.get().status == Task.Status.SUBMITTED


@pytest.mark.parametrize(("at", "written"), STEPS)
def test_a_submit_killed_at_each_step_then_sent_again_from_a_new_page_reaches_the_upstream_once(
    stand_in,  # noqa: F811
    member_user,
    client,
    at,
    written,
):
    make_catalog()
    data = form_data("chat_gpt", stand_in, user_prompt="Killed mid-submit?", idempotency_key="first-page")
    _submit_killed_at(at, data, member_user)
    assert Task.objects.count() == (1 if written else 0) and task_posts() == 0

    client.force_login(member_user)
    again = client.post(reverse("builder:new"), {**data, "idempotency_key": "new-page"})  # Back, reload

    if written:  # the builder names the task already written and sends nothing
        assert again.status_code == 422 and "You sent this same request" in again.content.decode()
    else:
        assert again.status_code == 302
    _reached_the_upstream_once()


@pytest.mark.parametrize(("at", "written"), [*STEPS, ("tasks.submission.sending:insert_rows", False)])
def test_a_submit_killed_at_each_step_with_room_for_it_once_then_pressed_again_reaches_the_upstream_once(
    stand_in,  # noqa: F811
    member_user,
    client,
    at,
    written,
):
    make_catalog()
    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=queued_charge_per_task())  # the task, once
    data = form_data("chat_gpt", stand_in, user_prompt="Killed mid-submit?", idempotency_key="page")
    _submit_killed_at(at, data, member_user)
    assert Task.objects.count() == (1 if written else 0) and task_posts() == 0

    client.force_login(member_user)
    again = client.post(reverse("builder:new"), data)  # the same page's Submit, pressed again

    assert "exceeded" not in again.content.decode()
    assert again.status_code == 302
    assert again.url == reverse("history:task_detail", args=[Task.objects.get().pk])
    _reached_the_upstream_once()
