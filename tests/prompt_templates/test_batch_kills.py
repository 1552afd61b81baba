"""The web process killed (SIGKILL, a real process) at each step of a batch's confirmation, then the person
presses “Submit” again on the same page (the same idempotency key, the same checked plan). Every POST is
counted at the stand-in (over real HTTP, live_server): the batch reaches it once, whatever the step.

Then the same, except that the person submits the same rows from a new page (Back, a reload: a new key):
the page names the batch already written and sends nothing.

The same with the CSV file itself posted by Submit (the page checked it at once, the file still chosen).

Then the same with a team budget that has room for the batch once: pressed again, the batch is sent or
shown, never refused as over the budget by the charge of its own first press.

Steps: before anything is written (the budgets' reservation); after the budgets' reservation, as its tasks
are about to be written; after the batch's commit, as the worker is woken; after the commit, as the view
answers with the redirect the person never sees.
"""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from sandbox.models import SandboxRequest
from tasks.models import Batch, Budget, Task
from tasks.prompt_templates.services import template_create
from tasks.upstream.providers import queued_charge_per_task
from tests.factories import make_catalog
from tests.submission.killing import run_killed_at
from tests.submission.test_kills import LEASE, finish, stand_in, worker  # noqa: F401 - stand_in is a fixture

pytestmark = pytest.mark.django_db(transaction=True)


def task_posts() -> int:
    return SandboxRequest.objects.filter(method="POST", function="task_post").count()


STEPS = [
    ("tasks.prompt_templates.batches:budgets_reserve", False),  # nothing written
    ("tasks.submission.sending:send_chunks_soon", True),  # the batch committed, no worker woken
    ("tasks.prompt_templates.views:redirect", True),  # committed, the answer never sent
]


def confirmation_killed_at(
    at, *, client, credential, user, models="gpt-4.1", tasks=3, prelude=""
) -> tuple[str, dict]:
    """A checked batch of `tasks` tasks (3 rows × `models`) whose confirmation (in a real process, `prelude`
    run first) is killed at `at`: its URL and the confirmation's data (the first page's key and checked
    plan)."""
    make_catalog()
    template = template_create(
        name="Food", provider="chat_gpt", fields={"user_prompt": "Best {{dish}}?"}, user=user
    )
    url = reverse("prompt_templates:batch_new", args=[template.pk])
    data = {
        "credential": str(credential.pk),
        "models": models,
        "rows_text": "dish\npho\nramen\nsoup\n",
        "idempotency_key": "first-page",
    }
    client.force_login(user)
    checked = client.post(url, {**data, "confirm": "0"}).content.decode()
    assert f"Submit {tasks} tasks" in checked
    data |= {"planned": re.search(r'name="planned" value="([^"]*)"', checked).group(1), "confirm": "1"}
    code = prelude + (
        "from django.test import Client; from django.contrib.auth import get_user_model; "
        "client = Client(); "
        f"client.force_login(get_user_model().objects.get(pk={user.pk})); "
        f"client.post({url!r}, {data!r})"
    )
    run_killed_at(at, code)
    return url, data


def _reached_the_upstream_once() -> None:
    code, output = finish(worker("--wait", str(LEASE)))
    assert code == 0, output
    assert Batch.objects.count() == 1 and Task.objects.count() == 3
    assert task_posts() == 1  # 3 tasks, one upstream call
    assert set(Task.objects.values_list("status", flat=True)) == {Task.Status.SUBMITTED}


@pytest.mark.parametrize(("at", "written"), STEPS)
def test_a_batch_confirmation_killed_at_each_step_then_pressed_again_reaches_the_upstream_once(
    stand_in,  # noqa: F811
    member_user,
    client,
    at,
    written,
):
    url, data = confirmation_killed_at(at, client=client, credential=stand_in, user=member_user)
    assert Task.objects.count() == (3 if written else 0) and task_posts() == 0

    again = client.post(url, data)  # the same page's Submit, pressed again

    assert again.status_code == 302
    _reached_the_upstream_once()


@pytest.mark.parametrize(("at", "written"), STEPS)
def test_a_batch_confirmation_killed_at_each_step_then_sent_from_a_new_page_reaches_the_upstream_once(
    stand_in,  # noqa: F811
    member_user,
    client,
    at,
    written,
):
    url, data = confirmation_killed_at(at, client=client, credential=stand_in, user=member_user)
    assert Task.objects.count() == (3 if written else 0) and task_posts() == 0

    again = client.post(url, {**data, "idempotency_key": "new-page"})  # Back or a reload, the rows again

    if written:  # the page names the batch already written and sends nothing
        assert again.status_code == 422 and "You sent this same batch" in again.content.decode()
    else:
        assert again.status_code == 302
    _reached_the_upstream_once()


@pytest.mark.parametrize(
    ("at", "written"),
    [*STEPS, ("tasks.submission.sending:submit_task_ids", False)],  # reserved, its tasks not written yet
)
def test_a_batch_killed_at_each_step_with_room_for_it_once_then_pressed_again_reaches_the_upstream_once(
    stand_in,  # noqa: F811
    member_user,
    client,
    at,
    written,
):
    Budget.objects.create(
        scope=Budget.Scope.TEAM, monthly_limit=3 * queued_charge_per_task()
    )  # the batch, once
    url, data = confirmation_killed_at(at, client=client, credential=stand_in, user=member_user)
    assert Task.objects.count() == (3 if written else 0) and task_posts() == 0

    again = client.post(url, data)  # the same page's Submit, pressed again

    assert "exceeded" not in again.content.decode()
    assert again.status_code == 302
    assert again.url == reverse("prompt_templates:batch_detail", args=[Batch.objects.get().pk])
    _reached_the_upstream_once()


ROWS_FILE = b"Dish\r\npho\r\nramen\r\nsoup\r\n"


@pytest.mark.parametrize(("at", "written"), STEPS)
def test_a_confirmation_with_its_csv_file_killed_at_each_step_then_pressed_again_reaches_the_upstream_once(
    stand_in,  # noqa: F811
    member_user,
    client,
    at,
    written,
):
    """The page checks a chosen file at once (htmx), and its Submit then posts the file itself, the rows
    field holding only the header: killed at each step, then pressed again with the file still chosen."""
    make_catalog()
    template = template_create(
        name="Food", provider="chat_gpt", fields={"user_prompt": "Best {{dish}}?"}, user=member_user
    )
    url = reverse("prompt_templates:batch_new", args=[template.pk])
    data = {
        "credential": str(stand_in.pk),
        "models": "gpt-4.1",
        "rows_text": "dish\n",
        "idempotency_key": "page",
    }
    client.force_login(member_user)
    checked = client.post(
        url, {**data, "rows_file": SimpleUploadedFile("rows.csv", ROWS_FILE)}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "Submit 3 tasks" in checked
    data |= {"planned": re.search(r'name="planned" value="([^"]*)"', checked).group(1), "confirm": "1"}
    code = (
        "from django.core.files.uploadedfile import SimpleUploadedFile; from django.test import Client; "
        "from django.contrib.auth import get_user_model; client = Client(); "
        f"client.force_login(get_user_model().objects.get(pk={member_user.pk})); "
        f"client.post({url!r}, {{**{data!r}, 'rows_file': SimpleUploadedFile('rows.csv', {ROWS_FILE!r})}})"
    )
    run_killed_at(at, code)
    assert Task.objects.count() == (3 if written else 0) and task_posts() == 0

    again = client.post(url, {**data, "rows_file": SimpleUploadedFile("rows.csv", ROWS_FILE)})

    assert again.status_code == 302
    _reached_the_upstream_once()
