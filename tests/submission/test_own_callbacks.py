"""The product's own callback URLs: their token is never shown, and each task gets its own.

A task's pingback/postback URLs carry a token that lets whoever has it report that task's result. The
exact body goes to the upstream; every page, export and the admin show the token masked. "Run again"
and "Open in builder" never carry a task's URLs over, and a body that carries another task's URLs (by
hand, or from a template saved with them) gets the new task's own.
"""

import json
import uuid
from html import unescape

import pytest
from django.urls import reverse

from tasks.models import Task
from tasks.prompt_templates import batches
from tasks.prompt_templates.services import template_create
from tasks.submission import callbacks, sending
from tasks.submission.own_callbacks import MASK, callback_tokens_masked, callback_url_is_own
from tasks.upstream import clients
from tests.factories import form_data, make_catalog
from tests.submission.fake_upstream import FakeUpstream
from tests.submission.sending import send_planned

pytestmark = pytest.mark.django_db

BASE = "https://dash.example.com"
OLD = uuid.UUID(int=7)  # another task's id


@pytest.fixture(autouse=True)
def public_base_url(settings):
    settings.PUBLIC_BASE_URL = BASE
    make_catalog()


@pytest.fixture
def upstream(monkeypatch):
    fake = FakeUpstream()
    monkeypatch.setattr(clients, "LLMResponsesClient", fake)
    return fake


def _own_urls_are_for(task: Task) -> bool:
    return {k: task.request_body.get(k) for k in ("pingback_url", "postback_url")} == callbacks.callback_urls(
        task.pk
    )


@pytest.fixture
def sent_task(member_client, credential, upstream):
    """A task sent through the builder, finished, with the upstream's echo of the request in its result."""
    member_client.post(reverse("builder:new"), form_data("chat_gpt", credential, tag="team-a"))
    task = Task.objects.get()
    assert _own_urls_are_for(task)  # the exact body, as sent, carries the token
    Task.objects.filter(pk=task.pk).update(
        status=Task.Status.COMPLETED,
        answer_text="Paris.",
        result={"id": task.upstream_task_id, "status_code": 20000, "data": task.request_body, "result": []},
    )
    return task


def _pages(client, task: Task) -> dict[str, str]:
    def text(response):
        assert response.status_code == 200, response
        if response.streaming:
            return b"".join(response.streaming_content).decode()
        return response.content.decode()

    urls = {
        "task page": reverse("history:task_detail", args=[task.pk]),
        "live part": reverse("history:task_status", args=[task.pk]),
        "list": reverse("history:task_list"),
        "home": reverse("history:home"),
        "tag page": reverse("history:tag_detail", kwargs={"tag": task.tag}),
        "csv export": reverse("history:task_export", args=["csv"]),
        "json export": reverse("history:task_export", args=["json"]),
        "run again": reverse("builder:new") + f"?from_task={task.pk}",
    }
    return {name: text(client.get(url)) for name, url in urls.items()}


def test_no_page_or_export_a_member_can_reach_shows_a_tasks_callback_token(member_client, sent_task):
    token = callbacks.callback_token(sent_task.pk)

    pages = _pages(member_client, sent_task)

    for name, html in pages.items():
        assert token not in html, name
        assert token[:12] not in html, name
    task_page = unescape(pages["task page"])
    assert f"{BASE}/callbacks/{sent_task.pk}/{MASK}/postback/" in task_page  # request as sent
    assert task_page.count(f"/callbacks/{sent_task.pk}/{MASK}/pingback/") == 2  # and the upstream's echo
    sent_task.refresh_from_db()
    assert _own_urls_are_for(sent_task)  # what the upstream got is kept exactly


def test_the_admin_shows_the_request_with_the_token_masked(admin_client, sent_task):
    html = admin_client.get(reverse("admin:tasks_task_change", args=[sent_task.pk])).content.decode()

    assert callbacks.callback_token(sent_task.pk) not in html
    assert f"/callbacks/{sent_task.pk}/{MASK}/postback/" in unescape(html)


def test_a_template_saved_with_a_tasks_callback_urls_shows_their_token_masked(member_client, member_user):
    # Saved before the builder stopped carrying them over.
    fields = {"user_prompt": "Hi", "model_name": "gpt-4.1", **callbacks.callback_urls(OLD)}
    template = template_create(name="Old", provider="chat_gpt", fields=fields, user=member_user)
    template_create(name="Other", provider="chat_gpt", fields={"user_prompt": "x"}, user=member_user)

    html = member_client.get(reverse("prompt_templates:detail", args=[template.pk])).content.decode()

    assert callbacks.callback_token(OLD) not in html
    assert MASK in html


def test_masking_touches_only_the_token_of_a_callback_url():
    token = callbacks.callback_token(OLD)
    text = json.dumps({"postback_url": f"{BASE}/callbacks/{OLD}/{token}/postback/", "tag": token[:5]})

    masked = callback_tokens_masked(text)

    assert token not in masked
    assert f"{BASE}/callbacks/{OLD}/{MASK}/postback/" in masked
    assert callback_tokens_masked("https://mine.example/hook?x=1") == "https://mine.example/hook?x=1"


# --- each task gets its own callback URLs ---------------------------------------------------------------


def test_run_again_does_not_prefill_the_old_tasks_callback_urls(member_client, sent_task):
    html = member_client.get(reverse("builder:new") + f"?from_task={sent_task.pk}").content.decode()

    assert 'name="pingback_url"' in html
    assert f"/callbacks/{sent_task.pk}/" not in html  # neither in the inputs nor in the preview
    assert "&lt;task-id&gt;/&lt;token&gt;/postback/" in html  # the preview shows the new task's own


def test_run_again_sends_the_new_task_with_its_own_callback_urls(
    member_client, credential, sent_task, upstream
):
    # What "Run again" prefills, submitted as the page would post it.
    page = member_client.get(reverse("builder:new") + f"?from_task={sent_task.pk}")
    assert f'name="run_again_of" value="{sent_task.pk}"' in page.content.decode()
    data = {key: value for key, value in page.context["form"].data.items() if value not in ("", None)}

    response = member_client.post(
        reverse("builder:new"), {**data, "idempotency_key": "again", "run_again_of": str(sent_task.pk)}
    )

    assert response.status_code == 302
    new = Task.objects.exclude(pk=sent_task.pk).get()
    assert _own_urls_are_for(new)
    send_planned()  # a worker sends what was planned
    assert upstream.posted[-1]["postback_url"] == callbacks.callback_urls(new.pk)["postback_url"]


@pytest.mark.parametrize(
    "pasted",
    [
        lambda old: callbacks.callback_urls(old)["postback_url"],  # another task's, signed here
        lambda old: f"{BASE}/callbacks/{old}/{MASK}/postback/",  # copied from a task page
        lambda old: callbacks.callback_urls(old)["postback_url"].replace(BASE, "http://old-host:8000"),
    ],
    ids=["signed", "masked", "old host"],
)
def test_a_body_with_another_tasks_callback_url_gets_this_tasks_own(
    member_user, credential, upstream, pasted
):
    old = OLD
    body = {"user_prompt": "Hi", "model_name": "gpt-4.1", "postback_url": pasted(old)}

    (task,) = sending.submit_tasks(
        specs=[sending.TaskSpec(provider="chat_gpt", body=body)], credential=credential, user=member_user
    )

    assert _own_urls_are_for(task)
    send_planned()  # a worker sends what was planned
    assert upstream.posted[0]["postback_url"] == callbacks.callback_urls(task.pk)["postback_url"]


def test_a_persons_own_callback_urls_stay_as_typed(member_user, credential, upstream):
    body = {"user_prompt": "Hi", "model_name": "gpt-4.1", "pingback_url": "https://mine.example/ping?id=$id"}

    (task,) = sending.submit_tasks(
        specs=[sending.TaskSpec(provider="chat_gpt", body=body)], credential=credential, user=member_user
    )

    assert task.request_body["pingback_url"] == "https://mine.example/ping?id=$id"
    assert "postback_url" not in task.request_body
    send_planned()  # a worker sends what was planned
    assert upstream.posted[0]["pingback_url"] == "https://mine.example/ping?id=$id"


def test_a_batch_of_a_template_saved_with_a_tasks_callback_urls_gives_each_task_its_own(
    member_user, credential, upstream
):
    fields = {"user_prompt": "Best {{dish}}?", **callbacks.callback_urls(OLD)}
    template = template_create(name="Old", provider="chat_gpt", fields=fields, user=member_user)
    plan = batches.batch_plan(
        version=template.versions.get(),
        rows_text="dish\npizza\nsoup\n",
        models=["gpt-4.1"],
        credential=credential,
    )

    batch = batches.batch_submit(plan=plan, credential=credential, user=member_user, idempotency_key="b")

    tasks = list(batch.tasks.all())
    assert len(tasks) == 2
    assert all(_own_urls_are_for(task) for task in tasks)


def test_the_builder_drops_a_pasted_callback_url_of_the_product(member_client, credential):
    data = form_data("chat_gpt", credential, postback_url=callbacks.callback_urls(OLD)["postback_url"])

    response = member_client.post(reverse("builder:validate"), {**data, "trigger_field": "postback_url"})

    assert response.context["form"].body.get("postback_url") is None
    assert callback_url_is_own(data["postback_url"])
    assert not callback_url_is_own("https://mine.example/callbacks/x/y/postback/")
