"""A form posted with htmx disables its buttons while it is on its way (static/js/app.js); the button pressed
from the keyboard gets the focus back once the answer is in, instead of leaving it at the top of the page."""

import time

import pytest
from playwright.sync_api import expect

from tasks.models import Brand, BrandSet
from tests.e2e.browsing import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_slow_htmx_post_gives_the_focus_back_to_the_button_pressed(page, team_admin):
    brand_set = BrandSet.objects.create(name="Coffee")
    Brand.objects.create(brand_set=brand_set, name="Acme", is_ours=True)

    def slow_post(route):
        if route.request.method == "POST":
            time.sleep(0.5)  # long enough for the button to be disabled while it waits
        route.continue_()

    page.route("**/test/", slow_post)
    log_in(page, team_admin.get_username())
    page.goto(f"/visibility/sets/{brand_set.pk}/test/")
    page.get_by_label("An answer").fill("Acme is good.")
    button = page.get_by_role("button", name="Find brands")
    button.focus()

    page.keyboard.press("Enter")

    expect(page.locator("#match-result")).to_contain_text("Matches")
    expect(button).to_be_enabled()
    expect(button).to_be_focused()
