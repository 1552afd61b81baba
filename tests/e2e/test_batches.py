"""A person watches a batch's page while its tasks finish: the counts and the table follow by themselves,
polling stops once every task is final, and no swap trips the Content Security Policy."""

import pytest
from playwright.sync_api import expect

from tasks.models import Batch, Task
from tests.builder_factories import member_group
from tests.factories import make_task

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_batch_page_follows_its_tasks_until_they_are_done(logged_in_page, user):
    user.groups.add(member_group())
    batch = Batch.objects.create(name="Nightly bakeries", created_by=user, task_count=3)
    for i in range(3):
        make_task(status=Task.Status.SUBMITTED, batch=batch, user_prompt=f"Best bakery in city {i}?")
    page = logged_in_page
    page.goto(f"/batches/{batch.pk}/")
    expect(page.locator("tbody .badge-submitted")).to_have_count(3)

    batch.tasks.update(status=Task.Status.COMPLETED)

    expect(page.locator("tbody .badge-completed")).to_have_count(3, timeout=8_000)
    expect(page.locator(".kpi", has_text="Completed")).to_contain_text("3")
    expect(page.locator("#batch-live")).not_to_have_attribute("hx-trigger", "every 3s")
