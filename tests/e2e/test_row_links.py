"""A link in a table's row header (a brand set, a batch: the way into its page) looks like a link, while a
column header's sort link keeps the header's colour."""

import pytest
from playwright.sync_api import expect

from tasks.models import BrandSet
from tests.e2e.browsing import log_in
from tests.factories import make_batch, make_task

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

COLOR = "(element) => getComputedStyle(element).color"
# The colour of a plain link of the page's main content.
LINK_COLOR = """() => {
  const a = document.createElement("a");
  a.href = "#";
  document.querySelector("main").append(a);
  const color = getComputedStyle(a).color;
  a.remove();
  return color;
}"""


@pytest.mark.parametrize(
    ("path", "name"),
    [("/visibility/", "Coffee brands"), ("/batches/", "Parks of Lyon")],
    ids=["sets", "batches"],
)
def test_a_row_headers_link_looks_like_a_link(page, team_admin, path, name):
    BrandSet.objects.create(name="Coffee brands")
    make_batch(name="Parks of Lyon")
    log_in(page, team_admin.get_username())
    page.goto(path)

    row_link = page.locator("tbody th a", has_text=name)
    expect(row_link).to_be_visible()

    assert row_link.evaluate(COLOR) == page.evaluate(LINK_COLOR)


def test_a_sort_link_keeps_its_column_headers_colour(page, team_admin):
    make_task()
    log_in(page, team_admin.get_username())
    page.goto("/tasks/")

    sort = page.locator("thead th a", has_text="Cost")

    assert sort.evaluate(COLOR) == sort.locator("xpath=..").evaluate(COLOR)
