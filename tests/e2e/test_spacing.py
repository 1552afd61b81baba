"""Spacing and alignment a person notices at once: a heading glued to the button above it, two stacked
columns twice as far apart as the cards in them, one figure framed and its neighbour not, a checkbox under
its label instead of beside it. Each measured in the browser, at a phone's and a laptop's width."""

from decimal import Decimal

import pytest

from tasks.models import Alert, AlertDelivery, AlertDestination, Budget
from tests.e2e.browsing import log_in
from tests.factories import make_catalog, make_task, make_template_version
from tests.monitors.factories import make_monitor

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}
CARD_GAP = 16  # var(--space-4): the space between two cards in a column

# The vertical space between the last box of the grid's first column and the first box of its second,
# with the grid's columns stacked: each column's boxes in the order they are drawn, top to bottom.
STACKED_GAP = """
(grid) => {
  const boxes = (column) => [...column.children]
    .filter((child) => getComputedStyle(child).position === "static" && child.getBoundingClientRect().height)
    .map((child) => child.getBoundingClientRect());
  const [first, second] = grid.children;
  const above = first.matches(".card") ? [first.getBoundingClientRect()] : boxes(first);
  const below = second.matches(".card") ? [second.getBoundingClientRect()] : boxes(second);
  return Math.min(...below.map((box) => box.top)) - Math.max(...above.map((box) => box.bottom));
}
"""


@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["390", "1366"])
def test_on_a_monitor_page_recent_alerts_stand_clear_of_the_add_destination_button(
    open_page, team_admin, credential, viewport
):
    monitor = make_monitor(credential=credential, owner=team_admin)
    destination = AlertDestination.objects.create(kind="email", monitor=monitor, emails="ops@example.com")
    alert = Alert.objects.create(key="k1", kind="run_failed", monitor=monitor, message="The run failed.")
    AlertDelivery.objects.create(alert=alert, destination=destination, target="ops@example.com", state="sent")
    page = open_page(viewport=viewport)
    log_in(page, team_admin.get_username())

    page.goto(f"/monitors/{monitor.slug}/")

    button = page.get_by_role("button", name="Add destination").bounding_box()
    heading = page.get_by_role("heading", name="Recent alerts").bounding_box()
    assert heading["y"] - (button["y"] + button["height"]) >= CARD_GAP


@pytest.mark.parametrize("width", [390, 900])
def test_stacked_the_task_pages_columns_are_one_card_gap_apart(open_page, user, credential, width):
    task = make_task(credential=credential, submitted_by=user, status="completed", answer_text="Paris.")
    page = open_page(viewport={"width": width, "height": 900})
    log_in(page, user.get_username())

    page.goto(f"/tasks/{task.pk}/")

    assert page.locator(".task-grid").evaluate(STACKED_GAP) == pytest.approx(CARD_GAP, abs=1)


@pytest.mark.parametrize("width", [390, 900])
def test_stacked_the_template_pages_columns_are_one_card_gap_apart(open_page, team_admin, width):
    template = make_template_version("Parks").template
    page = open_page(viewport={"width": width, "height": 900})
    log_in(page, team_admin.get_username())

    page.goto(f"/templates/{template.pk}/")

    assert page.locator(".builder-grid").evaluate(STACKED_GAP) == pytest.approx(CARD_GAP, abs=1)


@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["390", "1366"])
def test_the_builders_month_spend_and_budget_left_are_framed_alike(
    open_page, team_admin, credential, viewport
):
    make_catalog()
    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("50"), created_by=team_admin)
    page = open_page(viewport=viewport)
    log_in(page, team_admin.get_username())

    page.goto("/new/")
    page.wait_for_load_state("networkidle")  # the builder's first validation swaps the budgets in again

    frame = "(element) => { const s = getComputedStyle(element); return [s.borderTopWidth, s.borderTopStyle, s.backgroundColor, s.paddingTop]; }"  # noqa: E501
    spent = page.locator(".month-spend").evaluate(frame)
    left = page.locator("#budgets dl").filter(has_text="Left in the team budget").evaluate(frame)
    assert spent[1] == "solid" and spent[0] != "0px"
    assert left == spent


@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["390", "1366"])
def test_a_checkbox_filter_sits_beside_its_label(open_page, user, viewport):
    page = open_page(viewport=viewport)
    log_in(page, user.get_username())

    page.goto("/tasks/")
    page.evaluate("document.querySelector('.filters-panel').open = true")

    for name in ("Model as asked for", "Waiting over 30 min", "Cost not final yet"):
        label = page.locator("label", has_text=name).bounding_box()
        box = page.get_by_label(name).bounding_box()
        assert box["x"] + box["width"] <= label["x"], f"{name}: the box is not before its label"
        middle = box["y"] + box["height"] / 2
        assert label["y"] <= middle <= label["y"] + label["height"], (
            f"{name}: the box is not level with its label"
        )
