"""A person watches a batch's page while its tasks finish: the counts and the table follow by themselves,
polling stops once every task is final, and no swap trips the Content Security Policy. A batch mixing
ChatGPT and Claude models goes from the checklist to its page; the batch list is in the navigation."""

import pytest
from playwright.sync_api import expect

from tasks.models import Batch, Credential, Task
from tasks.prompt_templates.services import template_create
from tests.conftest import sandbox_api_key
from tests.factories import make_catalog, make_task, member_group

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def food_batch_page(page, user, prompt: str = "Best {{dish}}?"):
    """The batch page of a one-model ChatGPT template "Food", opened by `user` made a Member."""
    user.groups.add(member_group())
    make_catalog()
    template = template_create(
        name="Food", provider="chat_gpt", fields={"user_prompt": prompt, "model_name": "gpt-4.1"}, user=user
    )
    page.goto(f"/templates/{template.pk}/batch/")
    return page


def test_the_batch_page_follows_its_tasks_until_they_are_done(logged_in_page, user):
    user.groups.add(member_group())
    batch = Batch.objects.create(name="Nightly bakeries", created_by=user, task_count=3)
    for i in range(3):
        make_task(status=Task.Status.SUBMITTED, batch=batch, user_prompt=f"Best bakery in city {i}?")
    page = logged_in_page
    page.goto(f"/batches/{batch.pk}/")
    expect(page.locator("tbody .badge-submitted")).to_have_count(3)

    batch.tasks.update(status=Task.Status.COMPLETED)

    expect(page.locator("tbody .badge-completed")).to_have_count(3, timeout=8_000)
    expect(page.locator(".kpi", has_text="Completed")).to_contain_text("3")
    expect(page.locator("#batch-live")).not_to_have_attribute("hx-trigger", "every 3s")


@pytest.fixture
def stand_in_credential(live_server):
    credential = Credential(
        name="Stand-in", kind=Credential.Kind.AISA, base_url=f"{live_server.url}/sandbox/apis/v1/dataforseo",
        is_default=True,
    )  # fmt: skip
    credential.set_secret(sandbox_api_key())
    credential.save()
    return credential


def test_a_batch_mixing_chatgpt_and_claude_goes_from_the_checklist_to_its_page(
    logged_in_page, user, stand_in_credential
):
    user.groups.add(member_group())
    make_catalog()
    template = template_create(
        name="Food", provider="chat_gpt", fields={"user_prompt": "Best {{dish}} in {{city}}?"}, user=user
    )
    page = logged_in_page
    page.goto(f"/templates/{template.pk}/")
    page.get_by_role("link", name="Run as batch").click()

    page.get_by_label("Name").fill("Dishes on both")
    page.get_by_role("checkbox", name="gpt-4.1 (web search)", exact=True).check()
    page.get_by_role("checkbox", name="claude-3-5-haiku (web search)", exact=True).check()
    page.get_by_label("Rows (CSV)").fill("dish,city\npho,Hanoi\nramen,Tokyo\n")
    page.get_by_role("button", name="Check rows and cost").click()

    expect(page.locator("#plan")).to_contain_text("4 tasks")
    expect(page.locator("#plan")).to_contain_text(
        "Sent as one submission per provider (ChatGPT, then Claude)"
    )
    page.get_by_role("button", name="Submit 4 tasks").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Dishes on both")
    expect(page.locator("tbody tr")).to_have_count(4)
    expect(page.locator("tbody")).to_contain_text("ChatGPT")
    expect(page.locator("tbody")).to_contain_text("Claude")
    expect(page.locator("tbody tr", has_text="claude-3-5-haiku").first).to_contain_text("pho")
    crumbs = page.get_by_role("navigation", name="Breadcrumb")
    expect(crumbs).to_contain_text("Templates › Food › Batches › Dishes on both")
    assert sorted(Task.objects.order_by().values_list("provider", flat=True).distinct()) == [
        "chat_gpt",
        "claude",
    ]

    crumbs.get_by_role("link", name="Batches").click()
    row = page.locator("tbody tr", has_text="Dishes on both")
    expect(row).to_contain_text("2 × 2")
    expect(row).to_contain_text(user.get_username())


def test_the_batch_list_is_in_the_navigation(logged_in_page, user):
    user.groups.add(member_group())
    batch = Batch.objects.create(name="Nightly bakeries", created_by=user, task_count=1)
    make_task(status=Task.Status.FAILED, batch=batch)
    page = logged_in_page

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Batches").click()

    row = page.locator("tbody tr", has_text="Nightly bakeries")
    expect(row).to_contain_text("Failed")
    row.get_by_role("link", name="Nightly bakeries").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Nightly bakeries")
    expect(page.get_by_role("link", name="Export CSV")).to_have_attribute(
        "href", f"/tasks/export.csv?batch={batch.pk}"
    )


def test_enter_in_the_name_after_a_check_checks_again_and_sends_nothing(logged_in_page, user, credential):
    """Checked, then the batch named, then Enter: the form's first submit button was “Submit 1 task”, so
    Enter sent the paid batch. Enter checks the rows again; only the Submit button sends."""
    page = food_batch_page(logged_in_page, user)
    page.get_by_label("Rows (CSV)").fill("dish\npho\n")
    page.get_by_role("button", name="Check rows and cost").click()
    expect(page.get_by_role("button", name="Submit 1 task")).to_be_visible()

    page.get_by_label("Name").fill("Noodles")
    page.get_by_label("Name").press("Enter")

    expect(page.get_by_role("button", name="Submit 1 task")).to_be_visible()
    expect(page.get_by_label("Name")).to_have_value("Noodles")
    assert not Batch.objects.exists() and not Task.objects.exists()


def test_back_after_submitting_a_batch_then_the_same_batch_from_a_new_page_asks_before_a_second_batch(
    logged_in_page, user, stand_in_credential, browser_errors
):
    """Back shows the page just submitted (its own key): Submit there shows the batch already sent. The
    same rows sent from a new page (a reload, a second tab, or Back where the browser did not keep the
    page) name that batch and send nothing until "Send it again" is pressed."""
    user.groups.add(member_group())
    make_catalog()
    template = template_create(
        name="Food",
        provider="chat_gpt",
        fields={"user_prompt": "Best {{dish}}?", "model_name": "gpt-4.1"},
        user=user,
    )
    page = logged_in_page

    def send(name: str) -> None:
        page.get_by_label("Name").fill(name)
        page.get_by_label("Rows (CSV)").fill("dish\npho\nramen\n")
        page.get_by_role("button", name="Check rows and cost").click()
        page.get_by_role("button", name="Submit 2 tasks").click()

    page.goto(f"/templates/{template.pk}/batch/")
    send("Noodles")
    expect(page.get_by_role("heading", level=1)).to_have_text("Noodles")
    first = page.url

    page.go_back()
    page.get_by_role("button", name="Submit 2 tasks").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Noodles")
    assert page.url == first and Batch.objects.count() == 1

    page.goto(f"/templates/{template.pk}/batch/")  # a new page: a new key, the rows pasted again
    send("Noodles again")

    warning = page.locator(".alert-warning", has_text="You sent this same batch")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("Noodles, 2 tasks. Sending it again makes 2 more tasks, charged again.")
    assert Batch.objects.count() == 1 and Task.objects.count() == 2
    browser_errors.clear()  # the page's 422, as Chromium logs it: expected here
    page.set_viewport_size(
        {"width": 390, "height": 844}
    )  # on a phone, in dark mode: framed, no sideways scroll
    page.emulate_media(color_scheme="dark")
    expect(warning.get_by_role("button", name="Send it again")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert warning.evaluate("e => getComputedStyle(e).borderTopStyle") != "none"
    assert first.endswith(warning.get_by_role("link", name="Noodles").get_attribute("href"))
    expect(page.get_by_label("Rows (CSV)")).to_have_value("dish\npho\nramen\n")

    warning.get_by_role("button", name="Send it again").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Noodles again")
    assert page.url != first and Batch.objects.count() == 2 and Task.objects.count() == 4


def test_the_charge_shown_follows_a_csv_file_chosen_after_a_check(logged_in_page, user, stand_in_credential):
    """Checked with two pasted rows, then a file of three chosen: the page went on saying “2 tasks” and
    “Submit 2 tasks” for a file it had not read. Choosing the file checks it: its tasks and charge are
    shown, and Submit sends what they say."""
    page = food_batch_page(logged_in_page, user, prompt="Best {{dish}} in {{city}}?")
    page.get_by_label("Rows (CSV)").fill("dish,city\npho,Hanoi\nramen,Tokyo\n")
    page.get_by_role("button", name="Check rows and cost").click()
    expect(page.locator("#plan")).to_contain_text("2 tasks (2 rows × 1 model), charged $0.0204")

    rows = b"Dish;City\r\npho;Hanoi\r\nramen;Tokyo\r\npizza;Napoli\r\n"
    page.get_by_label("…or upload a CSV file").set_input_files(
        {"name": "rows.csv", "mimeType": "text/csv", "buffer": rows}
    )

    expect(page.locator("#plan")).to_contain_text("3 tasks (3 rows × 1 model), charged $0.0306")
    expect(page.locator("#plan")).to_contain_text("rows.csv")
    page.get_by_role("button", name="Submit 3 tasks").click()
    expect(page.locator("tbody tr")).to_have_count(3)
    assert Task.objects.count() == 3


def test_a_csv_file_that_cannot_be_read_takes_the_charge_away_and_says_why(
    logged_in_page, user, stand_in_credential
):
    page = food_batch_page(logged_in_page, user)
    page.get_by_label("Rows (CSV)").fill("dish\npho\n")
    page.get_by_role("button", name="Check rows and cost").click()
    expect(page.get_by_role("button", name="Submit 1 task")).to_be_visible()

    page.get_by_label("…or upload a CSV file").set_input_files(
        {"name": "rows.xlsx", "mimeType": "text/csv", "buffer": b"PK\x03\x04\x00\x00binary"}
    )

    expect(page.locator("#plan")).to_contain_text("This is a spreadsheet workbook, not a CSV file.")
    expect(page.get_by_role("button", name="Submit 1 task")).to_have_count(0)
    assert not Task.objects.exists()


def test_a_change_made_while_the_file_is_checked_is_checked_next(logged_in_page, user, stand_in_credential):
    page = food_batch_page(logged_in_page, user)

    page.get_by_label("…or upload a CSV file").set_input_files(
        {"name": "rows.csv", "mimeType": "text/csv", "buffer": b"dish\npho\nramen\nsoup\n"}
    )
    page.wait_for_timeout(350)  # the file's check is on its way
    page.get_by_role("checkbox", name="gpt-4.1-mini (web search)", exact=True).check()

    expect(page.locator("#plan")).to_contain_text("6 tasks (3 rows × 2 models)")
    expect(page.get_by_role("button", name="Submit 6 tasks")).to_be_visible()
