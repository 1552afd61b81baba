"""A person opens home, sees what needs attention, follows a count to exactly those tasks, and reads a lost
reply in plain words on its page, with Refresh now saying why it is off."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tasks.models import Task
from tests.factories import make_task, member_group

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_home_points_at_what_needs_attention(logged_in_page, user):
    user.groups.add(member_group())
    now = timezone.now()
    make_task(
        status=Task.Status.PENDING, user_prompt="Stuck for an hour", created_at=now - timedelta(hours=1)
    )
    make_task(
        status=Task.Status.PENDING, user_prompt="Sent a minute ago", created_at=now - timedelta(minutes=1)
    )
    lost = make_task(status=Task.Status.UNKNOWN, upstream_task_id=None, user_prompt="Reply never came")
    page = logged_in_page
    page.goto("/")

    attention = page.locator("#attention")
    expect(attention).to_contain_text("1 waiting more than 30 minutes")
    expect(attention).to_contain_text("1 lost their reply in the last 7 days")
    attention.get_by_role("link", name="waiting more than 30 minutes").click()

    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody")).to_contain_text("Stuck for an hour")
    expect(page.get_by_label("Waiting over 30 min")).to_be_checked()

    page.goto(f"/tasks/{lost.pk}/")
    expect(page.locator(".answer.unknown")).to_contain_text("its answer never came back")
    expect(page.get_by_role("button", name="Refresh now")).to_be_disabled()
    expect(page.locator("#refresh-why")).to_have_text("Reply lost: there is no upstream id to ask about.")
