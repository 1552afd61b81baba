"""A person renames a prompt template on its page: a refused name shows beside the field with what they typed,
then a free one is saved in place (htmx), the heading and the tab's title follow, and no version is added."""

import pytest
from playwright.sync_api import expect

from tasks.models import PromptTemplate
from tests.factories import make_template_version, member_group

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_renaming_a_template_in_place(logged_in_page, user):
    user.groups.add(member_group())
    make_template_version("Food")
    drinks = make_template_version("Drinks").template
    page = logged_in_page
    page.goto(f"/templates/{drinks.pk}/")

    page.get_by_text("Edit details").click()
    page.get_by_label("Name").fill("food")
    page.get_by_role("button", name="Save details").click()

    expect(page.locator("#template-details")).to_contain_text("A template named “food” already exists.")
    expect(page.get_by_label("Name")).to_have_value("food")

    page.get_by_label("Name").fill("Drinks and cocktails")
    page.get_by_label("Description").fill("Bars worth the trip.")
    page.get_by_role("button", name="Save details").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Drinks and cocktails")
    expect(page.get_by_role("status")).to_have_text("Details saved.")
    expect(page).to_have_title("Drinks and cocktails · LLM Responses")
    expect(page.locator("#template-details")).to_contain_text("Bars worth the trip.")
    assert page.url.endswith(f"/templates/{drinks.pk}/")
    assert PromptTemplate.objects.get(pk=drinks.pk).versions.count() == 1
