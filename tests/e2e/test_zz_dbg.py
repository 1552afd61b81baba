from tests.e2e.test_look_and_feel import *  # noqa
from tests.e2e.test_look_and_feel import _log_in, _fill_a_valid_task, _hold_posts


def test_dbg(open_page, walk):
    page = open_page()
    page.on("console", lambda m: print("CONSOLE", m.text))
    _log_in(page, walk["admin"].get_username())
    posts = _hold_posts(page, "**/new/")
    page.goto("/new/")
    _fill_a_valid_task(page)
    page.locator("#submit-button").click(no_wait_after=True)
    for i in range(6):
        print(
            i,
            page.evaluate(STATE, "#submit-button"),
            page.evaluate("document.getElementById('builder-form').className"),
            len(posts),
            page.url,
        )
        page.wait_for_timeout(200)
