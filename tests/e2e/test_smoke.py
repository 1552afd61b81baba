"""A person opens the dashboard, logs in and lands on a page that works, with nothing blocked by the CSP."""

import re

import pytest
from playwright.sync_api import expect

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
