"""A member filters the shared task list, opens a task that is still running, watches it finish on the
page without reloading, and follows its tag to the tag's history.

The task is submitted for real to the stand-in upstream (over HTTP, at live_server). In tests the job
backend runs nothing in the background, so the test thread plays the worker: it calls the same
task_fetch the collection job calls, while the page keeps polling its status fragment.
"""

import re
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from tasks.models import Task
from tasks.submission.collection import task_fetch
from tasks.submission.sending import TaskSpec, submit_tasks
from tests.e2e.browsing import log_in
from tests.factories import PASSWORD, make_task
from tests.submission.sending import send_planned

pytestmark = pytest.mark.browser

TAG = "browser:parks/fr"


@pytest.fixture(autouse=True)
def member_role(transactional_db):
    """The Members group with its permissions. live_server tests flush the database between tests,
    which removes the groups the roles migration created, so the `user` fixture needs them back."""
    from django.contrib.auth.models import Group, Permission

    from tasks.roles import MEMBER_PERMISSIONS, MEMBERS

    group, _ = Group.objects.get_or_create(name=MEMBERS)
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="tasks", codename__in=MEMBER_PERMISSIONS)
    )
    return group


def _finish_like_the_worker(task_id, timeout: float = 15) -> Task:
    deadline = time.monotonic() + timeout
    time.sleep(settings.SANDBOX_TASK_DELAY)
    while time.monotonic() < deadline:
        task = task_fetch(task_id=task_id)
        if task.is_final:
            return task
        time.sleep(0.3)
    raise AssertionError("the stand-in never finished the task")


def test_filter_open_a_pending_task_watch_it_complete_and_follow_its_tag(
    logged_in_page, live_credential, user
):
    page = logged_in_page
    make_task(
        tag=TAG,
        user_prompt="Earlier run about parks",
        money_spent=Decimal("0.02"),
        credential=live_credential,
    )
    make_task(tag="someone-else", user_prompt="Unrelated question", credential=live_credential)
    (task,) = submit_tasks(
        specs=[
            TaskSpec(
                provider="chat_gpt",
                body={
                    "user_prompt": "Which amusement parks in France are most visited?",
                    "model_name": "gpt-4.1-mini",
                    "tag": TAG,
                },
            )
        ],
        credential=live_credential,
        user=user,
    )
    assert task.status == Task.Status.QUEUED
    send_planned()  # what the worker does
    task.refresh_from_db()
    assert task.status == Task.Status.SUBMITTED, task.status_message

    page.goto("/tasks/")
    expect(page.get_by_text("Unrelated question")).to_be_visible()
    page.get_by_label("Tag", exact=True).fill(TAG)
    page.get_by_role("button", name="Apply filters").click()

    expect(page.get_by_text("Unrelated question")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"tag=browser%3Aparks%2Ffr"))
    rows = page.locator("table.tasks tbody tr")
    expect(rows).to_have_count(2)

    page.get_by_role("link", name="Which amusement parks in France are most visited?").click()
    expect(page).to_have_url(re.compile(rf"/tasks/{task.pk}/$"))
    live = page.locator("#task-live")
    expect(live.locator(".badge")).to_have_text(re.compile("Submitted|Pending"))
    expect(live).to_have_attribute("hx-trigger", "every 3s")
    expect(live).to_contain_text("provisional")
    page.evaluate("window.stillTheSamePage = true")

    finished = _finish_like_the_worker(task.pk)
    assert finished.status == Task.Status.COMPLETED

    expect(live.locator(".badge")).to_have_text("Completed", timeout=10_000)
    expect(page.locator(".answer .markdown")).not_to_be_empty()
    expect(page.locator("#task-timeline")).to_contain_text("Completed")
    expect(page.locator("#task-live")).not_to_have_attribute("hx-trigger", re.compile(".*"))
    assert page.evaluate("window.stillTheSamePage") is True  # updated in place, never reloaded

    page.locator("header.task-head a.tag").click()
    expect(page).to_have_url(re.compile(r"/tags/browser:parks/fr/$"))
    expect(page.get_by_test_id("tag-count")).to_have_text("2")
    expect(page.get_by_role("heading", name="Answers over time")).to_be_visible()


def test_labels_are_edited_in_place_and_logged(logged_in_page, live_credential):
    page = logged_in_page
    task = make_task(tag="t", credential=live_credential)

    page.goto(f"/tasks/{task.pk}/")
    page.get_by_role("textbox", name="Labels").fill("baseline, q3")
    page.get_by_role("button", name="Save").click()

    expect(page.locator("#task-labels")).to_contain_text("Saved.")
    expect(page.locator("#task-labels .current-labels")).to_contain_text("baseline")
    expect(page.locator("#task-timeline")).to_contain_text("Added labels baseline, q3.")


def test_on_a_phone_in_dark_mode_a_tags_timeline_shows_what_changed_and_opens_the_full_answer(
    open_page, user
):
    """The tag page's timeline and recent tasks are built in Python (tasks/history/runs.py, rows.py): on
    a 390 px phone in dark mode they fit the window, the changed run shows its diff and its answer opens."""
    now = timezone.now()
    cite = [{"url": "https://acme.example/", "domain": "acme.example"}]
    for hours, text in ((3, "Disneyland leads."), (2, "Disneyland leads."), (1, "Europa-Park leads now.")):
        make_task(
            tag=TAG,
            user_prompt="Best parks?",
            answer_text=text,
            citations=cite,
            submitted_by=user,
            created_at=now - timedelta(hours=hours),
        )
    page = open_page(color_scheme="dark", viewport={"width": 390, "height": 844})
    log_in(page, user.get_username())

    page.goto(f"/tags/{TAG}/")

    runs = page.locator("ol.runs > li.run")
    expect(runs).to_have_count(3)
    expect(runs.nth(1)).to_contain_text("same answer as before")
    expect(runs.nth(2).locator(".changed")).to_have_text("changed")
    expect(runs.nth(2).locator(".diff del")).to_have_text(re.compile("Disneyland"))
    expect(runs.nth(2).locator(".diff ins")).to_have_text(re.compile("Europa-Park"))
    full = runs.nth(2).locator("details", has_text="Full answer")
    expect(full.locator(".markdown")).to_be_hidden()
    full.locator("summary").click()
    expect(full.locator(".markdown")).to_have_text(re.compile("Europa-Park leads now."))
    expect(page.locator("ol.domains li")).to_have_text([re.compile(r"acme\.example\s*3")])
    expect(page.locator("#recent-h ~ .table-wrap tbody tr")).to_have_count(3)
    width, scroll_width = page.evaluate("[innerWidth, document.scrollingElement.scrollWidth]")
    assert scroll_width <= width, f"the tag page scrolls sideways: {scroll_width}px in {width}px"
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert sum(int(c) for c in re.findall(r"\d+", background)[:3]) < 3 * 128, f"not dark: {background}"


def test_picking_a_prompt_swaps_the_timeline_and_coming_back_to_its_url_shows_the_whole_page(
    logged_in_page, user
):
    """The prompt picker swaps the timeline in place with htmx and pushes `?prompt=` to the URL. Leaving
    for another page and coming back (the back button) shows the whole tag page, never the swapped
    fragment alone: every response varies on HX-Request (tasks/fragments.py)."""
    page = logged_in_page
    now = timezone.now()
    for hours, prompt, text in (
        (3, "Best parks?", "Disneyland."),
        (2, "Best rides?", "Big Thunder."),
        (1, "Best rides?", "Space Mountain."),
    ):
        make_task(
            tag=TAG,
            user_prompt=prompt,
            answer_text=text,
            submitted_by=user,
            created_at=now - timedelta(hours=hours),
        )
    page.goto(f"/tags/{TAG}/")
    expect(page.locator("ol.runs")).to_contain_text("Space Mountain.")
    page.evaluate("window.stillTheSamePage = true")

    page.get_by_label("Prompt").select_option("Best parks?")

    expect(page).to_have_url(re.compile(r"\?prompt=Best\+parks%3F$|\?prompt=Best%20parks%3F$"))
    expect(page.locator("ol.runs")).to_contain_text("Disneyland.")
    expect(page.locator("ol.runs")).not_to_contain_text("Space Mountain.")
    assert page.evaluate("window.stillTheSamePage") is True  # swapped in place, not reloaded
    expect(page.get_by_test_id("tag-count")).to_have_text("3")

    page.locator("ol.runs li.run header a").first.click()  # the run's task page, a whole page load
    expect(page.locator("h1")).to_be_visible()
    page.go_back()

    expect(page).to_have_url(re.compile(r"\?prompt="))
    expect(page.get_by_test_id("tag-count")).to_have_text("3")  # the whole page, its totals included
    expect(page.locator("nav.crumbs")).to_be_visible()
    expect(page.locator("ol.runs")).to_contain_text("Disneyland.")


TABLE_ANSWER = """Visitor numbers:

| Park | Visits | Region |
|---|---|---|
| Disneyland Paris | 15,000,000 | Île-de-France, Marne-la-Vallée, Seine-et-Marne |
| Parc Astérix | 2,800,000 | Hauts-de-France |
"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_on_a_phone_a_table_in_an_answer_keeps_its_figures_whole(open_page, user, scheme):
    task = make_task(user_prompt="Parks by visits?", answer_text=TABLE_ANSWER, submitted_by=user)
    page = open_page(color_scheme=scheme, viewport={"width": 390, "height": 844})
    log_in(page, user.get_username())

    page.goto(f"/tasks/{task.pk}/")

    cell = page.locator(".markdown td", has_text="15,000,000")
    expect(cell).to_be_visible()
    # One line: the cell is no taller than the one-line "Hauts-de-France" beside its row's neighbour.
    one_line = page.locator(".markdown td", has_text="2,800,000").bounding_box()["height"]
    lines = page.evaluate(
        "(cell) => { const range = document.createRange(); range.selectNodeContents(cell);"
        " return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size; }",
        cell.element_handle(),
    )
    assert lines == 1, f"15,000,000 is broken over {lines} lines"
    assert one_line < 40
    width, scroll_width = page.evaluate("[innerWidth, document.documentElement.scrollWidth]")
    assert scroll_width <= width


@pytest.mark.parametrize("width", [1366, 1440])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_on_a_laptop_the_task_list_shows_every_column_without_scrolling_sideways(
    open_page, user, width, scheme
):
    """The widest row a list shows: a provisional cost ("$0.0102 provisional"), "Unknown (reply lost)", a long
    username, a long tag with labels and a dated model. The table still fits its frame, so the Cost column is
    not cut off behind a sideways scroll."""
    from django.contrib.auth import get_user_model

    colleague = get_user_model().objects.create_user(username="marie.dupont-longname", password=PASSWORD)
    make_task(
        status=Task.Status.PENDING,
        provider="claude",
        model_name="claude-3-7-sonnet-20250219",
        tag="monitor:europe-theme-parks/weekly-visibility",
        labels=["needs-review", "campaign-q4"],
        submitted_by=colleague,
    )
    make_task(status=Task.Status.UNKNOWN, submitted_by=user)
    page = open_page(color_scheme=scheme, viewport={"width": width, "height": 900})
    log_in(page, user.get_username())

    page.goto("/tasks/")

    expect(page.locator("table.tasks .cost-provisional").first).to_be_visible()
    frame, table = page.evaluate(
        "() => { const wrap = document.querySelector('#task-results .table-wrap');"
        " return [wrap.clientWidth, wrap.scrollWidth]; }"
    )
    assert table <= frame, f"the table is {table - frame}px wider than its frame at {width}px"


def test_a_keyboard_focus_on_a_live_rows_link_stays_while_the_row_polls_and_the_row_still_updates(
    logged_in_page, live_credential
):
    page = logged_in_page
    task = make_task(status="pending", user_prompt="Still with the upstream", credential=live_credential)

    page.goto("/tasks/")
    row = page.locator(f'tr[data-task="{task.pk}"]')
    link = row.get_by_role("link", name="Still with the upstream")
    link.focus()
    with page.expect_response(lambda response: "part=row" in response.url) as polled:
        pass
    assert polled.value.status == 204  # unchanged: nothing swapped
    page.wait_for_timeout(500)
    assert page.evaluate("document.activeElement.textContent") == "Still with the upstream"

    Task.objects.filter(pk=task.pk).update(status="completed", spend_is_final=True)
    expect(row.locator(".badge")).to_have_text("Completed", timeout=10_000)
    expect(row).not_to_have_attribute("hx-trigger", re.compile(".*"))
