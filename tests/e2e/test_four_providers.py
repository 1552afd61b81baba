"""A new user tries all four providers: the same prompt sent to ChatGPT, Claude, Gemini and Perplexity from
the builder (queued where the model can be queued, live otherwise) and from one batch; each task page shows
the answer with its citations and its cost, and the spend page splits the four providers."""

import re

import pytest
from playwright.sync_api import expect

from tasks.models import Credential, Task
from tasks.prompt_templates.services import template_create
from tasks.submission import collection
from tests.conftest import sandbox_api_key
from tests.factories import make_catalog
from tests.submission.sending import send_planned

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PROMPT = "Which running shoes do marathon coaches recommend?"
# provider tab, model, send as, whether it has a web search box
BUILDER = [
    ("ChatGPT", "gpt-4.1-mini", "Queue (task_post)", True),
    ("Claude", "claude-3-5-haiku", "Queue (task_post)", True),
    ("Gemini", "gemini-2.5-pro", "Live", True),
    ("Perplexity", "sonar", "Live", False),
]


@pytest.fixture
def admin_page(page, login, team_admin, live_server, settings):
    settings.SANDBOX_TASK_DELAY = 0
    settings.SANDBOX_DELIVER_CALLBACKS = False
    credential = Credential(
        name="Stand-in", kind=Credential.Kind.AISA, base_url=f"{live_server.url}/sandbox/apis/v1/dataforseo",
        is_default=True,
    )  # fmt: skip
    credential.set_secret(sandbox_api_key())
    credential.save()
    make_catalog()
    login(team_admin.get_username())
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    return page


def work() -> None:
    """What the workers do: send what was planned (queued and live), then collect the queued results."""
    send_planned()
    for task in Task.objects.filter(status__in=(Task.Status.SUBMITTED, Task.Status.PENDING)):
        collection.task_fetch(task_id=task.pk)


def test_the_same_prompt_to_all_four_providers_from_the_builder_and_a_batch(admin_page):
    page = admin_page
    task_urls = []
    for tab, model, mode, web_search in BUILDER:
        page.goto("/new/")
        if tab != "ChatGPT":
            page.get_by_role("navigation", name="Provider").get_by_role("button", name=tab).click()
            expect(page).to_have_url(re.compile(r"provider="))  # the swap is done
        expect(page.locator(".provider-tab.is-active")).to_have_text(tab)
        page.get_by_label("User prompt").fill(PROMPT)
        page.get_by_label("Model").select_option(model)
        page.get_by_role("radio", name=mode, exact=True).check()
        if web_search:
            page.get_by_label("Web search", exact=True).check()
        if mode == "Live":
            expect(page.locator("#preview-endpoint")).to_contain_text(re.compile(r"/llm_responses/live$"))
            expect(page.locator("#preview-charge-help")).to_contain_text("A live task costs $0.0006")
        expect(page.locator("#submit-button")).to_be_enabled()
        page.locator("#submit-button").click()
        page.wait_for_url(re.compile(r"/tasks/[0-9a-f-]{36}/$"))
        expect(page.locator("main")).to_contain_text(f"{tab} · {mode}")
        task_urls.append(page.url)

    work()

    for url in task_urls:
        page.goto(url)
        expect(page.locator("#task-live .badge")).to_have_text("Completed")
        expect(page.get_by_role("heading", name="Answer")).to_be_visible()
        expect(page.locator("section.citations li").first).to_be_visible()
        expect(page.locator("#task-live")).to_contain_text("Final cost")
    gemini = Task.objects.get(provider="gemini")
    page.goto(f"/tasks/{gemini.pk}/")  # Gemini's citations link the page itself, not the redirect
    first = page.locator("section.citations li").first
    expect(first.locator("a.cite-title")).to_have_attribute("href", gemini.citations[0]["direct_url"])
    expect(first.locator("a.cite-redirect")).to_have_attribute("href", gemini.citations[0]["url"])

    # The same prompt as one batch to the four providers.
    template = template_create(name="Shoes", provider="chat_gpt", fields={"user_prompt": PROMPT}, user=None)
    page.goto(f"/templates/{template.pk}/")
    page.get_by_role("link", name="Run as batch").click()
    page.get_by_label("Name").fill("Four providers")
    for label in (
        "gpt-4.1-mini (web search)",
        "claude-3-5-haiku (web search)",
        "gemini-2.5-pro (reasoning, web search, live only)",
        "sonar (web search, live only)",
    ):
        page.get_by_role("checkbox", name=label, exact=True).check()
    page.get_by_role("button", name="Check rows and cost").click()
    expect(page.locator("#plan")).to_contain_text("4 tasks")
    expect(page.locator("#plan")).to_contain_text("2 sent live")
    page.get_by_role("button", name="Submit 4 tasks").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Four providers")

    work()

    page.reload()
    expect(page.locator("tbody .badge-completed")).to_have_count(4, timeout=8_000)
    for tab, *_ in BUILDER:
        expect(page.locator("tbody")).to_contain_text(tab)

    page.goto("/spend/")
    by_provider = page.locator("section, table", has_text="By provider").last
    for tab, *_ in BUILDER:
        expect(by_provider).to_contain_text(tab)
    assert Task.objects.filter(status=Task.Status.COMPLETED).count() == 8
