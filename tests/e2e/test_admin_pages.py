"""An Admin walks the spend and control pages in a real browser: no console error, no CSP violation;
a Member is turned away from every one of them."""

from decimal import Decimal

import pytest

from tasks.spend import periods
from tests.e2e.browsing import log_in, settle
from tests.factories import make_credential, make_task

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN_PAGES = ["/spend/", "/budgets/", "/credentials/", "/people/", "/audit/"]


@pytest.fixture
def some_spend(team_admin):
    credential = make_credential()
    for model, cost in (("gpt-4.1", "0.0031"), ("claude-sonnet-4-5", "0.0124")):
        make_task(credential=credential, model_name=model, status="completed", spend=Decimal(cost))
    return credential


def test_an_admin_sees_who_spent_what_and_every_admin_page_loads_cleanly(page, login, team_admin, some_spend):
    login(team_admin.get_username())
    page.get_by_role("link", name="Spend", exact=True).click()
    page.wait_for_url(lambda url: url.endswith("/spend/"))
    settle(page)
    assert page.get_by_role("heading", name="By person").is_visible()
    assert page.get_by_role("heading", name="By model").is_visible()
    assert page.locator("svg").count() > 0  # the charts are drawn
    for path in ADMIN_PAGES[1:]:
        page.goto(path)
        settle(page)
        assert page.locator("h1").first.is_visible()


def test_a_member_is_refused_every_admin_page(page, login, member_user, browser_errors):
    login(member_user.get_username())
    assert page.get_by_role("link", name="Spend", exact=True).count() == 0
    for path in ADMIN_PAGES:
        response = page.goto(path)
        assert response.status == 403, path
        assert page.get_by_role("heading", name="You can't open this page").is_visible()
    # Chromium logs each refused page as a console error; those are the point of this test.
    browser_errors[:] = [error for error in browser_errors if "status of 403" not in error]


def test_a_spend_period_picked_in_place_is_the_whole_page_again_after_the_back_button(
    page, login, team_admin, some_spend
):
    """The custom period swaps the report with htmx and pushes its URL; coming back to that URL after
    another page shows the whole spend page, not the report fragment alone (Vary: HX-Request)."""
    login(team_admin.get_username())
    page.goto("/spend/")
    # (on a wide screen the panel is always open)
    page.get_by_role("combobox", name="Over time by").select_option("week")
    page.evaluate("window.stillTheSamePage = true")
    page.get_by_role("button", name="Show").click()

    page.wait_for_url(lambda url: "by=week" in url)
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.stillTheSamePage") is True  # swapped in place
    page.get_by_role("link", name="Tasks", exact=True).click()  # another page, a whole load
    page.wait_for_url(lambda url: url.endswith("/tasks/"))
    page.go_back()

    page.wait_for_url(lambda url: "by=week" in url)
    assert page.get_by_role("heading", name="Spend", exact=True).is_visible()
    assert page.get_by_role("link", name="Export CSV").is_visible()
    assert page.get_by_role("heading", name="By person").is_visible()


def test_the_export_button_exports_the_period_picked_in_place(page, login, team_admin, some_spend):
    login(team_admin.get_username())
    page.goto("/spend/")
    page.get_by_role("combobox", name="Period").select_option("last_month")
    page.get_by_role("button", name="Show").click()

    page.wait_for_url(lambda url: "period=last_month" in url)
    export = page.get_by_role("link", name="Export CSV")
    assert "period=last_month" in export.get_attribute("href")
    assert export.count() == 1


@pytest.mark.parametrize("script", [True, False], ids=["with script", "without script"])
def test_a_preset_chosen_on_a_custom_periods_page_shows_that_preset(
    open_page, team_admin, some_spend, script
):
    """The custom period's dates stay in the From and To inputs: choosing “Last 7 days” and pressing Show
    shows the last 7 days, not those dates again."""
    page = open_page(java_script_enabled=script)
    log_in(page, team_admin.get_username())
    page.goto("/spend/?period=custom&date_from=2026-01-05&date_to=2026-01-20")
    assert page.locator("h2.period-title").inner_text().startswith("5–20 Jan 2026")

    page.get_by_role("combobox", name="Period").select_option("last_7")
    page.get_by_role("button", name="Show").click()

    page.wait_for_url(lambda url: "period=last_7" in url)
    last_7 = periods.period_preset("last_7").label
    page.locator("h2.period-title").filter(has_text=last_7).wait_for()
    assert page.get_by_label("From").input_value() == ""
    assert page.get_by_role("combobox", name="Period").input_value() == "last_7"


# Each table cell's box against its row's: a cell drawn at a height of its own (a flex box in place of a table
# cell) puts its bottom border out of line with the row's.
CELLS_OUT_OF_LINE = """
() => [...document.querySelectorAll("main tbody tr")].flatMap((row) => {
  const own = row.getBoundingClientRect();
  return [...row.cells]
    .filter((cell) => Math.abs(cell.getBoundingClientRect().bottom - own.bottom) > 1)
    .map((cell) => `${cell.className || cell.tagName} in "${row.cells[0].textContent.trim().slice(0, 30)}"`);
})
"""


@pytest.mark.parametrize("path", ["/people/", "/credentials/", "/budgets/"])
def test_the_action_buttons_line_up_with_their_rows(page, login, team_admin, some_spend, path):
    from tasks.models import Budget

    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("50"), created_by=team_admin)
    login(team_admin.get_username())
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(path)

    assert page.locator("main td.actions").count() > 0
    assert page.evaluate(CELLS_OUT_OF_LINE) == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_on_a_phone_the_spend_breakdowns_keep_each_name_whole(open_page, team_admin, some_spend, scheme):
    page = open_page(color_scheme=scheme, viewport={"width": 390, "height": 844})
    log_in(page, team_admin.get_username())

    page.goto("/spend/")

    # A name may wrap between its words (or after a hyphen, colon or slash), never a letter or two per line
    # ("ChatGP" / "T"): no more lines than parts.
    broken = page.evaluate(
        """() => [...document.querySelectorAll(".spend-table th.group")]
          .filter((cell) => cell.checkVisibility())
          .filter((cell) => {
            const parts = cell.textContent.trim().split(/[\\s:/-]+/).length;
            const range = document.createRange();
            range.selectNodeContents(cell);
            const lines = new Set([...range.getClientRects()].map((rect) => Math.round(rect.top))).size;
            return lines > parts;
          })
          .map((cell) => cell.textContent.trim())"""
    )
    assert broken == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_on_a_phone_the_spend_charts_labels_are_readable_and_the_page_does_not_scroll_sideways(
    open_page, team_admin, some_spend, scheme
):
    page = open_page(color_scheme=scheme, viewport={"width": 390, "height": 844})
    log_in(page, team_admin.get_username())

    page.goto("/spend/")

    # Every label drawn in a chart (names, amounts, axis ticks): its glyphs at least 8 px high on screen.
    heights = page.evaluate(
        """() => [...document.querySelectorAll(".chart-wrap svg text")]
          .filter((text) => text.checkVisibility())
          .map((text) => text.getBoundingClientRect().height)"""
    )
    assert heights, "no chart labels on the spend page"
    assert min(heights) >= 8, f"chart labels {min(heights):.1f} px high"
    width, scroll_width = page.evaluate("[innerWidth, document.documentElement.scrollWidth]")
    assert scroll_width <= width


@pytest.mark.parametrize(
    "screen",
    [{}, {"color_scheme": "dark", "viewport": {"width": 390, "height": 844}}],
    ids=["laptop light", "phone dark"],
)
def test_the_no_worker_warnings_are_drawn_as_warnings_on_home_the_task_page_and_the_queue(
    open_page, team_admin, screen
):
    """Tasks ready to send for five minutes and no worker: each page's warning is a tinted, framed box, not a
    line of plain text lost among the others (the alert style lived in the builder's stylesheet only)."""
    from datetime import timedelta

    from django.utils import timezone

    from tasks.models import SendChunk
    from tasks.submission import sending

    spec = sending.TaskSpec(provider="chat_gpt", body={"user_prompt": "Parks?", "model_name": "gpt-4.1"})
    (task_id,) = sending.submit_task_ids(specs=[spec], credential=make_credential(), user=team_admin)
    SendChunk.objects.update(not_before=timezone.now() - timedelta(minutes=5))
    page = open_page(**screen)
    log_in(page, team_admin.get_username())

    for path in ("/", f"/tasks/{task_id}/", "/queue/"):
        page.goto(path)
        warning = page.locator(".alert-warning", has_text="no worker has been seen").or_(
            page.locator(".alert-warning", has_text="No worker has been seen")
        )
        style = warning.first.evaluate(
            "(box) => { const s = getComputedStyle(box); return [s.backgroundColor, s.borderTopStyle]; }"
        )
        assert style[0] not in ("rgba(0, 0, 0, 0)", "transparent") and style[1] == "solid", (path, style)
        width, scroll_width = page.evaluate("[innerWidth, document.documentElement.scrollWidth]")
        assert scroll_width <= width, path


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_on_a_phone_the_spend_over_time_chart_opens_on_its_latest_days(open_page, team_admin, scheme):
    """At 390 px the chart scrolls sideways in its frame; it opened on its first days, so "Last 30 days"
    with today's spend showed an empty chart unless one thought to scroll it."""
    from django.utils import timezone

    credential = make_credential()
    make_task(credential=credential, status="completed", spend=Decimal("0.25"), created_at=timezone.now())
    page = open_page(color_scheme=scheme, viewport={"width": 390, "height": 844})
    log_in(page, team_admin.get_username())

    page.goto("/spend/?period=last_30")

    shown = page.evaluate(
        """() => {
          const wrap = document.querySelector(".chart-wrap");
          const frame = wrap.getBoundingClientRect();
          const bars = [...wrap.querySelectorAll(".chart-bar")].map((bar) => bar.getBoundingClientRect());
          const inside = (bar) => bar.left >= frame.left && bar.right <= frame.right;
          return bars.filter((bar) => bar.height > 1 && inside(bar)).length;
        }"""
    )
    assert shown == 1
