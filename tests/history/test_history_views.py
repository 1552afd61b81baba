"""The task list, task page, exports, tags and home as a member uses them."""

import base64
import csv
import io
import json
import re
from datetime import timedelta
from decimal import Decimal
from html import escape, unescape
from urllib.parse import urlencode, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tasks.history import tags
from tasks.models import SendChunk, Task, TaskEvent, TaskLabel
from tests.factories import make_credential, make_task, make_task_being_sent, make_template_version, make_user

pytestmark = pytest.mark.django_db

LIST = reverse("history:task_list")


def _ids(response) -> list[str]:
    return [str(task.pk) for task in response.context["page"].tasks]


def _export(client, fmt: str, query: str = "") -> list[dict]:
    response = client.get(reverse("history:task_export", args=[fmt]) + query)
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    if fmt == "json":
        return json.loads(body)
    return list(csv.DictReader(io.StringIO(body)))


# --- Permissions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["history:task_list", "history:tag_list"])
def test_a_user_without_a_role_gets_403(client, django_user_model, name):
    client.force_login(django_user_model.objects.create_user(username="nobody", password="x"))

    assert client.get(reverse(name)).status_code == 403


def test_a_user_without_a_role_cannot_edit_or_refresh(client, django_user_model):
    task = make_task()
    client.force_login(django_user_model.objects.create_user(username="nobody", password="x"))

    assert client.get(reverse("history:task_detail", args=[task.pk])).status_code == 403
    assert client.post(reverse("history:task_edit", args=[task.pk]), {"labels": "x"}).status_code == 403
    assert client.post(reverse("history:task_refresh", args=[task.pk])).status_code == 403
    assert client.get(reverse("history:task_export", args=["csv"])).status_code == 403
    assert not TaskLabel.objects.exists()


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(LIST)

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


# --- List and filters -------------------------------------------------------------------------------


def test_every_member_sees_every_task(member_client, team_admin):
    mine = make_task(submitted_by=None)
    theirs = make_task(submitted_by=team_admin)

    response = member_client.get(LIST)

    assert set(_ids(response)) == {str(mine.pk), str(theirs.pk)}
    assert "team-admin" in response.content.decode()


def test_filters_narrow_the_list(member_client, member_user):
    claude = make_credential("Claude direct")
    version = make_template_version()
    target = make_task(
        provider="claude",
        model_name="claude-sonnet-4-0",
        tag="team-a:parks",
        submitted_by=member_user,
        credential=claude,
        template_version=version,
        answer_text="Disneyland Paris dominates.",
        labels=["baseline"],
    )
    make_task(provider="chat_gpt", tag="team-a:parks")
    make_task(provider="claude", tag="other", status="pending")

    query = {
        "provider": "claude",
        "model": "claude-sonnet-4-0",
        "status": "completed",
        "tag": "team-a:parks",
        "label": "baseline",
        "person": member_user.pk,
        "credential": claude.pk,
        "template": version.template_id,
        "q": "disneyland",
        "cost_min": "0.01",
        "cost_max": "1",
        "date_from": (timezone.localdate() - timedelta(days=1)).isoformat(),
        "date_to": timezone.localdate().isoformat(),
    }
    for key in query:  # each filter alone keeps the target
        assert str(target.pk) in _ids(member_client.get(LIST, {key: query[key]})), key

    response = member_client.get(LIST, query)

    assert _ids(response) == [str(target.pk)]


def test_text_search_looks_in_prompt_and_answer(member_client):
    in_prompt = make_task(user_prompt="Best roller coasters in Europe")
    in_answer = make_task(user_prompt="Parks?", answer_text="Europa-Park has great ROLLER coasters.")
    make_task(user_prompt="Weather in Paris", answer_text="Sunny.")

    assert set(_ids(member_client.get(LIST, {"q": "roller"}))) == {str(in_prompt.pk), str(in_answer.pk)}


def test_batch_and_date_filters(member_client):
    from tasks.models import Batch

    batch = Batch.objects.create(name="Q3 sweep")
    in_batch = make_task(batch=batch)
    old = make_task(created_at=timezone.now() - timedelta(days=40))

    assert _ids(member_client.get(LIST, {"batch": str(batch.pk)})) == [str(in_batch.pk)]
    until = (timezone.localdate() - timedelta(days=30)).isoformat()
    assert _ids(member_client.get(LIST, {"date_to": until})) == [str(old.pk)]


@pytest.mark.parametrize(
    "query",
    [
        {"date_from": "2025-13-45"},
        {"date_to": "yesterday"},
        {"batch": "not-a-uuid"},
        {"person": "abc"},
        {"person": "999999"},
        {"credential": "1; drop table"},
        {"cost_min": "cheap"},
        {"cost_max": "1e999999"},
        {"cost_min": "-1"},
        {"status": "exploded"},
        {"sort": "nonsense"},
        {"after": "!!!garbage"},
        {"before": "eyJub3QiOiAiYSBjdXJzb3IifQ"},
        {"template": "x"},
        {"date_from": "2026-02-01", "date_to": "2026-01-01"},
        {"date_to": "9999-12-31"},
        {"date_from": "0001-01-01"},
    ],
)
def test_bad_filter_input_shows_errors_and_still_lists(member_client, query):
    task = make_task()

    response = member_client.get(LIST, query)

    assert response.status_code == 200
    assert _ids(response) == [str(task.pk)]
    page = response.content.decode()
    if not {"after", "before", "sort"} & set(query):
        assert "Some filters were ignored" in page


def test_a_valid_filter_still_applies_beside_an_invalid_one(member_client):
    claude = make_task(provider="claude")
    make_task(provider="chat_gpt")

    response = member_client.get(LIST, {"provider": "claude", "date_from": "bad"})

    assert _ids(response) == [str(claude.pk)]
    assert "Enter a valid date" in response.content.decode()


def test_the_ignored_filters_are_named_by_their_labels_as_the_form_shows_them(member_client):
    make_task()

    page = member_client.get(LIST, {"date_from": "2026-02-01", "date_to": "2026-01-01", "cost_min": "x"})

    box = page.content.decode().split("Some filters were ignored:")[1].split("</ul>")[0]
    assert "<li>To: “To” is before “From”.</li>" in box
    assert "<li>Cost ≥ $: Enter an amount in dollars, e.g. 0.05.</li>" in box
    assert "date_to" not in box and "cost_min" not in box


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ({"person": "999999"}, "Submitted by: No such person."),
        ({"credential": "abc"}, "Credential: No such credential."),
        ({"template": "1e5"}, "Template: No such template."),
        ({"cost_max": "99999999999999999999"}, "Cost ≤ $: At most $999,999.999999."),
        ({"cost_min": "1e400"}, "Cost ≥ $: At most $999,999.999999."),
        ({"cost_min": "0.0000001"}, "Cost ≥ $: At most 6 decimal places."),
        ({"cost_min": "-1"}, "Cost ≥ $: Give an amount of $0 or more."),
    ],
)
def test_a_filter_out_of_range_or_not_found_says_so_in_plain_words(member_client, query, said):
    make_task()

    page = member_client.get(LIST, query).content.decode()

    box = page.split("Some filters were ignored:")[1].split("</ul>")[0]
    assert f"<li>{escape(said)}</li>" in box
    assert "Select a valid choice" not in page and "Ensure" not in page


def test_every_description_a_filter_points_to_is_on_the_page(member_client):
    # Django points a field with help text at "<id>_helptext" (aria-describedby): the checkboxes' explanations
    # were never rendered, so screen readers got nothing and sighted people a bare "Waiting over 30 min".
    make_task()

    html = member_client.get(LIST).content.decode()

    described = re.findall(r'aria-describedby="([^"]+)"', html)
    assert "id_stale_helptext" in described and "id_provisional_helptext" in described
    for ids in described:
        for element_id in ids.split():
            assert f'id="{element_id}"' in html, element_id
    assert "Still queued, being sent, submitted or pending 30 minutes after it was created." in html


def test_htmx_requests_get_only_the_results_fragment(member_client):
    make_task(user_prompt="Fragment prompt")

    response = member_client.get(LIST, {"provider": "chat_gpt"}, headers={"HX-Request": "true"})

    page = response.content.decode()
    assert "Fragment prompt" in page
    assert 'id="task-results"' in page
    assert "<html" not in page
    assert "HX-Request" in response["Vary"]


def test_a_history_restore_request_gets_the_whole_page(member_client):
    response = member_client.get(
        LIST, {"provider": "chat_gpt"}, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )

    assert "<html" in response.content.decode()


def test_the_filter_form_works_without_javascript(member_client):
    page = member_client.get(LIST).content.decode()

    assert 'method="get"' in page
    assert f'action="{LIST}"' in page
    assert 'hx-push-url="true"' in page


def test_sorting_by_cost_and_time(member_client):
    now = timezone.now()
    cheap = make_task(money_spent=Decimal("0.001"), created_at=now - timedelta(hours=2))
    dear = make_task(money_spent=Decimal("0.5"), created_at=now - timedelta(hours=3))
    middle = make_task(money_spent=Decimal("0.02"), created_at=now - timedelta(hours=1))

    assert _ids(member_client.get(LIST, {"sort": "-cost"})) == [str(t.pk) for t in (dear, middle, cheap)]
    assert _ids(member_client.get(LIST, {"sort": "cost"})) == [str(t.pk) for t in (cheap, middle, dear)]
    assert _ids(member_client.get(LIST, {"sort": "created"})) == [str(t.pk) for t in (dear, cheap, middle)]
    assert _ids(member_client.get(LIST)) == [str(t.pk) for t in (middle, cheap, dear)]


@pytest.mark.parametrize("sort", ["-created", "created", "-cost", "cost"])
def test_seek_pagination_walks_every_task_once_both_ways(member_client, sort, monkeypatch):
    monkeypatch.setattr("tasks.history.selectors.PAGE_SIZE", 4)
    now = timezone.now()
    same_time = now - timedelta(minutes=5)
    tasks = [
        make_task(
            money_spent=Decimal(str(i % 3)) / 100,  # ties on cost
            created_at=same_time if i % 2 else now - timedelta(minutes=i),  # ties on time
        )
        for i in range(11)
    ]

    seen, pages, params = [], [], {"sort": sort}
    while True:
        response = member_client.get(LIST, params)
        page = response.context["page"]
        pages.append(page)
        seen += [str(t.pk) for t in page.tasks]
        if not page.next_cursor:
            break
        params = {"sort": sort, "after": page.next_cursor}

    assert sorted(seen) == sorted(str(t.pk) for t in tasks)
    assert len(seen) == len(set(seen))
    # And back again with the "previous" links from the last page.
    back = [str(t.pk) for t in pages[-1].tasks]
    page = pages[-1]
    while page.previous_cursor:
        page = member_client.get(LIST, {"sort": sort, "before": page.previous_cursor}).context["page"]
        back = [str(t.pk) for t in page.tasks] + back
    assert back == seen


def test_the_list_shows_a_capped_count_not_a_full_count(member_client, monkeypatch):
    monkeypatch.setattr("tasks.history.selectors.COUNT_CAP", 3)
    for _ in range(5):
        make_task()

    page = member_client.get(LIST).content.decode()

    assert "3+" in page


def test_pending_rows_poll_and_final_rows_do_not(member_client):
    pending = make_task(status="pending")
    done = make_task(status="completed")

    page = member_client.get(LIST).content.decode()
    row_url = reverse("history:task_status", args=[pending.pk]) + "?part=row"
    assert f'hx-get="{row_url}&amp;v=' in page
    assert reverse("history:task_status", args=[done.pk]) not in page

    Task.objects.filter(pk=pending.pk).update(status="completed", spend_is_final=True)
    row = member_client.get(row_url, headers={"HX-Request": "true"}).content.decode()

    assert "hx-trigger" not in row
    assert "Completed" in row


def test_unknown_rows_poll_slowly_and_show_the_answer_once_a_callback_completes_them(member_client):
    unknown = make_task(status="unknown")

    page = member_client.get(LIST).content.decode()
    row_url = reverse("history:task_status", args=[unknown.pk]) + "?part=row"
    assert re.search(rf'hx-get="{re.escape(row_url)}&amp;v=\w+" hx-trigger="every 10s"', page)
    still = member_client.get(row_url, headers={"HX-Request": "true"}).content.decode()
    assert 'hx-trigger="every 10s"' in still

    Task.objects.filter(pk=unknown.pk).update(status="completed", spend_is_final=True)
    row = member_client.get(row_url, headers={"HX-Request": "true"}).content.decode()

    assert "hx-trigger" not in row
    assert "Completed" in row


def test_a_live_row_is_swapped_only_when_it_changed_so_the_keyboard_focus_stays_in_it(member_client):
    # A row's links have no ids, so htmx cannot put the focus back after swapping the row: an unchanged row
    # answers 204 (htmx swaps nothing) and a keyboard user's focus on its links stays.
    pending = make_task(status="pending")

    page = member_client.get(LIST).content.decode()
    poll = unescape(re.search(rf'data-task="{pending.pk}"[^>]* hx-get="([^"]+)"', page).group(1))
    unchanged = member_client.get(poll, headers={"HX-Request": "true"})

    assert unchanged.status_code == 204 and unchanged.content == b""
    TaskLabel.objects.create(task=pending, name="urgent")
    labelled = member_client.get(poll, headers={"HX-Request": "true"})
    assert labelled.status_code == 200 and '<span class="label">urgent</span>' in labelled.content.decode()
    Task.objects.filter(pk=pending.pk).update(status="completed", spend_is_final=True)
    done = member_client.get(poll, headers={"HX-Request": "true"})
    assert done.status_code == 200 and "Completed" in done.content.decode()


def test_costs_show_final_or_provisional(member_client):
    make_task(status="pending")
    make_task(status="completed", money_spent=Decimal("0.0286"))

    page = member_client.get(LIST).content.decode()

    assert "$0.0288" in page
    assert "provisional" in page


# --- Export -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?provider=claude",
        "?status=completed&tag=team-a",
        "?q=park&sort=-cost",
        "?cost_min=0.02&date_from=bad",
    ],
)
def test_csv_and_json_exports_hold_exactly_the_filtered_tasks(member_client, query, monkeypatch):
    monkeypatch.setattr("tasks.history.selectors.PAGE_SIZE", 2)  # the export ignores pagination
    for i in range(7):
        make_task(
            provider="claude" if i % 2 else "chat_gpt",
            status="completed" if i % 3 else "pending",
            tag="team-a" if i < 4 else "",
            user_prompt="Theme park trends" if i % 2 else "Weather",
            money_spent=Decimal(i) / 100,
        )
    params = dict(pair.split("=") for pair in query.lstrip("?").split("&") if pair)
    listed, page = [], member_client.get(LIST, params).context["page"]
    listed += [str(t.pk) for t in page.tasks]
    while page.next_cursor:
        page = member_client.get(LIST, {**params, "after": page.next_cursor}).context["page"]
        listed += [str(t.pk) for t in page.tasks]

    as_csv = [row["id"] for row in _export(member_client, "csv", query)]
    as_json = [row["id"] for row in _export(member_client, "json", query)]

    assert as_csv == listed
    assert as_json == listed


def test_export_is_streamed_with_the_task_fields(member_client):
    task = make_task(tag="t1", labels=["a", "b"], answer_text='=HYPERLINK("http://evil")')

    response = member_client.get(reverse("history:task_export", args=["csv"]))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))

    assert response.streaming
    assert response["Content-Disposition"].startswith("attachment;")
    assert rows[0]["id"] == str(task.pk)
    assert rows[0]["labels"] == "a, b"
    assert Decimal(rows[0]["cost"]) == task.cost
    assert rows[0]["answer_text"].startswith("'=")  # no formula injection in spreadsheets
    data = _export(member_client, "json")
    assert data[0]["labels"] == ["a", "b"]
    assert Decimal(data[0]["spend"]) == task.spend


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_reads_only_its_columns_inside_one_transaction(member_client, fmt, monkeypatch):
    """What lets a 1 M-row export stream from the first second on PostgreSQL (docs/performance.md)."""
    make_task(request_body={"user_prompt": "x" * 5000}, result={"huge": "y" * 5000}, answer_text="Answer")
    response = member_client.get(reverse("history:task_export", args=[fmt]))
    outside = len(connection.atomic_blocks)
    reads = []

    def spy(execute, sql, params, many, context):
        if 'FROM "tasks_task"' in sql:
            reads.append((sql, len(connection.atomic_blocks)))
        return execute(sql, params, many, context)

    if connection.vendor == "postgresql":
        # The CSV is a COPY on PostgreSQL, sent by psycopg's cursor.copy(), past Django's execute wrappers.
        cursor_class = connection.connection.cursor_factory
        copy = cursor_class.copy

        def copy_spy(cursor, statement, *args, **kwargs):
            reads.append((str(statement), len(connection.atomic_blocks)))
            return copy(cursor, statement, *args, **kwargs)

        monkeypatch.setattr(cursor_class, "copy", copy_spy)

    with connection.execute_wrapper(spy):
        body = b"".join(response.streaming_content).decode()

    assert "Answer" in body and "yyyy" not in body
    sql, depth = reads[0]
    assert '"answer_text"' in sql
    assert '"request_body"' not in sql and '"result"' not in sql and '"citations"' not in sql
    assert depth == outside + 1  # the rows are read inside the export's own transaction


def test_unknown_export_format_is_404(member_client):
    assert member_client.get("/tasks/export.xml").status_code == 404


# --- Task page --------------------------------------------------------------------------------------


def test_task_page_shows_request_cost_and_every_event(member_client):
    task = make_task(
        status="completed", events=["created", "posted", "polled", "polled", "callback", "completed"]
    )
    error = TaskEvent.objects.create(task=task, kind="error", status_code=50000, message="Internal Error.")
    TaskEvent.objects.filter(pk=error.pk).update(created_at=task.created_at + timedelta(minutes=5))

    response = member_client.get(reverse("history:task_detail", args=[task.pk]))
    page = response.content.decode()

    events = response.context["events"]
    assert len(events) == 7
    assert [e.kind for e in events][:6] == ["created", "posted", "polled", "polled", "callback", "completed"]
    assert page.count('class="event event-') == 7
    assert "Internal Error." in page and "50000" in page and "40602" in page
    assert "$0.0102" in page  # charged at post
    assert "$0.0288" in page  # final cost
    assert "$0.0286" in page  # money_spent
    assert "Charged on completion" in page and "$0.0186" in page
    assert "&quot;user_prompt&quot;" in page  # the request JSON, escaped
    assert 'data-copy-target="#request-json"' in page
    assert "Raw upstream JSON" in page
    assert 'hx-trigger="every' not in page  # final: no polling


def test_a_long_prompt_heads_its_page_in_a_few_lines_and_opens_whole_below(member_client):
    """A prompt of many lines (a template with pasted context, up to the 500-character limit) made the
    heading 17 lines tall on a phone, the status and answer below the screen; the heading now ends with '…'
    and the whole prompt opens. (The stored prompt is at most 500 characters: PostgreSQL refuses more.)"""
    context = "Context line about the parks.\n" * 16
    long_task = make_task(user_prompt=context + "Which park leads?")
    short_task = make_task(user_prompt="Best roller coasters in Europe")

    page = member_client.get(reverse("history:task_detail", args=[long_task.pk])).content.decode()

    heading = unescape(re.search(r'<h1 class="prompt-title">(.*?)</h1>', page, re.S).group(1))
    assert len(heading) <= 201 and heading.count("\n") < 6 and heading.endswith("…")
    whole = re.search(r'<details class="prompt-whole">\s*<summary>(.*?)</summary>(.*?)</details>', page, re.S)
    assert "Whole prompt (497 characters)" in whole.group(1)
    assert unescape(re.sub(r"<[^>]+>", "", whole.group(2))).strip() == long_task.user_prompt
    page = member_client.get(reverse("history:task_detail", args=[short_task.pk])).content.decode()
    assert '<h1 class="prompt-title">Best roller coasters in Europe</h1>' in page
    assert "prompt-whole" not in page


def test_tasks_sent_together_are_told_apart_by_their_page_crumb(member_client):
    """Ids are UUIDv7 (their first 8 digits are the time to about a minute): every task of a batch read
    'Tasks / 01a2511e' at the top of its page; the crumb now gives the whole id."""
    first, second = make_task(), make_task()

    crumbs = []
    for task in (first, second):
        page = member_client.get(reverse("history:task_detail", args=[task.pk])).content.decode()
        crumb = re.search(r'<nav class="crumbs" aria-label="Breadcrumb">(.*?)</nav>', page, re.S).group(1)
        crumbs.append(re.sub(r"<[^>]+>", "", crumb))

    assert crumbs == [f"Tasks / {first.pk}", f"Tasks / {second.pk}"]


def test_an_answers_headings_sit_under_its_section_heading_so_the_page_keeps_one_h1(member_client):
    """An answer's '# Parks' was an <h1> beside the prompt's, larger than the 'Answer' heading above it,
    and read out by screen readers as a new top of the page; its headings now start two levels down."""
    task = make_task(answer_text="# Parks\n\n## Paris\n\nDisneyland.\n\n###### Small print", tag="t")

    for url in (reverse("history:task_detail", args=[task.pk]), reverse("history:tag_detail", args=["t"])):
        page = member_client.get(url).content.decode()

        assert len(re.findall(r"<h1[ >]", page)) == 1, url
        assert "<h3>Parks</h3>" in page and "<h4>Paris</h4>" in page and "<h6>Small print</h6>" in page


def test_task_page_of_a_pending_task_polls_until_final(member_client):
    task = make_task(status="pending")
    detail = reverse("history:task_detail", args=[task.pk])
    status_url = reverse("history:task_status", args=[task.pk])

    page = member_client.get(detail).content.decode()
    assert f'hx-get="{status_url}"' in page
    assert "provisional" in page

    fragment = member_client.get(status_url, headers={"HX-Request": "true"}).content.decode()
    assert 'hx-trigger="every 3s"' in fragment
    assert 'hx-swap-oob="true"' in fragment  # the timeline follows

    Task.objects.filter(pk=task.pk).update(status="completed", answer_text="**Done**", spend_is_final=True)
    fragment = member_client.get(status_url, headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in fragment
    assert "<strong>Done</strong>" in fragment


def test_task_page_head_follows_the_task_as_it_is_sent_and_completes(member_client):
    task = make_task(status="queued")
    detail = reverse("history:task_detail", args=[task.pk])
    status_url = reverse("history:task_status", args=[task.pk])
    assert "Not sent yet: nothing to ask the upstream about." in member_client.get(detail).content.decode()

    Task.objects.filter(pk=task.pk).update(
        status="pending", upstream_task_id="12070510-1535-0612-0000-09c21930dfc9", status_code=40602
    )
    fragment = member_client.get(status_url, headers={"HX-Request": "true"}).content.decode()
    assert "12070510-1535-0612-0000-09c21930dfc9" in fragment  # the upstream id appears
    assert "Not sent yet" not in fragment  # Refresh now is usable
    assert "Refresh now" in fragment

    Task.objects.filter(pk=task.pk).update(status="completed", resolved_model_name="gpt-4.1-mini-2025-04-14")
    fragment = member_client.get(status_url, headers={"HX-Request": "true"}).content.decode()
    assert "Final: nothing to refresh." in fragment
    assert "gpt-4.1-mini-2025-04-14" in fragment


def test_task_page_of_a_completed_task_without_answer_text_says_so(member_client):
    task = make_task(answer_text="", output_tokens=0)

    html = member_client.get(reverse("history:task_detail", args=[task.pk])).content.decode()

    assert "The upstream's result holds no answer text" in html


def test_task_page_of_a_task_whose_reply_was_lost_reloads_once_a_callback_has_found_it(member_client):
    task = make_task(status="unknown", upstream_task_id=None, spend_is_final=False)
    detail = reverse("history:task_detail", args=[task.pk])
    status_url = reverse("history:task_status", args=[task.pk]) + "?while=unknown"

    page = member_client.get(detail).content.decode()
    assert f'hx-get="{status_url}"' in page  # a callback or tasks_ready may find it any moment
    still = member_client.get(status_url, headers={"HX-Request": "true"})
    assert 'hx-trigger="every 10s"' in still.content.decode() and "HX-Refresh" not in still.headers

    Task.objects.filter(pk=task.pk).update(status="completed", spend_is_final=True)
    found = member_client.get(status_url, headers={"HX-Request": "true"})
    assert found.headers["HX-Refresh"] == "true"  # the whole page, without the Resolve panel


def test_task_page_of_a_task_being_sent_reloads_once_its_reply_is_lost(member_client):
    task = make_task(status="queued")
    status_url = reverse("history:task_status", args=[task.pk])
    assert "HX-Refresh" not in member_client.get(status_url, headers={"HX-Request": "true"}).headers

    Task.objects.filter(pk=task.pk).update(status="unknown")
    lost = member_client.get(status_url, headers={"HX-Request": "true"})

    assert lost.headers["HX-Refresh"] == "true"  # the whole page: its explanation and Resolve panel


def _badge(html: str, task) -> str:
    row = html.split(f'data-task="{task.pk}"')[1].split("</tr>")[0]
    return re.search(r'<span class="badge badge-(\w+)"[^>]*>([^<]*)<', row).groups()


def test_a_queued_task_being_sent_reads_sending_in_list_and_home_rows_as_on_its_page(member_client):
    task = make_task_being_sent(user_prompt="Being sent")
    waiting = make_task(status="queued", user_prompt="Still waiting")  # no worker has its chunk yet

    with CaptureQueriesContext(connection) as captured:
        listed = member_client.get(LIST).content.decode()
    home = member_client.get("/").content.decode()
    polled = member_client.get(reverse("history:task_status", args=[task.pk]) + "?part=row").content.decode()
    page = member_client.get(reverse("history:task_detail", args=[task.pk])).content.decode()

    assert 'badge badge-sending" title="Sending">Sending<' in page
    for html in (listed, home, polled):
        assert _badge(html, task) == ("sending", "Sending")
    assert _badge(listed, waiting) == ("queued", "Queued")
    Task.objects.filter(pk=task.pk).update(chunk=None)
    with CaptureQueriesContext(connection) as unchunked:
        member_client.get(LIST)
    assert len(captured) == len(unchunked)  # read with the rows, not one query more


def test_the_status_filter_finds_a_task_by_the_status_its_row_shows(member_client):
    being_sent = make_task_being_sent(user_prompt="Being sent")
    live_sending = make_task(status="sending", mode="live", user_prompt="Live, in flight", events=["created"])
    waiting = make_task(status="queued", user_prompt="Still waiting")
    planned = make_task(status="queued", user_prompt="Chunk planned")
    chunk = SendChunk.objects.create(
        credential=planned.credential, provider="chat_gpt", task_count=1, not_before=timezone.now()
    )
    Task.objects.filter(pk=planned.pk).update(chunk=chunk)

    sending = member_client.get(LIST + "?status=sending")
    queued = member_client.get(LIST + "?status=queued")

    assert sorted(_ids(sending)) == sorted([str(being_sent.pk), str(live_sending.pk)])
    assert {_badge(sending.content.decode(), task) for task in (being_sent, live_sending)} == {
        ("sending", "Sending")
    }
    assert sorted(_ids(queued)) == sorted([str(waiting.pk), str(planned.pk)])
    assert sending.context["page"].count_label == "2" and queued.context["page"].count_label == "2"
    # The exports take the same filter.
    assert {row["id"] for row in _export(member_client, "csv", "?status=sending")} == {
        str(being_sent.pk),
        str(live_sending.pk),
    }
    assert {row["id"] for row in _export(member_client, "json", "?status=queued")} == {
        str(waiting.pk),
        str(planned.pk),
    }


def test_the_in_progress_status_lists_every_task_not_finished_in_the_list_and_exports(member_client):
    active = {
        str(task.pk)
        for task in (
            make_task_being_sent(),
            make_task(status="queued"),
            make_task(status="sending", mode="live", events=["created"]),
            make_task(status="submitted"),
            make_task(status="pending"),
        )
    }
    for status in ("completed", "failed", "unknown"):
        make_task(status=status)

    response = member_client.get(LIST + "?status=in_progress")

    assert set(_ids(response)) == active
    assert response.context["page"].count_label == "5"
    assert not response.context["form"].errors
    assert '<option value="in_progress" selected>In progress</option>' in response.content.decode()
    assert {row["id"] for row in _export(member_client, "csv", "?status=in_progress")} == active
    assert {row["id"] for row in _export(member_client, "json", "?status=in_progress")} == active


def test_the_exports_say_the_status_each_row_and_page_shows(member_client):
    """A queued task whose chunk a worker is sending reads "Sending" in the list and on its page: the
    exports say `sending` too, whatever the database (on PostgreSQL the CSV is written by COPY)."""
    being_sent = make_task_being_sent(user_prompt="Being sent")
    waiting = make_task(status="queued", user_prompt="Still waiting")
    planned = make_task(status="queued", user_prompt="Chunk planned")  # its chunk waits for a worker
    chunk = SendChunk.objects.create(
        credential=planned.credential, provider="chat_gpt", task_count=1, not_before=timezone.now()
    )
    Task.objects.filter(pk=planned.pk).update(chunk=chunk)
    live_sending = make_task(status="sending", mode="live", user_prompt="Live, in flight", events=["created"])
    lost = make_task(status="unknown", user_prompt="Reply lost")
    done = make_task(status="completed", user_prompt="Done")
    tasks = (being_sent, waiting, planned, live_sending, lost, done)

    listed = member_client.get(LIST).content.decode()
    shown = {str(task.pk): _badge(listed, task)[0] for task in tasks}
    page = member_client.get(reverse("history:task_detail", args=[being_sent.pk])).content.decode()

    assert shown[str(being_sent.pk)] == "sending" and 'badge badge-sending" title="Sending">Sending<' in page
    assert shown[str(waiting.pk)] == shown[str(planned.pk)] == "queued"
    assert shown[str(lost.pk)] == "unknown"
    for fmt in ("csv", "json"):
        exported = {row["id"]: row["status"] for row in _export(member_client, fmt)}
        assert exported == shown, fmt
        # Filtered by the status shown, the exported rows say that status.
        for status in ("sending", "queued"):
            rows = _export(member_client, fmt, f"?status={status}")
            assert rows and {row["status"] for row in rows} == {status}, (fmt, status)


def test_the_status_filter_costs_no_query_more(member_client):
    make_task_being_sent()
    make_task(status="queued")
    make_task(status="completed")

    def count(query: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert member_client.get(LIST + query).status_code == 200
        return len(captured)

    assert (
        count("?status=sending")
        == count("?status=queued")
        == count("?status=completed")
        == count("?status=in_progress")
    )


def test_a_tags_status_counts_match_the_rows_and_the_list_they_link_to(member_client):
    being_sent = make_task_being_sent(tag="t")
    waiting = make_task(status="queued", tag="t")
    make_task(status="completed", tag="t")

    page = member_client.get(reverse("history:tag_detail", kwargs={"tag": "t"}))

    counts = {status: n for status, _label, n in page.context["summary"].status_counts}
    assert counts == {"sending": 1, "queued": 1, "completed": 1}
    html = page.content.decode()
    assert 'status=sending">' in html
    assert _ids(member_client.get(LIST + "?tag=t&status=sending")) == [str(being_sent.pk)]
    assert _ids(member_client.get(LIST + "?tag=t&status=queued")) == [str(waiting.pk)]


def test_task_page_shows_citations_reasoning_and_fan_out(member_client):
    answer = "Parks matter ([site.example](https://site.example/a))."
    start = answer.index("(")
    task = make_task(
        answer_text=answer,
        reasoning_text="I considered *parks*.",
        fan_out_queries=["france parks 2025"],
        citations=[
            {
                "title": "Site A",
                "url": "https://site.example/a",
                "domain": "site.example",
                "start_index": start,
                "end_index": len(answer) - 1,
                "text": "",
            },
            {"title": "No span", "url": "https://other.example/", "domain": "other.example"},
        ],
    )

    page = member_client.get(reverse("history:task_detail", args=[task.pk])).content.decode()

    assert '<mark class="cited">' in page
    assert 'href="#cite-1"' in page and 'id="cite-1"' in page
    assert "Site A" in page and "other.example" in page
    assert "<em>parks</em>" in page
    assert "france parks 2025" in page


@pytest.mark.parametrize(
    "citations",
    [
        ["a note", None, 5, {"url": "https://site.example/a", "title": "Site A", "domain": "site.example"}],
        {"url": "https://site.example/a", "title": "Site A"},  # one object, not a list
    ],
)
def test_task_page_lists_only_the_citation_objects_a_stored_list_holds(member_client, citations):
    # The parser stores a list of objects; the admin or a shell can store anything JSON holds.
    task = make_task(answer_text="Parks matter.", citations=citations, fan_out_queries={"not": "a list"})

    response = member_client.get(reverse("history:task_detail", args=[task.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    if isinstance(citations, list):
        assert "Citations <small>(1)</small>" in html
        # Numbered as the answer's highlights number it: by its place in the stored list.
        assert '<li id="cite-4" value="4">' in html and 'class="cite-title">Site A</a>' in html
    else:
        assert "Citations" not in html
    assert "Fan-out queries" not in html


def test_the_task_pages_credential_reads_without_nested_brackets(member_client):
    task = make_task(credential=make_credential(name="Stand-in (AIsa)"))

    html = member_client.get(reverse("history:task_detail", args=[task.pk])).content.decode()

    kind = task.credential.get_kind_display()
    assert f"<dt>Credential</dt><dd>Stand-in (AIsa) · {kind}</dd>" in html


def test_unknown_task_is_404(member_client):
    assert member_client.get("/tasks/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert member_client.get("/tasks/not-a-uuid/").status_code == 404


def test_editing_labels_and_note_is_recorded_in_the_timeline(member_client, member_user):
    task = make_task(labels=["old"])
    url = reverse("history:task_edit", args=[task.pk])

    response = member_client.post(url, {"labels": "baseline, q3 ,baseline", "note": "Compare with July."})

    assert response.status_code == 302
    assert sorted(task.labels.values_list("name", flat=True)) == ["baseline", "q3"]
    task.refresh_from_db()
    assert task.note == "Compare with July."
    page = member_client.get(reverse("history:task_detail", args=[task.pk])).content.decode()
    assert "Added labels baseline, q3; removed label old." in page
    assert "Changed the note." in page
    assert "by member" in page


def test_editing_labels_with_htmx_returns_the_form_and_timeline(member_client):
    task = make_task()

    response = member_client.post(
        reverse("history:task_edit", args=[task.pk]),
        {"labels": "x", "note": ""},
        headers={"HX-Request": "true"},
    )

    page = response.content.decode()
    assert 'id="task-labels"' in page
    assert "Saved." in page
    assert 'id="task-timeline" class="timeline-card" aria-labelledby="timeline-h" hx-swap-oob="true"' in page


def test_an_overlong_label_is_refused_without_saving(member_client):
    task = make_task()

    response = member_client.post(reverse("history:task_edit", args=[task.pk]), {"labels": "x" * 61})

    assert response.status_code == 400
    assert not task.labels.exists()
    assert "longer than 60" in response.content.decode()


def test_refresh_now_calls_task_fetch_once(member_client, member_user, monkeypatch):
    task = make_task(status="pending")
    calls = []

    def fake_fetch(*, task_id, actor=None, **kwargs):
        calls.append((str(task_id), actor))
        Task.objects.filter(pk=task_id).update(status="completed")
        return Task.objects.get(pk=task_id)

    monkeypatch.setattr("tasks.submission.collection.task_fetch", fake_fetch)

    response = member_client.post(
        reverse("history:task_refresh", args=[task.pk]), headers={"HX-Request": "true"}
    )

    assert calls == [(str(task.pk), member_user)]
    assert response.status_code == 200
    assert "hx-trigger" not in response.content.decode()


def test_refresh_is_post_only(member_client):
    task = make_task(status="pending")

    assert member_client.get(reverse("history:task_refresh", args=[task.pk])).status_code == 405


# --- Tags -------------------------------------------------------------------------------------------


def test_tag_page_sums_equal_the_sum_of_its_tasks(member_client):
    tag = "team-a:parks/fr"
    tasks = [
        make_task(tag=tag, money_spent=Decimal("0.0286")),
        make_task(tag=tag, money_spent=Decimal("0.1"), provider="claude"),
        make_task(tag=tag, status="pending"),
        make_task(tag=tag, status="failed"),
    ]
    make_task(tag="other", money_spent=Decimal("5"))

    response = member_client.get(reverse("history:tag_detail", kwargs={"tag": tag}))

    summary = response.context["summary"]
    assert summary.count == 4
    assert summary.spend == sum(t.spend for t in tasks)
    assert summary.final_spend == sum(t.spend for t in tasks if t.spend_is_final)
    assert sum(n for _, _, n in summary.status_counts) == 4
    assert sum(row["n"] for row in summary.models) == 4
    assert sum(row["total"] for row in summary.models) == summary.spend


def test_tag_pages_models_name_their_provider_as_every_other_page_does(member_client):
    make_task(tag="t", provider="chat_gpt", model_name="gpt-4.1")
    make_task(tag="t", provider="claude", model_name="claude-sonnet-4-5")

    page = member_client.get(reverse("history:tag_detail", kwargs={"tag": "t"})).content.decode()

    models = page.split('id="models-h"', 1)[1].split("</section>", 1)[0]
    models = re.sub(r'href="[^"]*"', "", models)  # the links carry the key (provider=chat_gpt), not shown
    assert "ChatGPT" in models and "Claude" in models
    assert "chat_gpt" not in models and "claude<" not in models


@pytest.mark.parametrize(
    "tag", ["team-a:parks", "a/b/c", "50% off?", "#hash", "..", "with space", "trailing/"]
)
def test_tags_with_special_characters_have_working_pages(member_client, tag):
    make_task(tag=tag)

    url = reverse("history:tag_detail", kwargs={"tag": tag})
    response = member_client.get(url)

    assert response.status_code == 200
    assert response.context["summary"].tag == tag
    assert url in member_client.get(reverse("history:tag_list")).content.decode()


def test_unknown_tag_is_404(member_client):
    assert member_client.get(reverse("history:tag_detail", kwargs={"tag": "nope"})).status_code == 404


def test_tag_page_shows_answers_over_time_with_a_diff(member_client):
    now = timezone.now()
    prompt = "Which parks are most visited?"
    make_task(
        tag="t", user_prompt=prompt, answer_text="Disneyland leads.", created_at=now - timedelta(days=2)
    )
    make_task(
        tag="t", user_prompt=prompt, answer_text="Disneyland leads.", created_at=now - timedelta(days=1)
    )
    make_task(tag="t", user_prompt=prompt, answer_text="Europa-Park <b>leads</b>.", created_at=now)

    page = member_client.get(reverse("history:tag_detail", kwargs={"tag": "t"})).content.decode()

    assert "same answer as before" in page
    assert "<del>Disneyland </del><ins>Europa-Park &lt;b&gt;</ins>leads" in page
    assert "<b>leads" not in page


def test_a_run_without_answer_text_is_said_so_on_the_tag_page_and_the_next_is_diffed_past_it(member_client):
    """A completed run whose result held no answer text (a reasoning model spent every output token) read
    'changed (0% similar)' with the whole answer struck out, and the next run '0% similar' against
    nothing, though it changed one word from the answer before."""
    now = timezone.now()
    prompt = "Which parks are most visited?"
    make_task(
        tag="t", user_prompt=prompt, answer_text="Disneyland leads.", created_at=now - timedelta(hours=3)
    )
    empty = make_task(tag="t", user_prompt=prompt, answer_text="", created_at=now - timedelta(hours=2))
    make_task(
        tag="t", user_prompt=prompt, answer_text="Europa-Park leads.", created_at=now - timedelta(hours=1)
    )

    page = member_client.get(reverse("history:tag_detail", kwargs={"tag": "t"})).content.decode()

    runs = re.findall(r'<li class="run">(.*?)</li>', page, re.S)
    assert str(empty.pk) in runs[1]
    assert "no answer text" in runs[1] and "<del>" not in runs[1] and "similar" not in runs[1]
    assert "<del>Disneyland </del><ins>Europa-Park </ins>leads." in runs[2]
    assert "(60% similar)" in runs[2]


def test_a_linked_prompt_the_tag_never_ran_is_said_so_and_the_picker_does_not_pretend(member_client):
    """A monitor's page links its prompt to the tag page; after its prompt was edited, and before a run,
    the tag page showed the picker's first prompt as chosen beside 'No completed answer for this prompt
    yet.', and picking that prompt did nothing. An empty ?prompt= showed no timeline at all."""
    make_task(tag="t", user_prompt="Which parks lead?", answer_text="Disneyland.")
    url = reverse("history:tag_detail", kwargs={"tag": "t"})

    page = member_client.get(url, {"prompt": "Which parks lead in 2027?"}).content.decode()

    assert "No task with this tag has asked “Which parks lead in 2027?” yet." in page
    selected = re.findall(r"<option ([^>]*)selected[^>]*>([^<]*)</option>", page)
    assert selected == [('value="" ', "Pick a prompt")]
    page = member_client.get(url, {"prompt": ""}).content.decode()
    assert "Disneyland." in page
    assert '<option value="Which parks lead?" selected>' in page


def test_a_linked_prompt_beyond_the_pickers_list_is_the_one_it_shows_selected(member_client, monkeypatch):
    """A monitor's page links each of its prompts to the tag page (?prompt=…). A prompt older than the
    picker's newest few was shown as the first prompt of the picker beside the other prompt's timeline,
    and picking that first prompt changed nothing (it already looked chosen)."""
    monkeypatch.setattr(tags, "TAG_PROMPTS", 2)
    now = timezone.now()
    for n, prompt in enumerate(["Oldest prompt?", "Older prompt?", "Newer prompt?", "Newest prompt?"]):
        make_task(
            tag="t", user_prompt=prompt, answer_text=f"Answer {n}.", created_at=now - timedelta(hours=9 - n)
        )
    make_task(tag="t", user_prompt="Oldest prompt?", status="failed", created_at=now - timedelta(hours=10))

    page = member_client.get(
        reverse("history:tag_detail", kwargs={"tag": "t"}), {"prompt": "Oldest prompt?"}
    ).content.decode()

    options = re.findall(r"<option value=\"([^\"]*)\"( selected)?>([^<]*)</option>", page)
    assert [(value, bool(selected)) for value, selected, _ in options] == [
        ("Newest prompt?", False),
        ("Newer prompt?", False),
        ("Oldest prompt?", True),
    ]
    assert options[-1][2] == "Oldest prompt? (1 answer)"
    assert "Answer 0." in page


def test_tag_page_counts_cited_domains(member_client):
    cite = {"title": "x", "url": "https://a.example/", "domain": "a.example"}
    make_task(tag="t", citations=[cite, cite, {**cite, "domain": "b.example"}])
    make_task(tag="t", citations=[cite])

    summary = member_client.get(reverse("history:tag_detail", kwargs={"tag": "t"})).context["summary"]

    assert summary.domains == [("a.example", 2), ("b.example", 1)]


def test_tag_pages_domain_sample_of_one_answer_is_grammatical(member_client):
    cite = {"title": "x", "url": "https://a.example/", "domain": "a.example"}
    make_task(tag="one", citations=[cite])
    make_task(tag="two", citations=[cite])
    make_task(tag="two", citations=[cite])

    one = member_client.get(reverse("history:tag_detail", kwargs={"tag": "one"})).content.decode()
    two = member_client.get(reverse("history:tag_detail", kwargs={"tag": "two"})).content.decode()

    assert "over its one completed answer." in one and "1 newest completed answers" not in one
    assert "over the 2 newest completed answers." in two


def test_tag_page_domains_skip_what_is_not_a_cited_domain_and_keep_one_order(member_client):
    def cite(domain):
        return {"title": "x", "url": "https://x.example/", "domain": domain}

    # Two domains tied at 2: listed by name, so the list is the same on every load.
    make_task(tag="t", citations=[cite("zeta.example"), cite("alpha.example")])
    make_task(tag="t", citations=[cite("alpha.example"), cite("zeta.example"), cite("mid.example")])
    # What a stored list may hold that is not a cited domain: none of it counts, none of it breaks the page.
    make_task(tag="t", citations=["https://a.example/", 7, None, cite(""), cite(None), cite(5), {"url": "u"}])
    make_task(tag="t", citations={"domain": "not-a-list.example"})
    make_task(tag="t", citations=[])
    make_task(tag="t", citations=[cite("pending.example")], status="pending")  # not an answer yet

    response = member_client.get(reverse("history:tag_detail", kwargs={"tag": "t"}))
    summary = response.context["summary"]

    assert summary.domains == [("alpha.example", 2), ("zeta.example", 2), ("mid.example", 1)]
    assert summary.domains_sampled == 5  # every completed answer, with citations or not
    assert "over the 5 newest completed answers" in response.content.decode()


def test_tag_page_counts_domains_over_the_newest_answers_only(member_client, monkeypatch):
    monkeypatch.setattr(tags, "TAG_DOMAIN_SAMPLE", 2)
    now = timezone.now()
    for days, domain in ((3, "old.example"), (2, "new.example"), (1, "new.example")):
        make_task(tag="t", citations=[{"domain": domain}], created_at=now - timedelta(days=days))

    summary = member_client.get(reverse("history:tag_detail", kwargs={"tag": "t"})).context["summary"]

    assert (summary.domains_sampled, summary.domains) == (2, [("new.example", 2)])


def test_tags_index_has_count_spend_first_and_last_run(member_client):
    now = timezone.now()
    first = make_task(tag="t", created_at=now - timedelta(days=3))
    last = make_task(tag="t", created_at=now, status="pending")
    make_task(tag="")

    response = member_client.get(reverse("history:tag_list"))

    (row,) = response.context["tags"]
    assert row["tag"] == "t"
    assert row["count"] == 2
    assert row["total"] == first.spend + last.spend
    assert row["first_run"] == first.created_at
    assert row["last_run"] == last.created_at
    assert row["active"] == 1


def test_tags_index_active_count_leads_to_the_tags_tasks_in_progress(member_client):
    active = {str(make_task(tag="t", status=status).pk) for status in ("queued", "submitted", "pending")}
    active.add(str(make_task_being_sent(tag="t").pk))
    make_task(tag="t", status="completed")
    make_task(tag="other", status="pending")
    make_task(tag="done", status="completed")

    html = member_client.get(reverse("history:tag_list")).content.decode()

    cells = dict(
        re.findall(
            r'<a class="tag" href="[^"]*">([^<]*)</a></td>\s*<td class="num">.*?</td>\s*'
            r'<td class="num">(.*?)</td>',
            html,
            re.S,
        )
    )
    link = re.fullmatch(r'<a href="([^"]*)">4</a>', cells["t"])
    assert link, cells["t"]
    listed = member_client.get(unescape(link.group(1)))
    assert set(_ids(listed)) == active and listed.context["page"].count_label == "4"
    assert cells["done"] == "0"  # nothing to open


# --- Home -------------------------------------------------------------------------------------------


def test_home_shows_pending_recent_and_this_months_spend(member_client, member_user):
    make_task(status="pending", user_prompt="Still waiting", submitted_by=member_user)
    make_task(status="completed", user_prompt="All done", money_spent=Decimal("0.1"))
    make_task(created_at=timezone.now() - timedelta(days=70), money_spent=Decimal("7"))

    response = member_client.get(reverse("history:home"))
    page = response.content.decode()

    summary = response.context["summary"]
    assert [t.user_prompt for t in summary.pending] == ["Still waiting"]
    assert summary.month_spend == Decimal("0.0102") + Decimal("0.1002")
    assert summary.my_month_spend == Decimal("0.0102")
    assert "Still waiting" in page and "All done" in page


def _in_progress_link(page: str) -> re.Match:
    stat = r'<span class="stat-value">([^<]*)</span><span class="stat-label">'
    return re.search(stat + r'<a href="([^"]*)">in progress</a>', page)


def test_homes_in_progress_count_leads_to_the_list_of_the_tasks_it_counts(member_client):
    make_task(status="submitted", user_prompt="Sent, no answer yet")
    make_task(status="queued", user_prompt="Not sent yet")
    make_task_being_sent(user_prompt="Being sent")
    make_task(status="completed", user_prompt="Done")

    page = member_client.get(reverse("history:home")).content.decode()

    link = _in_progress_link(page)
    assert link, "the count of the tasks in progress, with its link"
    assert link.group(1) == "3"
    listed = member_client.get(unescape(link.group(2)))
    assert {t.user_prompt for t in listed.context["page"].tasks} == {
        "Sent, no answer yet",
        "Not sent yet",
        "Being sent",
    }
    # The section's heading leads to the same list.
    heading = re.search(r'<h2 id="pending-h"><a href="([^"]*)">In progress</a></h2>', page)
    assert heading and heading.group(1) == link.group(2)


@pytest.mark.parametrize("active", [10, 11, 12])
def test_homes_in_progress_count_is_what_its_link_lists(member_client, active):
    credential = make_credential()
    for _ in range(active):
        make_task(status="submitted", credential=credential)

    page = member_client.get(reverse("history:home")).content.decode()

    shown, href = _in_progress_link(page).groups()
    assert shown == member_client.get(unescape(href)).context["page"].count_label == str(active)
    section = page.split('id="pending-h"', 1)[1].split("</section>", 1)[0]
    assert section.count("<tr data-task=") == 10


@pytest.mark.parametrize(("n", "said"), [(1, "task this month"), (2, "tasks this month")])
def test_homes_count_of_this_months_tasks_is_grammatical(member_client, n, said):
    for _ in range(n):
        make_task()

    page = member_client.get(reverse("history:home")).content.decode()

    stat = rf'<span class="stat-value">{n}</span><span class="stat-label">'
    assert re.search(stat + rf'<a href="[^"]+">{said}</a>', page)


def test_homes_count_of_this_months_tasks_leads_to_the_list_of_those_tasks(member_client):
    now = timezone.now()
    this_month = [make_task(status=status) for status in ("completed", "failed", "queued", "unknown")]
    make_task(created_at=now - timedelta(days=70))

    page = member_client.get(reverse("history:home")).content.decode()

    stat = r'<span class="stat-value">(\d+)</span><span class="stat-label">'
    found = re.search(stat + r'<a href="([^"]*)">tasks this month</a>', page)
    assert found, "the count of this month's tasks, with its link"
    shown, href = found.groups()
    listed = member_client.get(unescape(href))
    assert shown == listed.context["page"].count_label == str(len(this_month))
    assert set(_ids(listed)) == {str(task.pk) for task in this_month}


def test_home_for_someone_without_a_role_explains_instead_of_failing(client):
    client.force_login(make_user("newcomer"))

    response = client.get(reverse("history:home"))

    assert response.status_code == 200
    assert "no role yet" in response.content.decode()


# --- Queries do not grow with the data ----------------------------------------------------------------


def _many(n: int, **fields):
    users = [make_user() for _ in range(3)]
    credential = make_credential()
    for i in range(n):
        make_task(submitted_by=users[i % 3], credential=credential, labels=["a", f"l{i}"], **fields)


@pytest.mark.parametrize(
    ("url", "fields"),
    [
        (LIST, {}),
        (LIST + "?provider=chat_gpt&person=1&label=a&q=park", {}),
        ("/tags/t/", {"tag": "t"}),
        ("/tags/", {"tag": "t"}),
        ("/", {"status": "pending"}),
    ],
)
def test_page_queries_do_not_grow_with_the_number_of_tasks(
    member_client, django_assert_max_num_queries, url, fields
):
    def count_queries():
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            assert member_client.get(url).status_code == 200
        return len(captured)

    _many(3, **fields)
    few = count_queries()
    _many(30, **fields)
    many = count_queries()

    assert few == many
    with django_assert_max_num_queries(15):
        member_client.get(url)


def test_task_page_queries_do_not_grow_with_events_or_labels(member_client, django_assert_num_queries):
    small = make_task(labels=["a"], events=["created"])
    big = make_task(labels=[f"l{i}" for i in range(15)], events=["polled"] * 40)
    for event in big.events.all()[:20]:
        event.actor = make_user()
        event.save()

    def count(task):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            member_client.get(reverse("history:task_detail", args=[task.pk]))
        return len(captured)

    assert count(small) == count(big)


# --- The task page says why Refresh now is off, and a lost reply once in plain words -------------------


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"status": "completed"}, "Final: nothing to refresh."),
        ({"status": "failed"}, "Final: nothing to refresh."),
        ({"status": "queued", "upstream_task_id": None}, "Not sent yet: nothing to ask the upstream about."),
        (
            {"status": "unknown", "upstream_task_id": None},
            "Reply lost: there is no upstream id to ask about.",
        ),
    ],
)
def test_a_disabled_refresh_now_says_why(member_client, fields, why):
    task = make_task(**fields)

    html = member_client.get(reverse("history:task_detail", args=[task.pk])).content.decode()

    button = re.search(r"<button[^>]*>Refresh now</button>", html).group(0)
    assert "disabled" in button and f'title="{why}"' in button
    assert f'<span id="refresh-why" class="muted small">{why}</span>' in html


def test_refresh_now_is_enabled_while_the_task_is_with_the_upstream(member_client):
    task = make_task(status="pending")

    html = member_client.get(reverse("history:task_detail", args=[task.pk])).content.decode()

    assert re.search(r"<button id=\"task-refresh-button\" type=\"submit\">Refresh now</button>", html)
    assert "refresh-why" not in html


REFUSALS = [
    ({"status": "completed"}, "Final: nothing to refresh."),
    ({"status": "failed"}, "Final: nothing to refresh."),
    ({"status": "queued", "upstream_task_id": None}, "Not sent yet: nothing to ask the upstream about."),
    ({"status": "unknown", "upstream_task_id": None}, "Reply lost: there is no upstream id to ask about."),
]


@pytest.mark.parametrize(("fields", "why"), REFUSALS)
def test_refresh_now_on_a_task_it_cannot_change_is_refused_politely_without_asking_the_upstream(
    member_client, monkeypatch, fields, why
):
    task = make_task(**fields)
    events = task.events.count()
    calls = []
    monkeypatch.setattr("tasks.submission.collection.task_fetch", lambda **kwargs: calls.append(kwargs))
    url = reverse("history:task_refresh", args=[task.pk])

    plain = member_client.post(url, follow=True)
    fragment = member_client.post(url, headers={"HX-Request": "true"})

    assert calls == []
    assert task.events.count() == events  # nothing recorded in its timeline
    assert plain.status_code == 200 and plain.redirect_chain[-1][0] == reverse(
        "history:task_detail", args=[task.pk]
    )
    said = [str(message) for message in plain.context["messages"]]
    assert said == [f"{why} Nothing was asked of the upstream."]
    assert "Asked the upstream" not in plain.content.decode()
    assert fragment.status_code == 200
    assert f'<span id="refresh-why" class="muted small">{why}</span>' in fragment.content.decode()


def test_refresh_now_on_a_task_being_sent_says_so_not_that_it_was_not_sent(member_client):
    queued = make_task_being_sent(upstream_task_id=None)
    live = make_task(status="sending", mode="live", upstream_task_id=None, events=["created"])

    for task in (queued, live):
        html = member_client.get(reverse("history:task_detail", args=[task.pk])).content.decode()
        assert 'badge badge-sending" title="Sending">Sending<' in html
        assert "Not sent yet" not in html
        why = "Being sent: the upstream has not given it an id yet."
        assert f'<span id="refresh-why" class="muted small">{why}</span>' in html


def test_a_lost_reply_is_explained_once_in_plain_words(member_client):
    technical = (
        "The reply to task_post was lost (no reply within 120 s). The upstream may have accepted and charged "
        "this task, so it was not sent again; it can be found upstream by its tag."
    )
    task = make_task(status="unknown", upstream_task_id=None, status_message=technical, events=[])
    task.events.create(kind="unknown", message=technical)

    html = member_client.get(reverse("history:task_detail", args=[task.pk])).content.decode()

    assert html.count(technical) == 1  # in the timeline only
    assert "its answer never came back, so nobody knows whether the upstream accepted it" in html
    assert f"<code>{task.request_body['tag']}</code>" in html


def test_a_lost_live_reply_does_not_send_anyone_looking_for_it_by_tag(member_client):
    task = make_task(status="unknown", mode="live", upstream_task_id=None, events=[])

    html = member_client.get(reverse("history:task_detail", args=[task.pk])).content.decode()

    assert "can be found upstream by its tag" not in html
    assert "A live task cannot be looked up upstream afterwards" in html


def test_the_tags_answer_diff_shows_rendered_text_with_links(member_client):
    now = timezone.now()
    prompt = "Who reports on parks?"
    make_task(
        tag="t",
        user_prompt=prompt,
        answer_text="Per [Reuters](https://www.reuters.com/p), **Disneyland** leads.",
        created_at=now - timedelta(days=1),
    )
    make_task(
        tag="t",
        user_prompt=prompt,
        answer_text="Per [BBC](https://www.bbc.com/p), **Disneyland** leads.",
        created_at=now,
    )

    page = member_client.get(reverse("history:tag_detail", kwargs={"tag": "t"})).content.decode()

    diff = re.search(r'<div class="diff">(.*?)</div>', page, re.S).group(1)
    assert '<ins><a href="https://www.bbc.com/p" rel="noopener noreferrer nofollow">BBC</a></ins>' in diff
    assert "www.reutersbbc" not in re.sub(r"<[^>]+>", "", diff) and "**" not in diff


# --- Home: needs attention ---------------------------------------------------------------------------


def test_home_counts_what_needs_attention_and_links_to_exactly_those_tasks(member_client):
    now = timezone.now()
    failed = [make_task(status="failed", user_prompt=f"Failed {i}") for i in range(2)]
    make_task(status="failed", user_prompt="Failed long ago", created_at=now - timedelta(days=20))
    lost = make_task(status="unknown", user_prompt="Lost one")
    stuck = make_task(status="pending", user_prompt="Stuck one", created_at=now - timedelta(minutes=45))
    never_sent = make_task(status="queued", user_prompt="Never sent", created_at=now - timedelta(minutes=40))
    make_task(status="submitted", user_prompt="Just sent", created_at=now - timedelta(minutes=5))
    make_task(status="completed", user_prompt="Done long ago", created_at=now - timedelta(hours=2))

    html = member_client.get(reverse("history:home")).content.decode()

    block = re.search(r'<section id="attention".*?</section>', html, re.S).group(0)
    assert re.search(r'data-testid="attention-failed">2<', block)
    assert re.search(r'data-testid="attention-unknown">1<', block)
    assert re.search(r'data-testid="attention-stale">2<', block)
    assert "waiting more than 30 minutes" in block and "within a few minutes" in block
    # It counts a task never sent too, so it says when it was created, not sent.
    assert "after it was sent" not in block
    assert "not finished 30 minutes after it was created (still queued or being sent" in block
    links = [link.replace("&amp;", "&") for link in re.findall(r'<a href="([^"]+)"', block)]
    listed = {}
    for link in links:
        page = member_client.get(link).content.decode()
        listed[link] = {t for t in Task.objects.values_list("user_prompt", flat=True) if f">{t}</a>" in page}
    assert list(listed.values()) == [
        {t.user_prompt for t in failed},
        {lost.user_prompt},
        {stuck.user_prompt, never_sent.user_prompt},
    ]


def test_home_names_the_monitors_no_scheduler_has_run_and_links_to_them(member_client, credential):
    from tests.monitors.factories import make_monitor

    home = reverse("history:home")
    now = timezone.now()
    make_monitor(credential=credential, name="Hotels", now=now - timedelta(days=3))  # due days ago

    html = member_client.get(home).content.decode()

    block = re.search(r'<section id="attention".*?</section>', html, re.S).group(0)
    assert re.search(r'data-testid="attention-monitors">1</strong> monitor not run since its time', block)
    assert f'href="{reverse("monitors:list")}"' in block
    assert "Nothing needs a look now" not in block
    listed = member_client.get(reverse("monitors:list")).content.decode()
    assert ">overdue</span>" in listed


def test_home_says_nothing_of_monitors_that_run_on_time(member_client, credential):
    from tests.monitors.factories import make_monitor

    make_monitor(credential=credential, name="Hotels", now=timezone.now())  # next slot still to come

    block = re.search(
        r'<section id="attention".*?</section>',
        member_client.get(reverse("history:home")).content.decode(),
        re.S,
    ).group(0)
    assert "attention-monitors" not in block and "Nothing needs a look now" in block


def test_home_says_when_tasks_wait_to_be_sent_and_no_worker_runs(member_client, credential):
    from tasks.models import SendChunk
    from tasks.submission import sending, workers

    spec = sending.TaskSpec(provider="chat_gpt", body={"user_prompt": "Parks?", "model_name": "gpt-4.1"})
    sending.submit_tasks(specs=[spec], credential=credential, user=None)
    home = reverse("history:home")
    assert "attention-no-worker" not in member_client.get(home).content.decode()  # just submitted

    SendChunk.objects.update(not_before=timezone.now() - timedelta(minutes=5))
    html = member_client.get(home).content.decode()
    workers.worker_seen(worker="host:1")

    assert 'data-testid="attention-no-worker"' in html and "bin/entrypoint worker" in html
    assert "attention-no-worker" not in member_client.get(home).content.decode()  # a worker runs


def test_the_task_list_filters_tasks_waiting_longer_than_usual(member_client):
    now = timezone.now()
    make_task(status="pending", user_prompt="Stuck one", created_at=now - timedelta(minutes=31))
    make_task(status="pending", user_prompt="Fresh one", created_at=now - timedelta(minutes=2))
    make_task(status="completed", user_prompt="Old and done", created_at=now - timedelta(hours=3))

    html = member_client.get(reverse("history:task_list") + "?stale=1").content.decode()

    assert "Stuck one" in html and "Fresh one" not in html and "Old and done" not in html
    assert re.search(r'<input type="checkbox" name="stale"[^>]*checked', html)


def test_the_task_page_shows_the_variables_that_filled_it_and_links_to_its_batch(member_client):
    from tasks.models import Batch

    version = make_template_version()
    version.fields = {"user_prompt": "Best {{dish}} in {{city}}?"}
    version.save()
    batch = Batch.objects.create(name="Nightly dishes", template_version=version)
    task = make_task(batch=batch, template_version=version, variables={"dish": "pho", "city": "Hanoi"})
    loose = make_task(variables={"dish": "pho", "city": "Hanoi"})  # no template: by name

    html = member_client.get(reverse("history:task_detail", args=[task.pk])).content.decode()
    loose_html = member_client.get(reverse("history:task_detail", args=[loose.pk])).content.decode()

    # In the template's order on both databases (PostgreSQL's jsonb would give city first).
    assert "<code>dish</code> = pho; <code>city</code> = Hanoi" in html
    assert "<code>city</code> = Hanoi; <code>dish</code> = pho" in loose_html
    assert f'<a href="{reverse("prompt_templates:batch_detail", args=[batch.pk])}">Nightly dishes</a>' in html


def test_the_task_pages_template_links_to_the_version_it_came_from_and_to_the_templates_tasks(
    member_client, member_user
):
    version = make_template_version("Dishes")
    version.template.versions.create(number=2, fields={})  # the link is to v1, the task's own
    task = make_task(template_version=version)

    html = member_client.get(reverse("history:task_detail", args=[task.pk])).content.decode()
    template_page = member_client.get(reverse("prompt_templates:detail", args=[version.template_id]))

    version_url = reverse("prompt_templates:version", args=[version.template_id, version.pk])
    tasks_url = reverse("history:task_list") + f"?template={version.template_id}"
    assert f'<dt>Template</dt><dd><a href="{version_url}">Dishes v1</a>' in html
    assert f'<a href="{tasks_url}">tasks from this template</a>' in html
    assert f'<a href="{tasks_url}">1 task</a>' in template_page.content.decode()


# --- Any stored tag leaves every page working ------------------------------------------------------

# Tags as they may already be stored (made before tags were checked, through the admin or the shell).
ODD_TAGS = [
    "team-a\nq1",
    "carriage\rreturn",
    "tab\there",
    "a/b/c",
    "50% off?",
    "#hash",
    "naïve 東京 🎈",
    "x" * 255,
    ".",
    "..",
    "a/../b",
    "a/./b",
    "trailing/",
    "/leading",
    "a//b",
    "~tilde",
    "with space",
    "line\u2028separator",
    " padded ",
]


def _tag_hrefs(html: str) -> list[str]:
    return [unescape(href) for href in re.findall(r'<a class="tag" href="([^"]*)"', html)]


def _survives_browsers(href: str) -> bool:
    """Browsers resolve `.` and `..` segments (also as %2e) and proxies merge `//`: a tag's link must
    have none of them, and no raw whitespace or control character."""
    path = urlsplit(href).path
    segments = path.strip("/").split("/")
    dots = {".", "..", "%2e", "%2e%2e", ".%2e", "%2e."}
    return (
        path.startswith("/tags/")
        and path.endswith("/")
        and all(segment and segment.lower() not in dots for segment in segments)
        and not re.search(r"[\s\x00-\x1f\x7f]", href)
    )


@pytest.mark.parametrize("tag", ODD_TAGS, ids=repr)
def test_any_stored_tag_leaves_every_page_working(team_admin_client, tag):
    task = make_task(tag=tag, labels=["a label"])
    make_task(tag="plain", status="pending")
    pages = [
        reverse("history:home"),
        LIST,
        f"{LIST}?{urlencode({'tag': tag})}",
        reverse("history:tag_list"),
        f"{reverse('history:tag_list')}?{urlencode({'q': tag})}",
        reverse("history:task_detail", args=[task.pk]),
        reverse("spend:page"),
    ]

    for url in pages:
        assert team_admin_client.get(url).status_code == 200, url
    index = team_admin_client.get(reverse("history:tag_list")).content.decode()
    detail = team_admin_client.get(reverse("history:task_detail", args=[task.pk])).content.decode()
    (href,) = [h for h in _tag_hrefs(index) if h != reverse("history:tag_detail", kwargs={"tag": "plain"})]
    assert _tag_hrefs(detail) == [href]
    assert href in _tag_hrefs(team_admin_client.get(LIST).content.decode())
    assert _survives_browsers(href), href
    response = team_admin_client.get(href)
    assert response.status_code == 200
    assert response.context["summary"].tag == tag
    assert response.context["summary"].count == 1
    assert team_admin_client.get(href + f"?{urlencode({'prompt': task.user_prompt})}").status_code == 200
    assert [row["tag"] for row in _export(team_admin_client, "json", f"?{urlencode({'tag': tag})}")] == [tag]
    assert [row["tag"] for row in _export(team_admin_client, "csv", f"?{urlencode({'tag': tag})}")] == [tag]
    # The tag page's and the tags index's links to the list find its task.
    in_list = re.search(r'href="(/tasks/\?tag=[^"]*)"', response.content.decode()).group(1)
    assert _ids(team_admin_client.get(unescape(in_list))) == [str(task.pk)]
    counts = re.findall(
        r'<a class="tag" href="([^"]*)">.*?</td>\s*<td class="num"><a href="([^"]*)">', index, re.S
    )
    counted = {unescape(tag_href): unescape(list_href) for tag_href, list_href in counts}[href]
    assert _ids(team_admin_client.get(counted)) == [str(task.pk)]


def test_a_tag_typed_with_a_stray_space_still_finds_its_tasks(member_client):
    parks = make_task(tag="parks")
    make_task(tag="")

    assert _ids(member_client.get(LIST, {"tag": "parks "})) == [str(parks.pk)]
    assert len(_ids(member_client.get(LIST, {"tag": "   "}))) == 2  # only spaces: no tag filter


def test_a_readable_tag_keeps_its_readable_url():
    assert reverse("history:tag_detail", kwargs={"tag": "team-a:parks/fr"}) == "/tags/team-a:parks/fr/"
    assert reverse("history:tag_detail", kwargs={"tag": "50% off?"}) == "/tags/50%25%20off%3F/"


@pytest.mark.parametrize("path", ["/tags/a%0Ab/", "/tags/~%21%21/", "/tags/~/", "/tags/~_w/", "/tags/~AA/"])
def test_a_tag_url_that_no_tag_makes_is_a_404(member_client, path):
    make_task(tag="a\nb")

    assert member_client.get(path).status_code == 404


# --- Count messages and the filter panel ------------------------------------------------------------


def test_the_match_count_is_grammatical(member_client):
    make_task(user_prompt="Parks in Lyon?", answer_text="Two.")
    make_task(user_prompt="Parks in Seville?", answer_text="Three.")

    one = member_client.get(LIST, {"q": "Lyon"}).content.decode()
    two = member_client.get(LIST, {"q": "Parks"}).content.decode()

    assert "<strong>1</strong> task matches these filters" in one
    assert "<strong>2</strong> tasks match these filters" in two


def test_the_tag_pages_count_is_grammatical(member_client):
    make_task(tag="solo")
    make_task(tag="pair")
    make_task(tag="pair")

    one = unescape(
        re.sub(
            r"\s+",
            " ",
            member_client.get(reverse("history:tag_detail", kwargs={"tag": "solo"})).content.decode(),
        )
    )
    two = unescape(
        re.sub(
            r"\s+",
            " ",
            member_client.get(reverse("history:tag_detail", kwargs={"tag": "pair"})).content.decode(),
        )
    )

    assert "Its task in the list" in one and "All 1 task" not in one and "1 tasks" not in one
    assert '<span class="stat-label">task</span>' in one
    assert "All 2 tasks in the list" in two
    assert '<span class="stat-label">tasks</span>' in two


def test_the_folded_filter_panel_says_how_many_filters_are_active(member_client):
    make_task()

    plain = member_client.get(LIST).content.decode()
    filtered = member_client.get(
        LIST, {"status": "completed", "provider": "chat_gpt", "sort": "cost"}
    ).content

    assert '<details class="filters-panel">' in plain and "active</span>" not in plain
    assert "· 2 active" in filtered.decode()  # the sort order is not a filter


def test_the_task_page_shows_exact_figures_in_its_cost_breakdown(member_client):
    task = make_task(status="completed", money_spent=Decimal("0.010508"))

    html = member_client.get(reverse("history:task_detail", args=[task.pk])).content.decode()

    assert "<strong>$0.010708</strong>" in html  # final cost, 6 places
    assert '<td class="num">$0.010200</td>' in html  # charged at post


@pytest.mark.parametrize(
    ("fields", "note"),
    [
        ({"status": "submitted"}, "refund pending"),  # charged the prepayment at post
        # accepted, then failed (no result, or an upstream id another task has): no refund will be seen
        ({"status": "failed", "spend_is_final": False}, "the charge at post, until it is settled"),
        ({"status": "queued"}, "estimate: nothing charged yet"),
        ({"status": "sending", "mode": "live", "charged": None}, "estimate: nothing charged yet"),
        ({"status": "unknown", "charged": None}, "estimate: the reply was lost"),
    ],
)
def test_the_provisional_amount_says_whether_it_was_charged(member_client, fields, note):
    task = make_task(events=[], **fields)

    html = member_client.get(reverse("history:task_detail", args=[task.pk])).content.decode()

    row = re.search(r"Counted now \(provisional\).*?</tr>", html, re.S).group(0)
    assert note in row
    if note != "refund pending":  # nothing was charged at post, or nothing more will be learned
        assert "refund" not in row


def test_a_live_tasks_cost_has_no_refund_row(member_client):
    """A live task is charged once, with its answer: nothing was prepaid, so there is nothing to refund (it
    read “Refunded (charge at post − final) $0.000000” on every live task)."""
    live = make_task(status="completed", mode="live")
    Task.objects.filter(pk=live.pk).update(charged=live.cost)
    queued = make_task(status="completed", money_spent=Decimal("0.001"))

    live_page = member_client.get(reverse("history:task_detail", args=[live.pk])).content.decode()
    queued_page = member_client.get(reverse("history:task_detail", args=[queued.pk])).content.decode()

    assert "Refunded" not in live_page and "Charged on completion" not in live_page
    assert "Refunded (charge at post − final)" in queued_page


def _timeline(page: str) -> str:
    """The tag page's answer timeline section, as the prompt picker swaps it."""
    start = page.index('<section id="tag-answers"')
    return page[start : page.index("</section>", start) + len("</section>")]


def test_picking_a_prompt_swaps_in_the_timeline_the_full_page_shows_and_reads_nothing_else(member_client):
    now = timezone.now()
    cite = {"title": "x", "url": "https://a.example/", "domain": "a.example"}
    for i, (prompt, answer) in enumerate([("first", "A leads."), ("first", "B leads."), ("second", "C.")]):
        make_task(
            tag="t", user_prompt=prompt, answer_text=answer, citations=[cite], created_at=now + timedelta(i)
        )
    url = reverse("history:tag_detail", kwargs={"tag": "t"})

    full = member_client.get(url, {"prompt": "first"}).content.decode()
    with CaptureQueriesContext(connection) as queries:
        response = member_client.get(url, {"prompt": "first"}, headers={"HX-Request": "true"})
    swapped = response.content.decode()

    assert swapped.strip() == _timeline(full)
    assert "<del>A </del><ins>B </ins>leads." in swapped and '<option value="second">' in swapped
    # The timeline's two reads of the tasks (its prompts, its runs): no totals, domains or recent rows.
    task_reads = [query["sql"] for query in queries.captured_queries if "tasks_task" in query["sql"]]
    assert len(task_reads) == 2, task_reads
    assert "a.example" not in swapped
    unknown = reverse("history:tag_detail", kwargs={"tag": "nope"})
    assert member_client.get(unknown, headers={"HX-Request": "true"}).status_code == 404


def _cursor(value, pk) -> str:
    return base64.urlsafe_b64encode(json.dumps([value, pk]).encode()).decode().rstrip("=")


UUID = "01a24d6e-86eb-7717-a534-6f4a94f0d2cd"
MADE_UP_CURSORS = [
    ("-created", ["2026-01-01T00:00:00+00:00", 1]),  # an id that is not a string
    ("-created", ["2026-01-01T00:00:00+00:00", [UUID]]),
    ("created", [True, UUID]),
    ("-created", ["9999-12-31T23:59:59-23:59", UUID]),  # past year 9999 in UTC
    ("-created", ["0001-01-01T00:00:00+23:59", UUID]),  # before year 1 in UTC
    ("-created", ["2026-01-01T00:00:00", UUID]),  # no time zone: no cursor of the list has none
    ("-cost", ["NaN", UUID]),
    ("cost", ["Infinity", UUID]),
    ("-cost", ["-Infinity", UUID]),
    ("cost", ["sNaN", UUID]),
    ("-cost", ["1E+30", UUID]),  # more than a money column holds
    ("cost", ["1E-999999", UUID]),  # more decimal places than it holds
    ("-cost", [0.5, UUID]),
]


@pytest.mark.parametrize(("sort", "cursor"), MADE_UP_CURSORS)
@pytest.mark.parametrize("direction", ["after", "before"])
def test_a_made_up_page_link_shows_the_first_page_with_a_notice(member_client, sort, cursor, direction):
    task = make_task(user_prompt="Still listed")

    response = member_client.get(LIST, {"sort": sort, direction: _cursor(*cursor)})

    assert response.status_code == 200
    page = response.content.decode()
    assert "That page link is not valid any more; showing the first page." in page
    assert _ids(response) == [str(task.pk)]
