"""Every page's title (the browser tab, the history, a screen reader's first words) says what its heading
says."""

import html
import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tasks.models import Budget
from tests.url_routes import make_url_objects, project_routes, url_for

# Pages whose heading is the content itself, or a count, with the title naming the page.
HEADING_IS_CONTENT = {
    "history:task_detail",  # heading: the whole prompt; title: "Task" and its first words
    "visibility:answers",  # heading: "12 answers mentioning Acme"; title: "Answers · set"
}


def _text(fragment: str) -> str:
    """The words of some HTML, as read: badges and tags out, entities decoded, spaces collapsed."""
    fragment = re.sub(r'<span class="badge[^"]*"[^>]*>.*?</span>', " ", fragment, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _mismatch(page: str) -> str:
    """'' when the title says what the heading says (a heading may ask: "Delete …?")."""
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    heading = re.search(r"<h1[^>]*>(.*?)</h1>", page, re.S)
    if not (title and heading):
        return ""
    title_text = _text(title.group(1)).removesuffix(" · LLM Responses")
    heading_text = _text(heading.group(1))
    if heading_text.rstrip("?") == title_text:
        return ""
    return f"title {title_text!r}, heading {heading_text!r}"


@pytest.mark.django_db
def test_every_pages_title_says_what_its_heading_says(client):
    objects = make_url_objects()
    person = get_user_model().objects.get(username="matrix-person")
    urls = [url_for(route, objects) for route in project_routes() if route.name not in HEADING_IS_CONTENT]
    urls += [
        reverse("prompt_templates:batch_list") + f"?template={objects['template'].pk}",
        reverse("builder:new") + "?provider=claude",
        "/no-such-page/",
    ]
    for budget in (
        Budget.objects.create(scope=Budget.Scope.PERSON, user=person, monthly_limit=5),
        Budget.objects.create(scope=Budget.Scope.TAG, tag="coffee", monthly_limit=5),
    ):
        urls += [
            reverse("spend:budget_edit", args=[budget.pk]),
            reverse("spend:budget_delete", args=[budget.pk]),
        ]
    client.force_login(get_user_model().objects.create_superuser("titles-admin", password="x"))
    mismatches = []
    for url in urls:
        response = client.get(url)
        is_page = response.status_code in (200, 404) and "text/html" in response.get("Content-Type", "")
        if is_page and (problem := _mismatch(response.content.decode())):
            mismatches.append(f"{url}: {problem}")
    assert mismatches == [], "\n".join(mismatches)


@pytest.mark.django_db
def test_a_page_refused_says_so_in_its_title_as_in_its_heading(member_client):
    response = member_client.get(reverse("spend:page"))
    assert response.status_code == 403
    assert _mismatch(response.content.decode()) == ""


def test_the_builders_heading_follows_the_provider_tab_as_its_title_does(member_client, credential):
    """A provider tab redraws the form with a new <title> (htmx takes it): the heading says the same."""
    fragment = member_client.get(reverse("builder:new") + "?switch=claude", headers={"HX-Request": "true"})
    assert _mismatch(fragment.content.decode()) == ""
    assert "<h1>New Claude task</h1>" in fragment.content.decode()
