"""An accessibility audit of every main page with axe-core: the WCAG 2.0 and 2.1 level A and AA rules and
axe's best-practice rules (landmarks, headings, empty table headers and the like), with the OS in light and in
dark mode. Logged out (the login page, also after a wrong password), then as an Admin, so the admin-only pages
show too, on the data the look-and-feel walk seeds (tasks in every status, one answered with citations, tags,
labels, a template, a batch, budgets, a brand set, a monitor) and a few more rows (the monitor's runs, an
alert). Forms are audited again after a submit, with their errors shown; so are the missing page and, on a
phone, the nav's menu, open.

axe goes in through Playwright's `page.evaluate` (the DevTools protocol), which the page's Content Security
Policy does not govern, so the app's CSP stays as it is and the conftest's CSP-violation check stays on:
`page.add_script_tag(content=...)` is an inline script without the nonce, which the CSP blocks, and
`bypass_csp` would audit another page than the one people get.

Each page is loaded once and audited in both schemes: the scheme is switched with `page.emulate_media`,
the same emulation as a context's `color_scheme`; with reduced motion (no transitions) the dark colours are
drawn at once. The whole audit takes about half a minute.
"""

from datetime import UTC, datetime

import pytest
from axe_playwright_python.sync_playwright import Axe

from tasks.models import (
    Alert,
    AlertDelivery,
    AlertDestination,
    Batch,
    Budget,
    Credential,
    Monitor,
    MonitorRun,
    PromptTemplate,
    Task,
)
from tests.e2e.browsing import log_in, settle
from tests.e2e.test_look_and_feel import walk  # noqa: F401 (the look-and-feel walk's data, as a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCHEMES = ["light", "dark"]
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
AXE_SCRIPT = Axe().axe_script  # the axe-core the package bundles
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
    "resultTypes": ["violations"],
}
SHOWN = 3  # elements shown per violation


def _violations(page, where: str) -> list[str]:
    """axe's violations on the page as drawn now, each with what to fix and its first few elements."""
    results = page.evaluate("(options) => axe.run(document, options)", AXE_OPTIONS)
    problems = []
    for violation in results["violations"]:
        nodes = violation["nodes"]
        lines = [f"{where}: {violation['id']} ({violation['impact']}), {len(nodes)}×: {violation['help']}"]
        for node in nodes[:SHOWN]:
            target = " ".join(map(str, node["target"]))
            summary = " ".join(node.get("failureSummary", "").split())
            lines.append(f"    at {target}\n      {node['html'][:240]}\n      {summary[:400]}")
        if len(nodes) > SHOWN:
            lines.append(f"    …and {len(nodes) - SHOWN} more")
        problems.append("\n".join(lines))
    return problems


def _audit(page, where: str) -> list[str]:
    """The page audited in light and in dark mode (and left in light mode)."""
    page.evaluate(AXE_SCRIPT)
    problems = []
    for scheme in SCHEMES:
        page.emulate_media(color_scheme=scheme)
        problems += _violations(page, f"{where} ({scheme})")
    page.emulate_media(color_scheme="light")
    return problems


@pytest.fixture
def pages(walk):  # noqa: F811 (the imported fixture)
    """The look-and-feel walk's pages, plus the ones it leaves out."""
    monitor = Monitor.objects.get(name="Parks weekly")
    destination = AlertDestination.objects.create(kind="email", monitor=monitor, emails="ops@example.com")
    alert = Alert.objects.create(key="k1", kind="run_failed", monitor=monitor, message="The run failed.")
    AlertDelivery.objects.create(alert=alert, destination=destination, target="ops@example.com", state="sent")
    batch = Batch.objects.get(name="Parks, five countries")
    done = {"batch": batch, "task_count": 5, "completed_count": 5, "cost": batch.estimated_charge}
    for day, state, fields in [
        (1, MonitorRun.State.DONE, done),
        (2, MonitorRun.State.SKIPPED, {"reason": "Over the monthly cap."}),
        (3, MonitorRun.State.FAILED, {"reason": "The upstream refused the batch."}),
    ]:
        MonitorRun.objects.create(
            monitor=monitor, slot=datetime(2026, 11, day, 9, tzinfo=UTC), state=state, **fields
        )
    brand_set = walk["pages"]["brand set visibility"]
    template = PromptTemplate.objects.get(name="Parks by country")
    failed, lost, pending = (Task.objects.filter(status=s).first() for s in ("failed", "unknown", "pending"))
    first_version = template.versions.order_by("number").first()
    return {
        **walk["pages"],
        "failed task": f"/tasks/{failed.pk}/",
        "task whose reply was lost": f"/tasks/{lost.pk}/",
        "pending task": f"/tasks/{pending.pk}/",
        "filtered task list": "/tasks/?status=completed&sort=cost&provider=chat_gpt",
        "template version": f"/templates/{template.pk}/versions/{first_version.pk}/",
        "budget edit": f"/budgets/{Budget.objects.first().pk}/",
        "credential edit": f"/credentials/{Credential.objects.first().pk}/",
        "monitor visibility": f"/monitors/{monitor.slug}/visibility/",
        "brand set test": f"{brand_set}test/",
        "brand set delete": f"{brand_set}delete/",
        "visibility": "/visibility/",
        "tag visibility": "/visibility/tags/team-a:amusement-parks/france/",
        "brand set answers": f"{brand_set}answers/",
        "brand set edit": f"{brand_set}edit/",
        "new brand": f"{brand_set}brands/new/",
        "new brand set": "/visibility/sets/new/",
        "alerts": "/alerts/",
        "queue": "/queue/",
        "monitor edit": f"/monitors/{monitor.slug}/edit/",
        "new monitor": "/monitors/new/",
        "new batch": f"/templates/{template.pk}/batch/",
        "new budget": "/budgets/new/",
        "new credential": "/credentials/new/",
        "new person": "/people/new/",
    }, walk["admin"]


def _refused_builder(page):
    page.get_by_label("Tag").fill("no prompt yet")
    page.evaluate("document.getElementById('builder-form').requestSubmit()")  # its button is disabled


def _checked_batch(page):
    page.get_by_label("Rows (CSV)").fill("country\nFrance\nSpain")
    page.get_by_role("button", name="Check rows and cost").click()


def _refused_batch(page):
    page.get_by_label("Rows (CSV)").fill("nothing,like\nthe,variables")
    page.get_by_role("button", name="Check rows and cost").click()


def _submit_empty(page):
    """The page's form sent as it comes, past the browser's own checks (`required`), to the server's."""
    page.locator("main form[method=post]").first.evaluate(
        "(form) => { form.noValidate = true; form.requestSubmit(); }"
    )


# Forms after a submit: the page (a URL, or a name in `pages`) and what is done there.
FORMS = {
    "builder, refused": ("/new/", _refused_builder),
    "new batch, rows checked": ("new batch", _checked_batch),
    "new batch, rows refused": ("new batch", _refused_batch),
    "new monitor, refused": ("new monitor", _submit_empty),
    "new budget, refused": ("new budget", _submit_empty),
    "new person, refused": ("new person", _submit_empty),
    "new credential, refused": ("new credential", _submit_empty),
    "new brand, refused": ("new brand", _submit_empty),
    "new brand set, refused": ("new brand set", _submit_empty),
    "password change, refused": ("password change", _submit_empty),
}


def test_every_page_passes_axes_wcag_a_and_aa_and_best_practice_rules(open_page, pages, browser_errors):
    urls, admin = pages
    page = open_page(viewport=LAPTOP, reduced_motion="reduce")
    page.goto("/accounts/login/")
    problems = _audit(page, "login")
    page.get_by_label("Username").fill(admin.get_username())
    page.get_by_label("Password").fill("not the password")
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    problems += _audit(page, "login, refused")
    log_in(page, admin.get_username())

    for name, path in urls.items():
        if path is None:  # the tag page, followed from the tags page
            path = page.locator("#tag-results a.tag").first.get_attribute("href")
        response = page.goto(path)
        assert response.status == 200, f"{name} ({path}) answered {response.status}"
        settle(page)
        problems += _audit(page, name)
    for name, (path, submit) in FORMS.items():
        page.goto(urls.get(path, path))
        settle(page)
        with page.expect_navigation():
            submit(page)
        settle(page)
        problems += _audit(page, name)
    assert page.goto("/no-such-page/").status == 404
    problems += _audit(page, "not found")
    page.set_viewport_size(PHONE)  # the nav folds behind a menu button
    page.goto("/")
    settle(page)
    page.locator(".navmenu > summary").click()
    problems += _audit(page, "home on a phone, the menu open")

    # The refused forms answer 400 or 422 and the missing page 404, which Chromium logs; those are the point.
    browser_errors[:] = [error for error in browser_errors if "status of 4" not in error]
    assert not problems, f"{len(problems)} axe violations:\n" + "\n".join(problems)
