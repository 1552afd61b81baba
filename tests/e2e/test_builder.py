"""A person builds a request in the browser: switch provider, see a live error appear and clear, watch the
preview follow, submit to the stand-in and land on the task's page."""

import re

import pytest
from playwright.sync_api import expect

from tasks.models import Credential, Task
from tests.builder_factories import make_catalog, member_group

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


def test_adding_a_chain_turn_keeps_what_was_typed(builder_page):
    page = builder_page
    page.get_by_label("User prompt").fill("Typed before")

    page.get_by_role("button", name="Add a turn").click()

    expect(page.get_by_label("Turn 1 message")).to_be_visible()
    expect(page.get_by_label("User prompt")).to_have_value("Typed before")


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
    assert task.status == Task.Status.SUBMITTED
    assert task.request_body["web_search_country_iso_code"] == "FR"
    assert page.url.endswith(f"/tasks/{task.pk}/")
