"""What the history pages show of the new providers and of live tasks: Gemini's citations link the page
itself, the list filters on the mode, exports say how each task was sent."""

import pytest
from django.urls import reverse

from tasks.models import Task
from tests.factories import make_task

pytestmark = pytest.mark.django_db

GEMINI_CITATION = {
    "title": "Marathon shoes compared",
    "url": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/abc",
    "direct_url": "https://www.runnersworld.com/gear/marathon-shoes",
    "domain": "runnersworld.com",
    "start_index": None,
    "end_index": None,
    "text": "",
}


def test_a_gemini_citation_links_the_page_itself_and_offers_the_redirect(member_client):
    task = make_task(
        provider="gemini", model_name="gemini-2.5-pro", mode=Task.Mode.LIVE, answer_text="Shoes."
    )
    Task.objects.filter(pk=task.pk).update(citations=[GEMINI_CITATION])

    html = member_client.get(reverse("history:task_detail", args=[task.pk])).content.decode()

    assert (
        f'href="{GEMINI_CITATION["direct_url"]}" rel="noopener noreferrer nofollow" class="cite-title"'
        in html
    )
    assert f'href="{GEMINI_CITATION["url"]}" rel="noopener noreferrer nofollow" class="cite-redirect"' in html
    assert "runnersworld.com" in html
    assert "Gemini · Live" in html


def test_a_live_task_being_sent_says_it_is_running_live(member_client):
    task = make_task(
        provider="perplexity", model_name="sonar", mode=Task.Mode.LIVE, status=Task.Status.QUEUED
    )
    Task.objects.filter(pk=task.pk).update(status=Task.Status.SENDING)

    html = member_client.get(reverse("history:task_detail", args=[task.pk])).content.decode()

    assert "Running live: a worker has sent it and is waiting for the model" in html


def test_the_task_list_filters_on_provider_and_mode(member_client):
    make_task(provider="perplexity", model_name="sonar", mode=Task.Mode.LIVE, user_prompt="live sonar")
    make_task(provider="gemini", model_name="gemini-2.5-flash", user_prompt="queued gemini")
    make_task(provider="gemini", model_name="gemini-2.5-pro", mode=Task.Mode.LIVE, user_prompt="live gemini")

    live = member_client.get(reverse("history:task_list"), {"mode": "live"}).content.decode()
    gemini_live = member_client.get(reverse("history:task_list"), {"mode": "live", "provider": "gemini"})

    assert "live sonar" in live and "live gemini" in live and "queued gemini" not in live
    assert "live gemini" in gemini_live.content.decode()
    assert "live sonar" not in gemini_live.content.decode()
    assert '<option value="perplexity">Perplexity</option>' in live


def test_the_csv_export_says_provider_and_mode(member_client):
    make_task(provider="perplexity", model_name="sonar", mode=Task.Mode.LIVE)

    response = member_client.get(reverse("history:task_export", args=["csv"]), {"mode": "live"})
    text = b"".join(response.streaming_content).decode()

    header, row = text.splitlines()[:2]
    assert "provider" in header and "mode" in header
    assert "perplexity" in row and "live" in row
