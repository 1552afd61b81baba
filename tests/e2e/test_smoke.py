"""A person opens the dashboard, logs in and lands on a page that works, with nothing blocked by the CSP."""

import re

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def test_login_page_loads_without_errors_or_csp_violations(page, live_server):
    response = page.goto("/accounts/login/")

    assert response.status == 200
    assert "nonce-" in response.headers["content-security-policy"]
    expect(page).to_have_title(re.compile(r"Log in · LLM Responses"))
    expect(page.get_by_role("button", name="Log in")).to_be_visible()


def test_logging_in_shows_the_home_page(logged_in_page, live_server, user):
    page = logged_in_page

    assert page.url.rstrip("/") == live_server.url
    expect(page).to_have_title(re.compile(r"· LLM Responses$"))
    expect(page.get_by_role("link", name="LLM Responses")).to_be_visible()
    expect(page.get_by_text(user.get_username(), exact=True).first).to_be_visible()


def test_the_stylesheet_is_applied(logged_in_page):
    topbar_display = logged_in_page.locator("header.topbar").evaluate("el => getComputedStyle(el).display")

    assert topbar_display == "flex"


def test_a_wrong_password_shows_an_error(page, login, django_user_model):
    django_user_model.objects.create_user(username="someone", password="the-right-password")

    login("someone", "a-wrong-password")

    assert "/accounts/login/" in page.url
    expect(page.get_by_role("alert")).to_contain_text("correct username and password")


def test_on_a_phone_in_dark_mode_the_navigation_folds_into_a_menu_that_opens_the_pages(open_page, user):
    """The links are built once per set of permissions (tasks/context_processors.py); on a narrow window
    they fold into "Menu", which opens on a tap and shows this member's links."""
    page = open_page(color_scheme="dark", viewport={"width": 390, "height": 844})
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.get_username())
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Tasks")).to_be_hidden()

    page.get_by_text("Menu", exact=True).click()

    expect(nav.get_by_role("link")).to_have_text(
        ["New task", "Tasks", "Templates", "Batches", "Monitors", "Tags", "Visibility"]
    )
    nav.get_by_role("link", name="Tasks").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Tasks")
