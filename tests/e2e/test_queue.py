"""The admins' sending queue, which redraws itself every 5 seconds, used with the keyboard."""

import pytest
from playwright.sync_api import expect

from tasks.submission import sending
from tests.e2e.browsing import log_in
from tests.factories import make_batch, make_credential

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_queue_redrawing_itself_keeps_the_focus_on_a_batch_link(page, team_admin):
    batch = make_batch(name="Parks of Lyon")
    spec = sending.TaskSpec(provider="chat_gpt", body={"user_prompt": "Parks?", "model_name": "gpt-4.1"})
    sending.submit_task_ids(specs=[spec], credential=make_credential(), user=team_admin, batch=batch)
    log_in(page, team_admin.get_username())
    page.goto("/queue/")
    link = page.get_by_role("link", name="Parks of Lyon")
    link.focus()

    with page.expect_response(
        lambda response: response.url.endswith("/queue/") and response.request.headers.get("hx-request")
    ):
        pass  # the next poll (every 5 s)
    page.wait_for_timeout(100)  # swapped and settled

    expect(link).to_be_focused()
