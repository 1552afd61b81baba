"""The builder offers Queue (task_post) or Live where the model allows it, shows the live price and the live
endpoint, and a live submission is planned (sent by a worker, never in the request), then completes."""

import pytest
from django.urls import reverse

from sandbox import stats
from tasks.models import Task
from tests.builder.test_builder_views import live_member_client
from tests.factories import form_data, make_catalog
from tests.submission.sending import send_planned

HTMX = {"HTTP_HX_REQUEST": "true"}
__all__ = ["live_member_client"]  # the fixture


@pytest.fixture(autouse=True)
def catalog(db):
    make_catalog()


@pytest.mark.parametrize("provider", ["chat_gpt", "claude", "gemini"])
def test_the_builder_offers_queue_or_live(member_client, credential, provider):
    html = member_client.get(reverse("builder:new"), {"provider": provider}).content.decode()

    assert 'value="task_post"' in html and "Queue (task_post)" in html
    assert 'value="live"' in html and ">Live</label>" in html.replace(" Live</label>", ">Live</label>")


def test_perplexity_offers_live_only(member_client, credential):
    html = member_client.get(reverse("builder:new"), {"provider": "perplexity"}).content.decode()

    assert 'value="task_post"' not in html
    assert 'value="live"' in html and "checked" in html.split('value="live"')[1][:40]
    assert "/perplexity/llm_responses/live" in html


def test_choosing_live_shows_the_live_endpoint_and_price(member_client, credential):
    data = form_data("gemini", credential, mode="live", model_name="gemini-2.5-pro", max_output_tokens=1024)

    html = member_client.post(reverse("builder:validate"), data, **HTMX).content.decode()

    assert "/gemini/llm_responses/live" in html
    assert "$0.0106" in html  # $0.0006 + $0.01 reserved for the model
    assert "A live task costs $0.0006 plus what the model charged" in html
    assert "pingback_url" not in html.split('id="preview-json"')[1].split("</pre>")[0]


def test_a_model_that_cannot_be_queued_asks_for_live(member_client, credential):
    data = form_data(
        "gemini", credential, mode="task_post", model_name="gemini-2.5-pro", max_output_tokens=1024
    )

    response = member_client.post(reverse("builder:new"), data)

    assert response.status_code == 422
    assert "gemini-2.5-pro cannot be queued; send it Live." in response.content.decode()
    assert not Task.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("provider", "fields"),
    [
        ("chat_gpt", {"web_search": True}),
        ("claude", {"web_search": True}),
        ("gemini", {"model_name": "gemini-2.5-pro", "max_output_tokens": 1024, "web_search": True}),
        ("perplexity", {}),
    ],
)
def test_a_live_submission_is_planned_then_sent_by_a_worker_and_completes(
    live_member_client, live_credential, provider, fields
):
    stats.clear()
    data = form_data(provider, live_credential, mode="live", **fields)

    response = live_member_client.post(reverse("builder:new"), data)

    task = Task.objects.get()
    assert response.status_code == 302, response.content.decode()[:2000]
    assert task.mode == Task.Mode.LIVE and task.status == Task.Status.QUEUED
    assert stats.request_count(function="live", method="POST") == 0  # never inside the web request
    page = live_member_client.get(response["Location"]).content.decode()
    assert "Live" in page and "waiting for a worker" in page

    send_planned()

    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED
    assert stats.request_count(function="live", method="POST") == 1
    page = live_member_client.get(response["Location"]).content.decode()
    assert task.answer_text.splitlines()[0].lstrip("# ")[:20] in page
    assert "Citations" in page
