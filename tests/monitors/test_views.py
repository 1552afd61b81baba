"""The monitor pages as a person uses them: create with the estimate, pause/resume, run now, alerts."""

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from tasks.models import AlertDestination, AuditEntry, Monitor, MonitorRun, Task
from tasks.monitors.scheduler import scheduler_tick
from tasks.prompt_templates.services import template_archive
from tests.monitors.factories import ROWS, make_monitor, make_prompt_version

pytestmark = pytest.mark.django_db


def form_data(version, **fields):
    data = {
        "name": "Hotel answers",
        "template_version": str(version.pk),
        "rows_text": ROWS,
        "targets": "gpt-4.1\nclaude-3-5-haiku",
        "cadence": "daily",
        "time_of_day": "09:00",
        "minute": "0",
        "time_zone": "Europe/Paris",
    }
    data.update(fields)
    return data


def test_a_member_creates_a_daily_monitor_and_lands_on_its_page_with_its_next_runs(
    member_client, credential, catalog
):
    version = make_prompt_version()
    response = member_client.post(reverse("monitors:create"), form_data(version))
    monitor = Monitor.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "monitors:detail", args=[monitor.slug]
    )
    assert monitor.tag == "hotel-answers"
    assert monitor.next_run_at is not None
    page = member_client.get(response["Location"]).content.decode()
    assert "Upcoming runs" in page and page.count("<time datetime=") >= 5
    assert AuditEntry.objects.filter(action="monitor.create", object_id=str(monitor.pk)).exists()


def test_bad_rows_and_a_bad_cron_are_reported_and_the_input_kept(member_client, credential, catalog):
    version = make_prompt_version()
    response = member_client.post(
        reverse("monitors:create"),
        form_data(version, rows_text="town\nParis\n", cadence="cron", cron="61 * * * *"),
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "is not valid" in page
    assert "town" in page  # the person's rows are still there
    assert not Monitor.objects.exists()


@pytest.mark.parametrize(
    "dates", [{"start_date": "0001-01-01"}, {"end_date": "9999-12-31"}, {"start_date": "9999-12-31"}]
)
def test_a_date_at_the_calendars_ends_is_a_field_error_with_the_input_kept(
    member_client, credential, catalog, member_user, dates
):
    monitor = make_monitor(credential=credential, owner=member_user, now=datetime.now(UTC))
    ((field, value),) = dates.items()
    for url in (reverse("monitors:create"), reverse("monitors:edit", args=[monitor.slug])):
        response = member_client.post(url, form_data(monitor.template_version, name="Hotels 2", **dates))

        assert response.status_code == 200, url
        page = response.content.decode()
        assert page.count("Give a date between 2000 and 2999.") == 1
        assert f'name="{field}" value="{value}"' in page and "Hotels 2" in page and "Berlin" in page
    estimate = member_client.post(
        reverse("monitors:estimate"),
        form_data(monitor.template_version, **dates),
        headers={"HX-Request": "true"},
    )
    assert estimate.status_code == 200
    assert "The estimate shows once the form is complete." in estimate.content.decode()
    assert Monitor.objects.get() == monitor and Monitor.objects.get().name == "Hotels"


def test_the_estimate_shows_the_cost_per_run_and_month_and_the_budgets(member_client, credential, catalog):
    from decimal import Decimal

    from tasks.models import Budget

    Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("50"))
    version = make_prompt_version()
    response = member_client.post(
        reverse("monitors:estimate"), form_data(version), headers={"HX-Request": "true"}
    )
    page = response.content.decode()
    assert "6 tasks" in page
    assert "runs in the next 30 days" in page
    assert "Team budget" in page
    assert not Monitor.objects.exists()


def test_the_estimate_needs_no_name_yet_but_not_a_plan_with_errors(member_client, credential, catalog):
    version = make_prompt_version()

    nameless = member_client.post(
        reverse("monitors:estimate"), form_data(version, name=""), headers={"HX-Request": "true"}
    ).content.decode()
    bad_rows = member_client.post(
        reverse("monitors:estimate"), form_data(version, name="", rows_text="town\nParis\n"),
        headers={"HX-Request": "true"},
    ).content.decode()  # fmt: skip

    assert "6 tasks" in nameless
    assert "The estimate shows once the form is complete." in bad_rows


def test_pause_resume_and_archive_and_the_edit_history(member_client, credential, catalog, member_user):
    monitor = make_monitor(credential=credential, owner=member_user, now=datetime.now(UTC))
    url = reverse("monitors:state", args=[monitor.slug])
    member_client.post(url, {"action": "pause"})
    monitor.refresh_from_db()
    assert monitor.state == Monitor.State.PAUSED and monitor.next_run_at is None
    member_client.post(url, {"action": "resume"})
    monitor.refresh_from_db()
    assert monitor.state == Monitor.State.ACTIVE and monitor.next_run_at > datetime.now(UTC)
    edit = form_data(monitor.template_version, name="Hotels", cap_per_run="5")
    response = member_client.post(reverse("monitors:edit", args=[monitor.slug]), edit)
    assert response.status_code == 302
    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    assert "monitor.pause" in page and "monitor.resume" in page and "cap_per_run" in page
    assert "member" in page


def test_run_now_plans_a_batch_shown_on_the_page(member_client, credential, catalog, member_user):
    monitor = make_monitor(credential=credential, owner=member_user)
    member_client.post(reverse("monitors:run_now", args=[monitor.slug]))
    run = MonitorRun.objects.get()
    assert run.kind == MonitorRun.Kind.MANUAL and run.state == MonitorRun.State.SENT
    assert Task.objects.filter(batch=run.batch).count() == 6
    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    assert reverse("prompt_templates:batch_detail", args=[run.batch_id]) in page
    assert "Run now" in page
    assert "Run started: 6 tasks planned; workers send them." in page


def test_run_now_of_one_task_says_task_not_tasks(member_client, credential, catalog, member_user):
    monitor = make_monitor(
        credential=credential,
        owner=member_user,
        rows_text="city\nParis\n",
        targets=[{"model_name": "gpt-4.1", "credential_id": credential.pk}],
    )

    page = member_client.post(reverse("monitors:run_now", args=[monitor.slug]), follow=True).content.decode()

    assert "Run started: 1 task planned; workers send them." in page


def test_run_now_pressed_twice_on_the_same_page_plans_one_run(
    member_client, credential, catalog, member_user
):
    """A double click with scripts off, a resent form or a second tab of the same page: one run, one
    batch, and the second press says so. A page shown again has a new key: a new press is a new run."""
    monitor = make_monitor(credential=credential, owner=member_user)
    url = reverse("monitors:run_now", args=[monitor.slug])
    page = member_client.get(reverse("monitors:detail", args=[monitor.slug]))
    key = page.context["run_now_key"]
    assert f'name="request_key" value="{key}"' in page.content.decode()

    member_client.post(url, {"request_key": key})
    again = member_client.post(url, {"request_key": key}, follow=True).content.decode()

    run = MonitorRun.objects.get()
    assert run.state == MonitorRun.State.SENT and Task.objects.count() == 6
    assert "This Run now was pressed already" in again
    new_key = member_client.get(reverse("monitors:detail", args=[monitor.slug])).context["run_now_key"]
    assert new_key != key
    member_client.post(url, {"request_key": new_key})
    assert MonitorRun.objects.count() == 2 and Task.objects.count() == 12


def test_run_now_with_another_monitors_key_or_a_bad_key_never_reuses_a_run(
    member_client, credential, catalog, member_user
):
    first = make_monitor(credential=credential, owner=member_user)
    second = make_monitor(credential=credential, owner=member_user, name="Second")
    member_client.post(reverse("monitors:run_now", args=[first.slug]), {"request_key": "a" * 32})

    response = member_client.post(reverse("monitors:run_now", args=[second.slug]), {"request_key": "a" * 32})
    assert response.status_code == 302 and not second.runs.exists()  # refused: the key is another page's
    for bad in ["", "x" * 32, "a" * 500, "A" * 32]:
        response = member_client.post(reverse("monitors:run_now", args=[second.slug]), {"request_key": bad})
        assert response.status_code == 302
    assert second.runs.count() == 4  # a missing or malformed key is no key: each press a run


def test_the_list_shows_next_run_last_run_and_cost_this_month(member_client, credential, catalog):
    monitor = make_monitor(credential=credential, now=datetime.now(UTC) - timedelta(days=2))
    scheduler_tick()
    page = member_client.get(reverse("monitors:list")).content.decode()
    assert monitor.name in page and "Catch-up" not in page
    assert "Sent" in page


def test_a_webhook_on_a_private_address_is_refused_with_a_field_error(
    member_client, credential, catalog, settings
):
    settings.ALERT_WEBHOOKS_ALLOW_PRIVATE = False
    monitor = make_monitor(credential=credential)
    for url in [
        "http://127.0.0.1:8000/hook",
        "http://169.254.169.254/latest",
        "http://10.0.0.5/x",
        "http://localhost/",
    ]:
        response = member_client.post(
            reverse("monitors:destination_add", args=[monitor.slug]), {"kind": "webhook", "url": url}
        )
        assert response.status_code == 400, url
        assert "internal or private address" in response.content.decode()
    assert not AlertDestination.objects.exists()


def test_a_webhook_url_is_stored_encrypted_and_never_shown(member_client, credential, catalog, settings):
    settings.ALERT_WEBHOOKS_ALLOW_PRIVATE = True
    monitor = make_monitor(credential=credential)
    member_client.post(
        reverse("monitors:destination_add", args=[monitor.slug]),
        {"kind": "slack", "url": "http://127.0.0.1:9/services/T000/B000/secret-token-123"},
    )
    destination = AlertDestination.objects.get()
    assert "secret-token-123" not in destination.url_encrypted
    assert destination.get_url().endswith("secret-token-123")
    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    assert "secret-token-123" not in page and "127.0.0.1" in page


def test_an_admin_gives_a_budget_its_alert_destination_and_a_bad_one_is_refused(team_admin_client, settings):
    from decimal import Decimal

    from tasks.models import Budget

    settings.ALERT_WEBHOOKS_ALLOW_PRIVATE = False
    budget = Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("10"))
    url = reverse("monitors:alert_list")
    response = team_admin_client.post(
        url, {"budget": budget.pk, "kind": "email", "emails": "cfo@example.com"}
    )
    assert response.status_code == 302
    assert AlertDestination.objects.get().budget == budget
    refused = team_admin_client.post(
        url, {"budget": budget.pk, "kind": "webhook", "url": "http://192.168.1.10/"}
    )
    assert refused.status_code == 400 and "internal or private address" in refused.content.decode()
    assert "http://192.168.1.10/" in refused.content.decode()  # the input is kept
    assert AlertDestination.objects.count() == 1


def test_the_monitor_page_shows_its_tags_answers_over_time_and_its_runs_poll_reads_only_the_runs(
    member_client, credential, catalog
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import make_task

    monitor = make_monitor(credential=credential)
    url = reverse("monitors:detail", args=[monitor.slug])
    assert "Answers over time" not in member_client.get(url).content.decode()  # nothing ran yet

    now = datetime.now(UTC)
    for i, (prompt, answer) in enumerate(
        [("Paris?", "Ritz first."), ("Paris?", "Crillon first."), ("Rome?", "X")]
    ):
        make_task(tag=monitor.tag, user_prompt=prompt, answer_text=answer, created_at=now + timedelta(i))
    page = member_client.get(url).content.decode()
    assert "Answers over time" in page and '<option value="Rome?" selected>' in page
    picked = member_client.get(url, {"prompt": "Paris?"}).content.decode()
    assert "<del>Ritz </del><ins>Crillon </ins>first." in picked
    assert '<option value="Paris?" selected>' in picked

    with CaptureQueriesContext(connection) as queries:
        response = member_client.get(url, headers={"HX-Request": "true"})
    runs = response.content.decode()
    assert "HX-Request" in response["Vary"]  # a browser's cache never serves the runs alone as the page
    assert 'id="runs"' in runs and "Answers over time" not in runs
    reads = " ".join(query["sql"] for query in queries.captured_queries)
    assert "user_prompt" not in reads and "tasks_brandset" not in reads  # no timeline, no brand sets


def test_a_huge_prompt_in_the_query_is_cut_to_a_prompts_length_as_on_the_tag_page(
    member_client, credential, catalog
):
    from tests.factories import make_task

    monitor = make_monitor(credential=credential)
    longest = "Where " + "p" * 493 + "?"  # a prompt at the 500-character limit
    make_task(tag=monitor.tag, user_prompt=longest, answer_text="Ritz first.")
    make_task(tag=monitor.tag, user_prompt="Rome?", answer_text="Hassler first.")
    url = reverse("monitors:detail", args=[monitor.slug])

    response = member_client.get(url, {"prompt": longest + "x" * 99_500})

    page = response.content.decode()
    assert response.status_code == 200
    assert "Answers over time" in page and "Ritz first." in page
    assert f'<option value="{longest}" selected>' in page
    assert "x" * 1000 not in page


def test_an_empty_prompt_in_the_query_shows_the_latest_prompts_answers_as_on_the_tag_page(
    member_client, credential, catalog
):
    """?prompt= (a link or a form sent with nothing picked) showed no answers over time at all."""
    from tests.factories import make_task

    monitor = make_monitor(credential=credential)
    make_task(tag=monitor.tag, user_prompt="Rome?", answer_text="Hassler first.")

    page = member_client.get(reverse("monitors:detail", args=[monitor.slug]), {"prompt": ""}).content.decode()

    assert "Hassler first." in page
    assert '<option value="Rome?" selected>' in page


def test_a_monitor_no_scheduler_has_run_says_it_is_overdue_and_lists_only_runs_still_to_come(
    member_client, credential
):
    """Its slot came two days ago and nothing claimed it (no worker): the page says so, and its upcoming runs
    are what a scheduler would do once back (the catch-up, then the slots after now), not past dates."""
    due = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=2)
    monitor = make_monitor(credential=credential, now=due - timedelta(minutes=1))
    assert monitor.next_run_at == due

    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    listed = member_client.get(reverse("monitors:list")).content.decode()

    assert "no scheduler is ticking" in page and f'<time datetime="{due.isoformat()}">' in page
    upcoming = page.split('<ol class="upcoming">')[1].split("</ol>")[0]
    slots = [datetime.fromisoformat(s) for s in re.findall(r'<time datetime="([^"]+)"', upcoming)]
    assert len(slots) == 5 and all(slot > datetime.now(UTC) for slot in slots)
    assert ">overdue</span>" in listed


def test_a_monitor_due_a_minute_ago_is_not_overdue(member_client, credential):
    """A scheduler ticks every 30 s: a slot just passed is about to run, not a sign of trouble."""
    now = datetime.now(UTC)
    monitor = make_monitor(credential=credential, now=now - timedelta(days=1))
    Monitor.objects.filter(pk=monitor.pk).update(next_run_at=now - timedelta(minutes=1))

    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()

    assert "no scheduler is ticking" not in page
    assert ">overdue</span>" not in member_client.get(reverse("monitors:list")).content.decode()


def test_an_uploaded_csv_is_kept_when_another_field_is_wrong(member_client, credential, catalog):
    """The file input comes back empty: the file's rows must come back in the rows field, or the next
    save runs the monitor on whatever was typed there before the upload."""
    version = make_prompt_version()
    upload = SimpleUploadedFile("rows.csv", ROWS.encode(), content_type="text/csv")
    response = member_client.post(
        reverse("monitors:create"),
        {**form_data(version, rows_text="", cadence="cron", cron="bogus"), "rows_file": upload},
    )

    assert response.status_code == 200 and not Monitor.objects.exists()
    rows_field = re.search(
        r'<textarea name="rows_text"[^>]*>(.*?)</textarea>', response.content.decode(), re.S
    )
    assert ROWS.strip() in rows_field.group(1)


def test_an_upload_larger_than_the_cap_is_refused_not_cut(member_client, credential, catalog, settings):
    settings.BATCH_UPLOAD_MAX_BYTES = 1000
    version = make_prompt_version()
    header, *rows = ROWS.strip().splitlines()
    big = (header + "\n" + "\n".join(rows * 200) + "\n").encode()
    upload = SimpleUploadedFile("rows.csv", big, content_type="text/csv")

    response = member_client.post(
        reverse("monitors:create"), {**form_data(version, rows_text=""), "rows_file": upload}
    )

    assert response.status_code == 200 and not Monitor.objects.exists()
    assert "This file is larger than 1000 bytes" in response.content.decode()


def test_the_saved_message_and_upcoming_runs_show_times_in_the_monitors_zone(
    member_client, credential, catalog, settings
):
    """Not Python's “2026-12-07 08:00:00+00:00”, nor the site's zone: a 09:00 Europe/Paris monitor on a
    New York site reads 09:00 (Europe/Paris), in the message and in “Upcoming runs”."""
    settings.TIME_ZONE = "America/New_York"
    version = make_prompt_version()
    data = {**form_data(version), "time_zone": "Europe/Paris", "time_of_day": "09:00"}
    response = member_client.post(reverse("monitors:create"), data, follow=True)

    page = response.content.decode()
    monitor = Monitor.objects.get()
    shown = timezone.localtime(monitor.next_run_at, ZoneInfo("Europe/Paris")).strftime("%a %Y-%m-%d %H:%M")
    assert shown.endswith("09:00")
    assert f"saved; next run {shown} (Europe/Paris)." in page
    assert "+00:00" not in page
    upcoming = page.split('<ol class="upcoming">')[1].split("</ol>")[0]
    assert upcoming.count("09:00<") == 5 and "03:00<" not in upcoming
    assert 'Upcoming runs <span class="small muted">(Europe/Paris time' in page


def test_a_monitor_with_caps_saves_unchanged_from_its_edit_page(member_client, credential, catalog):
    """The caps came back as “1.000000” (the column's 6 places) and the unchanged page was refused:
    “Ensure that there are no more than 2 decimal places.” beside both."""
    version = make_prompt_version()
    member_client.post(reverse("monitors:create"), form_data(version, cap_per_run="1", cap_per_month="5.5"))
    monitor = Monitor.objects.get()

    page = member_client.get(reverse("monitors:edit", args=[monitor.slug])).content.decode()
    run_cap = re.search(r'<input[^>]*name="cap_per_run"[^>]*value="([^"]*)"', page).group(1)
    month_cap = re.search(r'<input[^>]*name="cap_per_month"[^>]*value="([^"]*)"', page).group(1)
    assert (run_cap, month_cap) == ("1.00", "5.50")

    response = member_client.post(
        reverse("monitors:edit", args=[monitor.slug]),
        form_data(version, cap_per_run=run_cap, cap_per_month=month_cap),
    )
    assert response.status_code == 302


def test_a_monitor_on_an_archived_template_keeps_its_version_on_its_edit_page(
    member_client, credential, catalog, member_user
):
    """Archiving a template does not stop its monitors (a version is kept), but their edit page showed no
    template chosen and saving it refused the monitor's own version: “Select a valid choice.”"""
    monitor = make_monitor(credential=credential, owner=member_user, now=datetime.now(UTC))
    version = monitor.template_version
    template_archive(template=version.template, user=member_user)
    new_template = make_prompt_version("Another")

    page = member_client.get(reverse("monitors:edit", args=[monitor.slug])).content.decode()
    assert f'<option value="{version.pk}" selected>Hotels prompts · v1 (archived)</option>' in page
    assert f'<option value="{new_template.pk}">Another · v1</option>' in page

    response = member_client.post(
        reverse("monitors:edit", args=[monitor.slug]),
        form_data(version, name="Hotels", time_zone="UTC", cap_per_run="3"),
    )
    assert response.status_code == 302
    monitor.refresh_from_db()
    assert monitor.template_version == version and monitor.cap_per_run == Decimal("3")
    # A new monitor is not offered the archived template.
    assert "(archived)" not in member_client.get(reverse("monitors:create")).content.decode()


@pytest.mark.parametrize("cadence", ["daily", "weekdays", "every_n_days"])
def test_a_cadence_at_a_time_of_day_without_one_is_a_field_error_not_a_silent_nine_oclock(
    member_client, credential, catalog, member_user, cadence
):
    """The time cleared was saved as none, the monitor ran at 09:00 and its edit page showed no time."""
    monitor = make_monitor(credential=credential, owner=member_user, now=datetime.now(UTC))
    response = member_client.post(
        reverse("monitors:edit", args=[monitor.slug]),
        form_data(
            monitor.template_version,
            name="Hotels 2",
            cadence=cadence,
            time_of_day="",
            weekdays=["0", "2"],
            interval_days="3",
        ),
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert page.count("Give the time of day it runs at.") == 1
    assert 'value="Hotels 2"' in page
    monitor.refresh_from_db()
    assert monitor.name == "Hotels" and monitor.time_of_day == time(9, 0)


@pytest.mark.parametrize(("field", "per"), [("cap_per_run", "per run"), ("cap_per_month", "per month")])
def test_a_cap_below_one_runs_cost_is_refused_as_every_run_would_be_skipped(
    member_client, credential, catalog, field, per
):
    """The form saved a cap under what one run costs; the estimate said nothing and every run was skipped."""
    version = make_prompt_version()
    estimate = member_client.post(
        reverse("monitors:estimate"), form_data(version, **{field: "0.05"}), headers={"HX-Request": "true"}
    ).content.decode()
    refusal = (
        f"One run costs up to $0.0612 (6 tasks): over this cap of $0.0500 {per}, every run would be "
        "skipped. Raise the cap, or run fewer prompts or models."
    )
    assert "Up to <strong>" in estimate and refusal in estimate

    response = member_client.post(reverse("monitors:create"), form_data(version, **{field: "0.05"}))

    assert response.status_code == 200 and not Monitor.objects.exists()
    page = response.content.decode()
    assert refusal in page and f'name="{field}" value="0.05"' in page
    saved = member_client.post(reverse("monitors:create"), form_data(version, **{field: "0.07"}))
    assert saved.status_code == 302 and Monitor.objects.get().__dict__[field] == Decimal("0.07")


def test_an_edit_page_saved_after_another_edit_asks_before_replacing_it(
    member_client, credential, catalog, member_user
):
    """Two tabs on the edit page: the second Save silently put back the cap the first had changed."""
    monitor = make_monitor(credential=credential, owner=member_user, now=datetime.now(UTC))
    url = reverse("monitors:edit", args=[monitor.slug])
    page = member_client.get(url).content.decode()
    edited_at = re.search(r'name="edited_at" value="([^"]*)"', page).group(1)
    first = member_client.post(url, form_data(monitor.template_version, name="Hotels", cap_per_run="3"))
    assert first.status_code == 302

    second = member_client.post(
        url, {**form_data(monitor.template_version, name="Hotels renamed"), "edited_at": edited_at}
    )

    assert second.status_code == 200
    page = second.content.decode()
    assert "This monitor was changed by member since this page was opened" in page
    assert 'value="Hotels renamed"' in page  # the second tab's input is kept
    monitor.refresh_from_db()
    assert (monitor.name, monitor.cap_per_run) == ("Hotels", Decimal("3"))
    # Saving again, having seen it, replaces the other change.
    edited_at = re.search(r'name="edited_at" value="([^"]*)"', page).group(1)
    again = member_client.post(
        url, {**form_data(monitor.template_version, name="Hotels renamed"), "edited_at": edited_at}
    )
    assert again.status_code == 302
    monitor.refresh_from_db()
    assert (monitor.name, monitor.cap_per_run) == ("Hotels renamed", None)


def test_the_name_of_an_archived_monitor_is_refused_saying_where_that_monitor_is(
    member_client, credential, catalog, member_user
):
    """The list shows no “Hotels” (it is under Archived), yet the form said “Another monitor has this
    name.”"""
    monitor = make_monitor(credential=credential, owner=member_user, now=datetime.now(UTC))
    Monitor.objects.filter(pk=monitor.pk).update(state=Monitor.State.ARCHIVED, next_run_at=None)

    response = member_client.post(
        reverse("monitors:create"), form_data(monitor.template_version, name="Hotels")
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "An archived monitor has this name (under Archived in the monitors list); choose another." in page
    assert Monitor.objects.count() == 1


def test_the_same_destination_added_twice_is_refused_not_alerted_twice(
    member_client, credential, catalog, settings
):
    """A form sent again (Back, a double click with scripts off, a second tab) added the destination
    twice, so every alert reached it twice."""
    settings.ALERT_WEBHOOKS_ALLOW_PRIVATE = True
    monitor = make_monitor(credential=credential)
    url = reverse("monitors:destination_add", args=[monitor.slug])
    hook = "http://127.0.0.1:9/services/T000/B000/secret-token-123"
    assert member_client.post(url, {"kind": "slack", "url": hook}).status_code == 302
    assert (
        member_client.post(url, {"kind": "email", "emails": "a@example.com, b@example.com"}).status_code
        == 302
    )

    again_hook = member_client.post(url, {"kind": "slack", "url": hook})
    again_emails = member_client.post(url, {"kind": "email", "emails": "B@example.com a@example.com"})

    assert again_hook.status_code == again_emails.status_code == 400
    assert "This monitor sends its alerts there already (Slack incoming webhook: 127.0.0.1)." in (
        again_hook.content.decode()
    )
    assert "This monitor sends its alerts there already (Email: a@example.com, b@example.com)." in (
        again_emails.content.decode()
    )
    other = member_client.post(url, {"kind": "slack", "url": hook.replace("123", "456")})
    assert other.status_code == 302  # another webhook on the same host is another destination
    assert AlertDestination.objects.filter(monitor=monitor).count() == 3


def test_a_budgets_destination_added_twice_is_refused(team_admin_client):
    from tasks.models import Budget

    budget = Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=Decimal("10"))
    data = {"budget": str(budget.pk), "kind": "email", "emails": "ops@example.com"}
    assert team_admin_client.post(reverse("monitors:alert_list"), data).status_code == 302

    again = team_admin_client.post(reverse("monitors:alert_list"), data)

    assert again.status_code == 400
    assert "This budget sends its alerts there already (Email: ops@example.com)." in again.content.decode()
    assert AlertDestination.objects.filter(budget=budget).count() == 1


def test_resuming_a_monitor_past_its_end_date_says_it_has_no_run_left(
    member_client, credential, catalog, member_user
):
    """Resume said “is now active.” of a monitor whose end date had passed: it would never run."""
    monitor = make_monitor(
        credential=credential, owner=member_user, end_date=date(2026, 1, 31), state=Monitor.State.PAUSED
    )

    response = member_client.post(
        reverse("monitors:state", args=[monitor.slug]), {"action": "resume"}, follow=True
    )

    page = response.content.decode()
    assert (
        "“Hotels” is now active, but its end date (2026-01-31) has passed: it has no run left. Edit" in page
    )
    monitor.refresh_from_db()
    assert monitor.state == Monitor.State.ACTIVE and monitor.next_run_at is None


def test_the_monitor_page_names_its_template_version_and_a_newer_one(member_client, credential, catalog):
    from tasks.models import PromptTemplateVersion

    monitor = make_monitor(credential=credential)
    version = monitor.template_version
    url = reverse("monitors:detail", args=[monitor.slug])
    page = member_client.get(url).content.decode()
    link = reverse("prompt_templates:version", args=[version.template_id, version.pk])
    assert f'Runs the template <a href="{link}">Hotels prompts v1</a>' in page
    assert "newer version" not in page

    newer = PromptTemplateVersion.objects.create(template=version.template, number=2, fields=version.fields)
    page = member_client.get(url).content.decode()
    newer_link = reverse("prompt_templates:version", args=[version.template_id, newer.pk])
    assert f'A newer version, <a href="{newer_link}">v2</a>, exists: edit the monitor to run it.' in page


def test_a_monitor_with_more_runs_than_the_page_shows_says_so_and_where_the_rest_are(
    member_client, credential, catalog, monkeypatch
):
    from tasks.monitors import selectors as monitor_selectors

    monkeypatch.setattr(monitor_selectors, "PAGE_RUNS", 2)
    monitor = make_monitor(credential=credential)
    for day in range(3):
        MonitorRun.objects.create(
            monitor=monitor, slot=datetime(2026, 1, 1 + day, 9, tzinfo=UTC), state=MonitorRun.State.SKIPPED
        )
    page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    assert "The latest 2 of 3 runs." in page
    assert (
        f'href="{reverse("history:tag_detail", kwargs={"tag": monitor.tag})}">every task of its tag' in page
    )
