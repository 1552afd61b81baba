"""A person builds a request in the browser: switch provider, see a live error appear and clear, watch the
preview follow, submit to the stand-in and land on the task's page; see a budget the task will not fit
before submitting."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from sandbox import stats
from tasks.models import Budget, Credential, Task
from tests.e2e.browsing import settle
from tests.factories import make_catalog, member_group
from tests.submission.sending import send_planned

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def builder_page(logged_in_page, live_server, user):
    user.groups.add(member_group())
    credential = Credential(
        name="Stand-in", kind=Credential.Kind.AISA, base_url=f"{live_server.url}/sandbox/apis/v1/dataforseo",
        is_default=True,
    )  # fmt: skip
    credential.set_secret("sandbox-key")
    credential.save()
    make_catalog()
    logged_in_page.goto("/new/")
    return logged_in_page


def test_switching_provider_swaps_the_fields_and_the_url_follows(builder_page):
    page = builder_page
    page.get_by_label("User prompt").fill("Carry me over")
    expect(page.get_by_label("Use reasoning")).to_have_count(0)

    page.get_by_role("button", name="Claude").click()

    expect(page.get_by_label("Use reasoning")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/new/\?provider=claude$"))
    expect(page.get_by_label("User prompt")).to_have_value("Carry me over")
    page.go_back()
    expect(page.get_by_label("Use reasoning")).to_have_count(0)


def test_a_live_error_appears_and_clears_and_the_preview_follows(builder_page):
    page = builder_page
    page.get_by_label("User prompt").fill("Hello")
    page.get_by_label("Model").select_option("gpt-4.1")
    page.get_by_label("Temperature").fill("0.5")
    page.get_by_label("Top p").fill("0.5")

    expect(page.locator("#errors-top_p")).to_contain_text("Set temperature or top p, not both.")
    expect(page.locator("#errors-temperature")).to_contain_text("Set temperature or top p, not both.")
    expect(page.locator("#submit-button")).to_be_disabled()
    expect(page.locator("#submit-reason")).to_contain_text("not both")

    page.get_by_label("Top p").fill("")

    expect(page.locator("#errors-top_p")).to_be_empty()
    expect(page.locator("#errors-temperature")).to_be_empty()
    expect(page.locator("#submit-button")).to_be_enabled()
    expect(page.locator("#preview-json")).to_contain_text('"temperature": 0.5')
    expect(page.locator("#preview-json")).not_to_contain_text("top_p")
    expect(page.locator("#preview-curl")).to_contain_text("Bearer ****-key")


def test_the_counter_follows_the_prompt(builder_page):
    page = builder_page
    page.get_by_label("User prompt").fill("x" * 12)

    expect(page.locator('[data-counter-for="id_user_prompt"]')).to_have_text("12 / 500")


def test_the_counter_counts_an_emoji_once_as_the_server_does(builder_page):
    page = builder_page
    page.get_by_label("User prompt").fill("🎈" * 3 + "é")

    expect(page.locator('[data-counter-for="id_user_prompt"]')).to_have_text("4 / 500")


def test_adding_a_chain_turn_keeps_what_was_typed(builder_page):
    page = builder_page
    page.get_by_label("User prompt").fill("Typed before")

    page.get_by_role("button", name="Add a turn").click()

    expect(page.get_by_label("Turn 1 message")).to_be_visible()
    expect(page.get_by_label("User prompt")).to_have_value("Typed before")


def test_the_keyboard_focus_follows_each_chain_edit(builder_page):
    """A keyboard user adds, moves and removes turns without being sent back to the top of the page."""
    page = builder_page

    page.get_by_role("button", name="Add a turn").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Turn 1 message")).to_be_focused()
    page.keyboard.type("first")

    page.get_by_role("button", name="Add a turn").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Turn 2 message")).to_be_focused()
    page.keyboard.type("second")

    page.get_by_role("button", name="Move turn 1 down").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Turn 2 message")).to_have_value("first")
    expect(page.get_by_role("button", name="Move turn 2 up")).to_be_focused()  # the moved turn's

    page.keyboard.press("Enter")
    expect(page.get_by_label("Turn 1 message")).to_have_value("first")
    expect(page.get_by_role("button", name="Move turn 1 down")).to_be_focused()

    page.get_by_role("button", name="Remove turn 1").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Turn 1 message")).to_have_value("second")
    expect(page.get_by_role("button", name="Remove turn 1")).to_be_focused()  # the turn now in its place

    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Add a turn")).to_be_focused()  # no turn left


def test_the_keyboard_focus_stays_on_refresh_models_and_on_the_provider_tab(builder_page):
    page = builder_page

    page.get_by_role("button", name="Refresh models").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#model-picker [role=status]")).to_contain_text("fetched")
    expect(page.get_by_role("button", name="Refresh models")).to_be_focused()

    page.get_by_role("button", name="Claude").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/new/\?provider=claude$"))
    expect(page.get_by_role("button", name="Claude")).to_be_focused()


def test_a_variable_typed_in_the_prompt_brings_its_input(builder_page):
    page = builder_page
    page.get_by_label("User prompt").fill("Weather in {{city}} today?")

    expect(page.locator('input[name="var_city"]')).to_be_visible()
    page.locator('input[name="var_city"]').fill("Lyon")
    expect(page.get_by_label("User prompt")).to_have_value("Weather in {{city}} today?")
    expect(page.locator("#errors-var_city")).to_be_empty()


def test_submitting_to_the_stand_in_lands_on_the_task_page(builder_page):
    page = builder_page
    page.get_by_label("User prompt").fill("What is the capital of France?")
    page.get_by_label("Model").select_option("gpt-4.1-mini")
    page.get_by_label("Web search", exact=True).check()
    page.get_by_label("Country").fill("FR")
    page.get_by_label("Tag").fill("e2e")
    expect(page.locator("#submit-button")).to_be_enabled()

    page.locator("#submit-button").click()

    page.wait_for_url(re.compile(r"/tasks/[0-9a-f-]{36}/$"))
    task = Task.objects.get()
    assert task.request_body["web_search_country_iso_code"] == "FR"
    assert page.url.endswith(f"/tasks/{task.pk}/")
    # The request only planned it: the page says so, and follows it as a worker sends it.
    live = page.locator("#task-live")
    expect(live.locator(".badge")).to_have_text("Queued")
    expect(live).to_contain_text("waiting for a worker to send it")
    send_planned()  # what the worker does
    expect(live.locator(".badge")).to_have_text(re.compile("Submitted|Pending"), timeout=10_000)
    assert Task.objects.get().status in (Task.Status.SUBMITTED, Task.Status.PENDING)


def test_a_press_on_submit_that_a_check_answers_during_submits_the_task_once(builder_page):
    """A tag typed, then Submit pressed at once: the press leaves the tag field, whose check is answered
    before the button is released. The press still submits, once; when the answer replaced the button, the
    released press clicked nothing and the person had to press again."""
    page = builder_page
    page.get_by_label("User prompt").fill("What is the capital of France?")
    page.get_by_label("Model").select_option("gpt-4.1-mini")
    expect(page.locator("#submit-button")).to_be_enabled()
    settle(page)
    stats.clear()
    page.get_by_label("Tag").fill("pressed")
    box = page.locator("#submit-button").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

    with page.expect_response(re.compile(r"/new/validate/$")):
        page.mouse.down()  # the tag field loses the focus: its change is checked now
    settle(page)
    page.mouse.up()

    page.wait_for_url(re.compile(r"/tasks/[0-9a-f-]{36}/$"))
    assert Task.objects.get().request_body["tag"] == "pressed"
    send_planned()
    assert stats.post_count() == 1


def test_a_check_updates_the_submit_button_in_place(builder_page):
    """The answers of the live checks disable the button with the reasons beside it, enable it again and
    change its charge, on the button the page was drawn with."""
    page = builder_page
    page.get_by_label("User prompt").fill("Hello")
    page.get_by_label("Model").select_option("gpt-4.1")
    button = page.locator("#submit-button")
    expect(button).to_be_enabled()
    drawn, reasons = button.element_handle(), page.locator("#submit-reason").element_handle()

    page.get_by_label("Temperature").fill("0.5")
    page.get_by_label("Top p").fill("0.5")
    expect(button).to_be_disabled()
    expect(page.locator("#submit-reason")).to_contain_text("Submit is disabled until this is fixed")
    expect(button).to_have_attribute("aria-describedby", "submit-reason")
    page.get_by_label("Top p").fill("")
    expect(button).to_be_enabled()
    expect(page.locator("#submit-reason")).to_be_hidden()
    expect(button).not_to_have_attribute("aria-describedby", "submit-reason")
    page.get_by_role("radio", name="Live", exact=True).check()
    expect(button).to_have_text(re.compile(r"^Submit task · \$0\.0106$"))
    settle(page)

    assert drawn.evaluate("element => element.isConnected")
    assert reasons.evaluate("element => element.isConnected")  # the live region too: kept, it announces


def test_a_check_answered_while_the_task_is_being_sent_leaves_the_button_sending(builder_page):
    """Submit pressed, the page waiting for the answer: a check answered meanwhile neither enables the
    button again nor takes its "Sending…" away; the state it draws is what the button gets back if the page
    stays. (The press is app.js's: the button is put in its sending state as app.js does, so that the
    check's answer can be waited for while the page is not navigating away.)"""
    page = builder_page
    page.get_by_label("User prompt").fill("What is the capital of France?")
    page.get_by_label("Model").select_option("gpt-4.1-mini")
    button = page.locator("#submit-button")
    expect(button).to_be_enabled()
    settle(page)
    button.evaluate("""b => {
        b.dataset.enabledBeforeSending = "1"; b.disabled = true; b.classList.add("is-sending");
        b.dataset.labelBeforeSending = b.textContent; b.textContent = b.dataset.sendingLabel;
    }""")

    page.get_by_role("radio", name="Live", exact=True).check()  # a check answers with a new charge
    expect(button).to_have_attribute("data-label-before-sending", re.compile(r"\$0\.0106$"))

    expect(button).to_be_disabled()
    expect(button).to_have_text("Sending…")


def test_a_task_over_a_tags_budget_is_said_so_as_the_tag_is_typed(builder_page):
    """The team budget has room; the tag's has $0.0100 left and the task needs $0.0102: typing the tag
    shows that budget, says the task will not fit and disables submit, before anything is sent."""
    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("5"))
    Budget.objects.create(scope=Budget.Scope.TAG, tag="team-a", monthly_limit=Decimal("0.01"))
    page = builder_page
    page.reload()
    page.get_by_label("User prompt").fill("What is the capital of France?")
    page.get_by_label("Model").select_option("gpt-4.1-mini")
    expect(page.locator("#budgets")).to_contain_text("Left in the team budget")
    expect(page.locator("#submit-button")).to_be_enabled()

    page.get_by_label("Tag").fill("team-a")

    expect(page.locator("#budgets")).to_contain_text("Left in the budget of tag “team-a”$0.0100")
    expect(page.locator("#submit-reason")).to_contain_text(
        "Budget: This task needs $0.0102, the budget of tag “team-a” has $0.0100 left this month."
    )
    expect(page.locator("#submit-button")).to_be_disabled()

    page.get_by_label("Tag").fill("team-b")

    expect(page.locator("#submit-button")).to_be_enabled()
    expect(page.locator("#budgets")).not_to_contain_text("team-a")
    assert not Task.objects.exists()


# 500 characters with 17 line breaks: the form posts each as CRLF, so a count of the posted text would be 517.
MULTI_LINE_PROMPT = "\n".join(["x" * 26] * 17 + ["y" * 41])


def test_a_multi_line_prompt_of_500_characters_is_counted_validated_and_sent_alike(builder_page):
    page = builder_page
    page.get_by_label("Model").select_option("gpt-4.1")
    prompt = page.get_by_label("User prompt")

    prompt.press_sequentially(MULTI_LINE_PROMPT)

    expect(page.locator('[data-counter-for="id_user_prompt"]')).to_have_text("500 / 500")
    expect(page.locator("#preview-json")).to_contain_text(
        '"user_prompt": "' + MULTI_LINE_PROMPT[:30].replace("\n", "\\n")
    )
    expect(page.locator("#errors-user_prompt")).to_be_empty()
    expect(page.locator("#submit-button")).to_be_enabled()
    prompt.press("End")
    prompt.press_sequentially("z")
    expect(page.locator('[data-counter-for="id_user_prompt"]')).to_have_text("501 / 500")
    expect(page.locator("#errors-user_prompt")).to_contain_text("At most 500 characters (501).")
    expect(page.locator("#submit-button")).to_be_disabled()
    prompt.press("Backspace")
    expect(page.locator("#errors-user_prompt")).to_be_empty()
    expect(page.locator("#submit-button")).to_be_enabled()

    page.locator("#submit-button").click()

    page.wait_for_url(re.compile(r"/tasks/[0-9a-f-]{36}/$"))
    assert Task.objects.get().request_body["user_prompt"] == MULTI_LINE_PROMPT


def test_without_javascript_the_browsers_crlf_form_post_is_sent_with_lf(browser, live_server, user):
    """The browser's own form encoding (no htmx) posts a textarea's line breaks as CRLF."""
    from tests.conftest import PASSWORD

    user.groups.add(member_group())
    credential = Credential(
        name="Stand-in", kind=Credential.Kind.AISA, base_url=f"{live_server.url}/sandbox/apis/v1/dataforseo",
        is_default=True,
    )  # fmt: skip
    credential.set_secret("sandbox-key")
    credential.save()
    make_catalog()
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.get_username())
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto("/new/")
    page.get_by_label("Model").select_option("gpt-4.1")
    page.get_by_label("User prompt").fill(MULTI_LINE_PROMPT)

    page.locator("#submit-button").click()

    page.wait_for_url(re.compile(r"/tasks/[0-9a-f-]{36}/$"))
    assert Task.objects.get().request_body["user_prompt"] == MULTI_LINE_PROMPT
    context.close()


def test_the_counter_leaves_out_a_line_break_after_the_prompt_as_the_server_does(builder_page):
    """The submit strips the line break a paste often ends with: 500 characters and one are 500, not 501."""
    page = builder_page
    page.get_by_label("Model").select_option("gpt-4.1")

    page.get_by_label("User prompt").fill("x" * 500 + "\n")

    counter = page.locator('[data-counter-for="id_user_prompt"]')
    expect(counter).to_have_text("500 / 500")
    expect(counter).not_to_have_class(re.compile("over-limit"))
    expect(page.locator("#errors-user_prompt")).to_be_empty()
    expect(page.locator("#submit-button")).to_be_enabled()
