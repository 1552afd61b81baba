"""Steps many browser tests share."""

from tests.conftest import PASSWORD


def log_in(page, username: str, password: str = PASSWORD) -> None:
    """Log `page` in through the real login form and wait until it has left the login page."""
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def dialog_answer(questions: list, *, accept: bool):
    """A `page.once("dialog", …)` handler: notes the question asked (a data-confirm's), then accepts or
    dismisses it."""

    def handler(dialog):
        questions.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    return handler


# The page as a person sees it once htmx has fetched what the page asks for (a builder's checks, the spend
# page's balance) and swapped it in. "networkidle" would also do, but it waits half a second on every page.
SETTLED = "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"


def settle(page) -> None:
    """Wait until the page has loaded and no htmx request or swap is under way."""
    page.wait_for_load_state()
    page.wait_for_function(SETTLED)
