"""How the htmx interactions behave in a real browser: polling stops, filters keep their URL, live validation
keeps what is typed, errors from the server are said, destructive actions ask first, the keyboard works."""

import re

import pytest
from playwright.sync_api import expect

from tasks.models import Task
from tasks.prompt_templates.services import template_create
from tests.conftest import PASSWORD
from tests.e2e.browsing import dialog_answer, log_in
from tests.e2e.test_builder import builder_page  # noqa: F401 - a fixture
from tests.factories import make_task, member_group

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def member_page(logged_in_page, user):
    user.groups.add(member_group())
    return logged_in_page


def _count_requests(page, path_part, seconds):
    seen = []
    listener = lambda request: seen.append(request.url) if path_part in request.url else None  # noqa: E731
    page.on("request", listener)
    page.wait_for_timeout(seconds * 1000)
    page.remove_listener("request", listener)
    return len(seen)


def test_the_task_page_updates_to_final_by_itself_then_stops_polling_and_keeps_focus(member_page):
    page = member_page
    task = make_task(status=Task.Status.SUBMITTED, user_prompt="Still running")
    page.goto(f"/tasks/{task.pk}/")
    expect(page.locator("#task-live .badge-submitted")).to_have_count(1)
    note = page.locator("#task-labels textarea, #task-labels input[type=text]").first
    note.click()
    page.keyboard.type("typing while it polls")

    Task.objects.filter(pk=task.pk).update(status=Task.Status.COMPLETED)

    expect(page.locator("#task-live .badge-completed")).to_have_count(1, timeout=8_000)
    expect(page.locator("#task-live")).to_have_count(1)
    expect(page.locator("#task-refresh")).to_contain_text("Final: nothing to refresh.")  # the head follows
    expect(note).to_be_focused()
    expect(note).to_have_value(re.compile("typing while it polls"))
    assert _count_requests(page, "/status/", 4) == 0


def test_the_task_heads_upstream_id_appears_as_it_is_sent_and_the_focus_stays_on_its_links(member_page):
    page = member_page
    task = make_task(status=Task.Status.QUEUED, user_prompt="Being sent")
    page.goto(f"/tasks/{task.pk}/")
    expect(page.locator("#task-refresh")).to_contain_text("Not sent yet")
    page.locator("a:has-text('Open in builder')").focus()

    Task.objects.filter(pk=task.pk).update(
        status=Task.Status.PENDING, upstream_task_id="12070510-1535-0612-0000-09c21930dfc9"
    )

    expect(page.locator("#task-upstream-id")).to_contain_text(
        "12070510-1535-0612-0000-09c21930dfc9", timeout=8_000
    )
    expect(page.locator("#task-refresh-button")).to_be_enabled()
    expect(page.locator("a:has-text('Open in builder')")).to_be_focused()


def test_filters_push_their_url_so_reload_back_and_a_bookmark_give_the_same_view(member_page, live_server):
    page = member_page
    make_task(status=Task.Status.COMPLETED, user_prompt="A finished one")
    make_task(status=Task.Status.FAILED, user_prompt="A failed one")
    page.goto("/tasks/")
    expect(page.locator("table.tasks tbody tr")).to_have_count(2)

    page.get_by_label("Status").select_option("failed")

    expect(page).to_have_url(re.compile(r"status=failed"))
    expect(page.locator("table.tasks tbody tr")).to_have_count(1)
    filtered = page.url
    page.reload()
    expect(page.locator("table.tasks tbody tr")).to_have_count(1)
    expect(page.get_by_label("Status")).to_have_value("failed")
    page.go_back()
    expect(page).to_have_url(re.compile(r"/tasks/$"))
    expect(page.locator("table.tasks tbody tr")).to_have_count(2)
    expect(page.get_by_label("Status")).to_have_value("")
    page.go_forward()
    expect(page.locator("table.tasks tbody tr")).to_have_count(1)
    expect(page.get_by_label("Status")).to_have_value("failed")
    expect(page.locator("link[rel=stylesheet]").first).to_be_attached()

    other = page.context.new_page()
    other.goto(filtered)
    expect(other.locator("table.tasks tbody tr")).to_have_count(1)
    expect(other.get_by_label("Status")).to_have_value("failed")


def test_sorting_then_filtering_keeps_the_sort(member_page):
    page = member_page
    make_task(status=Task.Status.COMPLETED, user_prompt="A finished one")
    make_task(status=Task.Status.FAILED, user_prompt="A failed one")
    page.goto("/tasks/")
    page.locator("thead").get_by_role("link", name=re.compile("^Cost")).click()
    expect(page).to_have_url(re.compile(r"sort=-cost"))
    page.get_by_label("Status").select_option("failed")
    expect(page).to_have_url(re.compile(r"status=failed"))
    expect(page).to_have_url(re.compile(r"sort=-cost"))
    page.go_back()
    expect(page).to_have_url(re.compile(r"sort=-cost"))
    expect(page.locator("table.tasks tbody tr")).to_have_count(2)
    page.go_back()
    expect(page).to_have_url(re.compile(r"/tasks/$"))
    expect(page.locator("thead th[aria-sort]")).to_have_text(re.compile("Time"))


def test_the_tags_filter_field_matches_its_results_on_back_forward_and_reload(member_page):
    page = member_page
    make_task(tag="alpha-tag")
    make_task(tag="beta-tag")
    page.goto("/tags/")
    expect(page.get_by_role("link", name="alpha-tag")).to_be_visible()

    page.locator("#tag-q").fill("beta")

    expect(page).to_have_url(re.compile("q=beta"))
    expect(page.get_by_role("link", name="alpha-tag")).to_have_count(0)
    page.go_back()
    expect(page.get_by_role("link", name="alpha-tag")).to_be_visible()
    expect(page.locator("#tag-q")).to_have_value("")
    page.go_forward()
    expect(page.get_by_role("link", name="alpha-tag")).to_have_count(0)
    expect(page.locator("#tag-q")).to_have_value("beta")
    page.reload()
    expect(page.get_by_role("link", name="alpha-tag")).to_have_count(0)
    expect(page.locator("#tag-q")).to_have_value("beta")


def test_a_server_error_or_a_lost_connection_is_said_at_the_top_of_the_page(member_page, browser_errors):
    page = member_page
    make_task(status=Task.Status.FAILED, user_prompt="A failed one")
    page.goto("/tasks/")
    page.route("**/tasks/?*", lambda route: route.fulfill(status=500, body="boom"))

    page.get_by_label("Status").select_option("failed")

    expect(page.get_by_role("alert")).to_contain_text(re.compile("server", re.I))
    page.unroute("**/tasks/?*")
    page.route("**/tasks/?*", lambda route: route.abort())
    page.get_by_label("Status").select_option("completed")
    expect(page.get_by_role("alert")).to_contain_text(re.compile("reach|connection", re.I))
    page.unroute("**/tasks/?*")
    page.get_by_label("Status").select_option("")
    expect(page.get_by_role("alert")).to_have_count(0)
    browser_errors.clear()


@pytest.fixture
def builder(builder_page):  # noqa: F811 - the fixture imported above
    """The builder on the stand-in, as a Member (tests/e2e/test_builder.py)."""
    return builder_page


def _submit_a_task(page, prompt: str) -> str:
    """Fill and submit the builder; the task page's URL."""
    page.get_by_label("User prompt").fill(prompt)
    page.get_by_label("Model").select_option("gpt-4.1-mini")
    expect(page.locator("#submit-button")).to_be_enabled()
    page.locator("#submit-button").click()
    page.wait_for_url(re.compile(r"/tasks/[0-9a-f-]{36}/$"))
    return page.url


def test_typing_while_a_live_validation_is_under_way_keeps_the_caret_focus_and_text(builder):
    page = builder
    prompt = page.get_by_label("User prompt")
    prompt.fill("Hello world")
    page.wait_for_load_state("networkidle")
    held = []

    def hold(route):
        if held and held[0] == "released":
            route.continue_()
        else:
            held.append(route)

    page.route("**/new/validate/", hold)
    prompt.click()
    page.keyboard.press("End")
    page.keyboard.type("!")
    page.wait_for_timeout(600)
    assert held, "no live validation was sent"
    for _ in range(len(" world!")):
        page.keyboard.press("ArrowLeft")
    page.keyboard.type(" big")
    routes, held[:] = held[:], ["released"]
    for route in routes:
        route.continue_()
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(800)

    expect(prompt).to_be_focused()
    expect(prompt).to_have_value("Hello big world!")
    assert prompt.evaluate("el => [el.selectionStart, el.selectionEnd]") == [9, 9]


def test_switching_provider_keeps_the_fields_both_have(builder):
    page = builder
    page.get_by_label("User prompt").fill("Keep me")
    page.get_by_label("System message").fill("Be brief")
    page.get_by_label("Tag").fill("kept-tag")
    page.get_by_label("Temperature").fill("0.3")
    page.wait_for_load_state("networkidle")

    page.get_by_role("button", name="Claude").click()

    expect(page.get_by_label("Use reasoning")).to_be_visible()
    expect(page.get_by_label("User prompt")).to_have_value("Keep me")
    expect(page.get_by_label("System message")).to_have_value("Be brief")
    expect(page.get_by_label("Tag")).to_have_value("kept-tag")
    expect(page.get_by_label("Temperature")).to_have_value("0.3")


def test_back_after_a_provider_switch_shows_what_was_typed_beside_its_preview(builder):
    page = builder
    page.get_by_label("User prompt").fill("Carry me over")
    expect(page.locator("#preview-json")).to_contain_text("Carry me over")

    page.get_by_role("button", name="Claude").click()
    expect(page.get_by_label("Use reasoning")).to_be_visible()
    page.go_back()

    expect(page.get_by_label("Use reasoning")).to_have_count(0)
    expect(page.locator("#preview-json")).to_contain_text("Carry me over")
    expect(page.get_by_label("User prompt")).to_have_value("Carry me over")


def test_back_after_submitting_shows_the_builder_ready_to_use(builder):
    page = builder
    _submit_a_task(page, "What is the capital of France?")

    page.go_back()

    # The browser puts back what was typed; the errors, the preview and the submit button follow it.
    expect(page).to_have_url(re.compile(r"/new/"))
    expect(page.get_by_label("User prompt")).to_have_value("What is the capital of France?")
    expect(page.locator("#submit-button")).to_be_enabled()
    expect(page.locator("#submit-area")).not_to_contain_text("Enter a user prompt")
    expect(page.locator("#preview-json")).to_contain_text("capital of France")
    expect(page.locator("form.is-sending")).to_have_count(0)


@pytest.fixture
def admin_page(page, django_user_model):
    from django.contrib.auth.models import Group, Permission

    from tasks.roles import ADMINS, ensure_roles

    ensure_roles(group_model=Group, permission_model=Permission)
    admin = django_user_model.objects.create_user(username="the-admin", password=PASSWORD)
    admin.groups.add(Group.objects.get(name=ADMINS))
    log_in(page, admin.get_username())
    return page


def test_disabling_a_credential_asks_first_and_cancel_really_cancels(admin_page, credential):
    page = admin_page
    page.goto("/credentials/")
    questions = []

    page.once("dialog", dialog_answer(questions, accept=False))
    page.get_by_role("button", name="Disable").click()
    page.wait_for_timeout(500)
    assert questions and "Disable the credential" in questions[0]
    credential.refresh_from_db()
    assert credential.is_active
    expect(page.get_by_role("button", name="Disable")).to_be_enabled()

    page.once("dialog", dialog_answer(questions, accept=True))
    page.get_by_role("button", name="Disable").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Enable")).to_be_visible()
    credential.refresh_from_db()
    assert not credential.is_active


def test_a_new_one_time_password_asks_first_and_cancel_really_cancels(admin_page, django_user_model):
    """It ended the person's own password at one press; Cancel now keeps it and shows no password."""
    page = admin_page
    carol = django_user_model.objects.create_user(username="carol", password=PASSWORD)
    page.goto("/people/")
    questions = []

    page.once("dialog", dialog_answer(questions, accept=False))
    page.get_by_role("button", name="New one-time password").click()
    page.wait_for_timeout(500)
    assert questions and "Give carol a new one-time password?" in questions[0]
    carol.refresh_from_db()
    assert carol.check_password(PASSWORD)
    expect(page.locator(".one-time-password")).to_have_count(0)

    page.once("dialog", dialog_answer(questions, accept=True))
    page.get_by_role("button", name="New one-time password").click()
    expect(page.locator(".one-time-password")).to_contain_text("carol can log in with the one-time password")
    carol.refresh_from_db()
    assert not carol.check_password(PASSWORD)


def test_archiving_a_template_asks_first_and_cancel_really_cancels(member_page, user):
    page = member_page
    template = template_create(name="Parks", provider="chat_gpt", fields={"user_prompt": "Parks?"}, user=user)
    page.goto(f"/templates/{template.pk}/")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Archive").click()
    page.wait_for_timeout(500)
    template.refresh_from_db()
    assert template.archived_at is None
    expect(page.get_by_role("button", name="Archive")).to_be_enabled()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Archive").focus()
    page.keyboard.press("Space")
    expect(page.get_by_role("button", name="Restore")).to_be_visible()
    template.refresh_from_db()
    assert template.archived_at is not None


def test_sorting_by_keyboard_keeps_the_focus_on_the_header_link(member_page):
    page = member_page
    make_task(status=Task.Status.COMPLETED, user_prompt="A finished one")
    make_task(status=Task.Status.FAILED, user_prompt="A failed one")
    page.goto("/tasks/")
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.textContent.trim()") == "Cost":
            break
    else:
        pytest.fail("Tab never reached the Cost column's sort link")

    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(r"sort=-cost"))
    expect(page.locator("thead").get_by_role("link", name="Cost ▼")).to_be_focused()
    page.wait_for_load_state("networkidle")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"sort=cost"))
    expect(page.locator("thead").get_by_role("link", name="Cost ▲")).to_be_focused()


def test_a_refused_rename_keeps_the_input_and_says_why_and_a_server_error_keeps_it_too(
    member_page, user, browser_errors
):
    page = member_page
    template_create(name="Bakeries", provider="chat_gpt", fields={"user_prompt": "Bread?"}, user=user)
    template = template_create(name="Parks", provider="chat_gpt", fields={"user_prompt": "Parks?"}, user=user)
    page.goto(f"/templates/{template.pk}/")
    page.get_by_text("Edit details", exact=True).click()
    page.get_by_label("Name").fill("Bakeries")
    page.get_by_role("button", name="Save details").click()

    expect(page.locator("#template-details")).to_contain_text(re.compile("already", re.I))
    expect(page.get_by_label("Name")).to_have_value("Bakeries")

    page.route("**/rename/", lambda route: route.fulfill(status=500, body="boom"))
    page.get_by_label("Name").fill("Parks and gardens")
    page.get_by_role("button", name="Save details").click()
    expect(page.get_by_role("alert").filter(has_text="error 500")).to_be_visible()
    expect(page.get_by_label("Name")).to_have_value("Parks and gardens")
    expect(page.get_by_role("button", name="Save details")).to_be_enabled()
    browser_errors.clear()


def test_back_after_submitting_then_submitting_again_asks_before_a_second_task(builder, browser_errors):
    """The page Back shows has a new idempotency key: the builder names the task just sent and sends
    nothing until "Send it again" is pressed."""
    page = builder
    first = _submit_a_task(page, "What is the capital of Spain?")

    page.go_back()
    expect(page.locator("#submit-button")).to_be_enabled()
    page.locator("#submit-button").click()

    warning = page.locator(".alert-warning", has_text="You sent this same request")
    expect(warning).to_be_visible()
    assert Task.objects.count() == 1
    browser_errors.clear()  # the page's 422, as Chromium logs it: expected here
    page.set_viewport_size(
        {"width": 390, "height": 844}
    )  # on a phone, in dark mode: framed, no sideways scroll
    page.emulate_media(color_scheme="dark")
    expect(warning.get_by_role("button", name="Send it again")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert warning.evaluate("e => getComputedStyle(e).borderTopStyle") != "none"
    assert warning.get_by_role("link", name="that task").get_attribute("href") in first
    expect(page.get_by_label("User prompt")).to_have_value("What is the capital of Spain?")

    warning.get_by_role("button", name="Send it again").click()
    page.wait_for_url(re.compile(r"/tasks/[0-9a-f-]{36}/$"))
    assert page.url != first and Task.objects.count() == 2
