"""A tag's link leads to its page in a real browser, whatever the tag: browsers resolve `.` and `..`
path segments (also written %2E) and a line break cannot be in a URL, so such tags must be linked in a
form the browser leaves alone."""

import pytest
from playwright.sync_api import expect

from tests.factories import make_task, member_group

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TAGS = ["..", ".", "a/../b", "team-a\nq1", "trailing/", "50% off? #1", "naïve 東京"]


@pytest.mark.parametrize("tag", TAGS, ids=repr)
def test_every_tag_link_opens_that_tags_page(page, login, user, tag):
    user.groups.add(member_group())
    make_task(tag=tag)
    make_task(tag="other")
    make_task(tag="other")
    login(user.get_username())

    page.goto("/tags/")
    page.locator("a.tag").filter(has_not_text="other").click()

    expect(page.get_by_test_id("tag-count")).to_have_text("1")
    shown = " ".join(tag.split()) if "\n" in tag else tag  # a line break renders as a space
    expect(page.locator("h1 .tag")).to_have_text(shown)
