"""Any page may answer an htmx request with a fragment of itself: every response varies on HX-Request, so
a browser never shows a fragment it fetched with htmx as the whole page when someone comes back to its URL."""

import pytest
from django.urls import reverse

from tests.factories import make_task

pytestmark = pytest.mark.django_db

# Pages of every area that answer htmx with a fragment (tasks/fragments.py's wants_fragment).
PAGES = [
    "history:home",
    "history:task_list",
    "history:tag_list",
    "spend:page",
    "spend:budget_list",
    "team:credential_list",
    "team:people",
    "team:audit_log",
    "submission:queue",
    "visibility:set_list",
    "prompt_templates:list",
    "monitors:list",
    "builder:new",
]


@pytest.mark.parametrize("name", PAGES)
def test_every_page_says_it_varies_on_hx_request(team_admin_client, name):
    make_task(tag="t")
    url = reverse(name)

    for headers in ({}, {"HX-Request": "true"}):
        response = team_admin_client.get(url, headers=headers)
        assert response.status_code == 200, (url, headers)
        assert "HX-Request" in response["Vary"], (url, headers, response.get("Vary"))


def test_the_tag_pages_fragment_and_page_differ_and_both_say_so(member_client):
    make_task(tag="t", user_prompt="p", answer_text="a")
    url = reverse("history:tag_detail", kwargs={"tag": "t"})

    page = member_client.get(url)
    fragment = member_client.get(url, headers={"HX-Request": "true"})

    assert b"<html" in page.content and b"<html" not in fragment.content
    assert "HX-Request" in page["Vary"] and "HX-Request" in fragment["Vary"]
