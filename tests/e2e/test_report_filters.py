"""The custom period of the spend and visibility reports, used with the keyboard: "Show" redraws the report
in place (htmx) and the page around it follows, without losing the person's place."""

import re

import pytest
from django.contrib.auth.models import Group, Permission
from playwright.sync_api import expect

from tasks.models import Brand, BrandSet, BrandSetTag
from tasks.roles import ADMINS, ensure_roles
from tests.conftest import PASSWORD
from tests.e2e.browsing import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def admin(django_user_model):
    ensure_roles(group_model=Group, permission_model=Permission)
    admin = django_user_model.objects.create_user(username="the-admin", password=PASSWORD)
    admin.groups.add(Group.objects.get(name=ADMINS))
    return admin


@pytest.fixture
def brand_set(db):
    brand_set = BrandSet.objects.create(name="Coffee")
    Brand.objects.create(brand_set=brand_set, name="Acme", is_ours=True)
    BrandSetTag.objects.create(brand_set=brand_set, tag="coffee")
    return brand_set


def _show_november(page) -> None:
    page.locator("#id_period").select_option("custom")
    page.locator("#id_date_from").fill("2026-11-01")
    page.locator("#id_date_to").fill("2026-11-30")
    page.get_by_role("button", name="Show").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".period-title")).to_contain_text("Nov 2026")


@pytest.mark.parametrize("path", ["/spend/", "/visibility/sets/{set}/", "/visibility/tags/coffee/"])
def test_show_keeps_the_focus_on_its_button_and_the_export_follows_the_period(page, admin, brand_set, path):
    log_in(page, admin.get_username())
    page.goto(path.format(set=brand_set.pk))

    _show_november(page)

    export = page.get_by_role("link", name="Export CSV")
    expect(export).to_have_attribute("href", re.compile(r"date_from=2026-11-01&date_to=2026-11-30"))
    expect(page.get_by_role("button", name="Show")).to_be_focused()


def test_on_a_phone_the_custom_period_stays_open_after_show(open_page, admin):
    page = open_page(viewport={"width": 390, "height": 844})
    log_in(page, admin.get_username())
    page.goto("/spend/")
    page.locator(".filters-panel > summary").click()

    _show_november(page)

    expect(page.locator(".filters-panel")).to_have_attribute("open", "")
    expect(page.get_by_role("button", name="Show")).to_be_focused()
