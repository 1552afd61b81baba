"""Browser tests: Playwright driving Debian's Chromium against `live_server`.

Every test here is marked `browser`, so `make test` skips them and `make test-browser` runs them.
A page that logs a console error, throws, or trips the Content Security Policy fails the test.
"""

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
E2E_DIR = Path(__file__).parent

# Report CSP violations explicitly too, with the directive, whatever Chromium prints to the console.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    for item in items:
        if E2E_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser():
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.skip(f"Chromium not installed at {CHROMIUM}; run: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django would refuse ORM calls under it.
    # Set here, not at import, so the rest of the suite (and the processes it starts) keep async safety.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def browser_errors():
    """Console errors, uncaught exceptions and CSP violations seen by `page`. Clear it after expecting one."""
    return []


def _open_page(browser, live_server, browser_errors, **options):
    """A page in a new browser context, its console errors, exceptions and CSP violations collected."""
    context = browser.new_context(base_url=live_server.url, **options)
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    page = context.new_page()
    page.set_default_timeout(10_000)

    def on_console(message):
        if message.type == "error":
            browser_errors.append(f"console error at {page.url}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: browser_errors.append(f"uncaught exception at {page.url}: {error}"))
    return page


def _fail_on_errors(browser_errors):
    if browser_errors:
        pytest.fail("The browser reported errors:\n" + "\n".join(browser_errors), pytrace=False)


@pytest.fixture
def page(browser, live_server, browser_errors):
    page = _open_page(browser, live_server, browser_errors)
    yield page
    page.context.close()
    _fail_on_errors(browser_errors)


@pytest.fixture
def open_page(browser, live_server, browser_errors):
    """Open a page in its own context with Playwright's context options, e.g.
    `open_page(color_scheme="dark", viewport={"width": 390, "height": 844}, java_script_enabled=False)`.
    Like `page`, a console error, an uncaught exception or a CSP violation fails the test."""
    pages = []

    def opener(**options):
        pages.append(_open_page(browser, live_server, browser_errors, **options))
        return pages[-1]

    yield opener
    for opened in pages:
        opened.context.close()
    _fail_on_errors(browser_errors)


@pytest.fixture
def login(page):
    """Log in through the real login form; returns a function taking username and password."""

    def log_in(username: str, password: str = PASSWORD):
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_load_state()
        return page

    return log_in


@pytest.fixture
def logged_in_page(page, login, user):
    """`page`, logged in through the login form as the `user` fixture (a member)."""
    login(user.get_username())
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    return page
