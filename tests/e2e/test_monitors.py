"""A new user's monitor, in the browser: a daily monitor of 3 prompts × 2 models (ChatGPT and Claude)
created from a template, run at its time by the scheduler against the stand-in (sent by the real worker
code, collected from the stand-in), its runs and answer changes shown, paused, resumed, and an alert sent
when its cap is reached."""

import re
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from playwright.sync_api import expect

from tasks.models import Credential, Monitor, MonitorRun, Task
from tasks.monitors.scheduler import scheduler_tick
from tasks.prompt_templates.services import template_create
from tasks.submission.collection import task_fetch
from tests.conftest import sandbox_api_key
from tests.e2e.browsing import dialog_answer
from tests.factories import make_catalog, member_group
from tests.submission.sending import send_planned

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def stand_in_credential(live_server):
    credential = Credential(
        name="Stand-in", kind=Credential.Kind.AISA, base_url=f"{live_server.url}/sandbox/apis/v1/dataforseo",
        is_default=True,
    )  # fmt: skip
    credential.set_secret(sandbox_api_key())
    credential.save()
    return credential


def run_slot(monitor: Monitor) -> MonitorRun:
    """The scheduler at the monitor's next slot, the worker's sending, the results collected."""
    monitor.refresh_from_db()
    scheduler_tick(now=monitor.next_run_at + timedelta(seconds=30))
    send_planned()
    time.sleep(0.6)  # the stand-in's task delay
    for task_id in Task.objects.filter(status=Task.Status.SUBMITTED).values_list("pk", flat=True):
        task_fetch(task_id=task_id)
    scheduler_tick(now=monitor.next_run_at - timedelta(seconds=1))  # brings the runs up to date
    return monitor.runs.order_by("-slot").first()


def test_a_daily_monitor_runs_shows_its_answers_pauses_resumes_and_alerts_at_its_cap(
    logged_in_page, user, stand_in_credential, settings
):
    settings.SANDBOX_DELIVER_CALLBACKS = False
    user.groups.add(member_group())
    make_catalog()
    template_create(
        name="Hotels", provider="chat_gpt", fields={"user_prompt": "Best hotel in {{city}}?"}, user=user
    )
    page = logged_in_page
    page.goto("/")
    page.get_by_role("link", name="Monitors").first.click()
    page.get_by_role("link", name="New monitor").click()

    page.get_by_label("Name").fill("Hotel watch")
    page.get_by_label("Prompt template version").select_option(label="Hotels · v1")
    page.get_by_label("Rows (CSV)").fill("city\nParis\nBerlin\nRome\n")
    page.get_by_label("Models").fill("gpt-4.1\nclaude-3-5-haiku")
    page.get_by_label("Time of day").fill("09:00")
    page.get_by_label("Time zone").select_option("Europe/Paris")
    expect(page.locator("#estimate")).to_contain_text("6 tasks", timeout=8_000)
    expect(page.locator("#estimate")).to_contain_text("runs in the next 30 days")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("heading", name="Hotel watch")).to_be_visible()
    expect(page.locator(".upcoming li")).to_have_count(5)
    monitor = Monitor.objects.get()

    first = run_slot(monitor)
    assert first.state == MonitorRun.State.DONE and first.completed_count == 6
    # The next day, one answer differs from the day before.
    second = run_slot(monitor)
    assert second.state == MonitorRun.State.DONE
    changed = second.batch.tasks.get(model_name="gpt-4.1", user_prompt="Best hotel in Paris?")
    Task.objects.filter(pk=changed.pk).update(answer_text="A different answer: the Ritz.")
    page.reload()
    expect(page.locator("#runs tbody tr")).to_have_count(2)
    expect(page.locator("#runs tbody tr").first).to_contain_text("Done")
    expect(page.locator("#runs a", has_text="Batch")).to_have_count(2)
    expect(page.get_by_role("row", name="Best hotel in Paris?")).to_contain_text("latest changed")

    page.get_by_role("button", name="Pause").click()
    expect(page.locator("h1 .badge")).to_have_text("Paused")
    monitor.refresh_from_db()
    assert monitor.next_run_at is None
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("h1 .badge")).to_have_text("Active")

    # A cap of $0.10 a month (above one run's $0.0612, so the form takes it) is already used up by the
    # two runs: the next run is skipped and the owner emailed.
    Task.objects.update(spend=Decimal("0.05"))
    page.get_by_label("Email addresses").fill("owner@example.com")
    page.get_by_role("button", name="Add destination").click()
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Cap per month ($)").fill("0.10")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("button", name="Run now").click()
    skipped = page.locator("#runs tbody tr", has_text="Run now")
    expect(skipped).to_contain_text("Skipped")
    expect(skipped).to_contain_text("this month")
    scheduler_tick()  # the scheduler (or the alert's job) delivers it
    assert [m.to for m in mail.outbox] == [["owner@example.com"]]
    assert "this month" in mail.outbox[0].body
    page.reload()
    expect(page.locator("li", has_text="Run skipped:")).to_contain_text("owner@example.com: Sent")
    assert Task.objects.count() == 12


def test_monitor_this_request_from_the_builder_then_its_runs_chart(logged_in_page, user, stand_in_credential):
    """The builder's whole request (prompt, system message, temperature, country) becomes a monitor; its
    page then charts the run made now."""
    user.groups.add(member_group())
    make_catalog()
    page = logged_in_page
    page.goto("/new/")
    page.get_by_label("User prompt").fill("Best hotel in Paris?")
    page.get_by_label("System message").fill("Answer in one line.")
    page.get_by_label("Model").select_option("gpt-4.1")
    page.get_by_label("Temperature").fill("0.4")
    page.get_by_role("button", name="Monitor this request").click()

    expect(page.get_by_role("heading", name="New monitor")).to_be_visible()
    expect(page.get_by_text("One builder request for")).to_be_visible()
    expect(page.get_by_text("Answer in one line.")).to_be_visible()
    expect(page.get_by_label("…or one prompt")).to_have_value("Best hotel in Paris?")
    # The cost shows as the pre-filled form opens, before anything is changed (its name is still empty).
    expect(page.locator("#estimate")).to_contain_text("per run (1 task)")
    page.get_by_label("Name").fill("Paris hotel")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("heading", name="Paris hotel")).to_be_visible()
    monitor = Monitor.objects.get()
    assert monitor.request_fields["system_message"] == "Answer in one line."
    assert monitor.request_fields["temperature"] == 0.4
    assert not Task.objects.exists()  # nothing sent by making it
    page.get_by_role("button", name="Run now").click()
    expect(page.locator("svg[aria-label='Tasks per run by status']")).to_be_visible()
    expect(page.locator("svg[aria-label='Cost per run']")).to_be_visible()
    body = Task.objects.get().request_body
    assert body["system_message"] == "Answer in one line." and body["temperature"] == 0.4
    assert body["tag"] == "paris-hotel"


def test_retry_says_what_it_costs_and_asks_first_when_it_pays_again_by_keyboard(
    logged_in_page, user, stand_in_credential
):
    """A run whose 2 failed tasks include one the upstream accepted and charged: the Retry button is
    described by its cost line, asks before paying again, and Cancel sends nothing."""
    from tasks.monitors.runs import run_now
    from tests.monitors.factories import make_monitor

    user.groups.add(member_group())
    make_catalog()
    monitor = make_monitor(credential=stand_in_credential, owner=user)
    run = run_now(monitor=monitor, user=user)[0]
    failed = list(Task.objects.filter(batch=run.batch).order_by("created_at"))[:2]
    Task.objects.filter(pk=failed[0].pk).update(status=Task.Status.FAILED, charged=0, spend_is_final=True)
    Task.objects.filter(pk=failed[1].pk).update(status=Task.Status.FAILED, charged=Decimal("0.0102"))
    MonitorRun.objects.filter(pk=run.pk).update(state=MonitorRun.State.DONE, failed_count=2)
    page = logged_in_page
    page.goto(f"/monitors/{monitor.slug}/")
    retry = page.get_by_role("button", name="Retry 2 failed")
    expect(retry).to_have_accessible_description(
        re.compile(r"Sends 2 tasks again, up to \$0\.\d+\. 1 of these was accepted and charged \$0\.0102")
    )
    questions = []

    page.once("dialog", dialog_answer(questions, accept=False))
    retry.focus()
    page.keyboard.press("Enter")
    page.wait_for_timeout(500)
    assert questions and "retrying pays again" in questions[0]
    assert not MonitorRun.objects.filter(kind=MonitorRun.Kind.RETRY).exists()
    expect(retry).to_be_enabled()

    page.once("dialog", dialog_answer(questions, accept=True))
    retry.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Retry started: 2 tasks planned")).to_be_visible()
    assert MonitorRun.objects.get(kind=MonitorRun.Kind.RETRY).task_count == 2
