"""Reads behind the history pages: filters, seek pagination cursors, tag and home summaries."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tasks.history import home, selectors, tags
from tasks.spend.budgets import month_start
from tests.factories import make_task

pytestmark = pytest.mark.django_db


def test_model_filter_matches_requested_or_resolved_name():
    task = make_task(model_name="gpt-4.1")  # resolved to gpt-4.1-2025-04-14 by the factory

    assert list(selectors.task_filter(model="gpt-4.1")) == [task]
    assert list(selectors.task_filter(model="gpt-4.1-2025-04-14")) == [task]
    assert not selectors.task_filter(model="gpt-4").exists()


def test_date_to_is_inclusive_of_the_whole_day():
    today = timezone.localdate()
    late = timezone.make_aware(timezone.datetime.combine(today, timezone.datetime.max.time()))
    task = make_task(created_at=late - timedelta(seconds=1))

    assert list(selectors.task_filter(date_from=today, date_to=today)) == [task]
    assert not selectors.task_filter(date_to=today - timedelta(days=1)).exists()


def test_cost_filters_use_the_current_spend():
    pending = make_task(status="pending")  # 0.0102 charged, provisional
    done = make_task(money_spent=Decimal("0.5"))

    assert list(selectors.task_filter(cost_max=Decimal("0.02"))) == [pending]
    assert list(selectors.task_filter(cost_min=Decimal("0.1"))) == [done]


def test_a_tampered_cursor_falls_back_to_the_first_page():
    make_task()

    page = selectors.task_list(filters={}, after="bm90LWpzb24")

    assert page.cursor_error
    assert len(page.tasks) == 1
    assert not page.previous_cursor


def test_first_page_has_no_previous_link_and_last_page_no_next():
    for _ in range(3):
        make_task()

    first = selectors.task_list(filters={}, page_size=2)
    second = selectors.task_list(filters={}, page_size=2, after=first.next_cursor)

    assert first.next_cursor and not first.previous_cursor
    assert second.previous_cursor and not second.next_cursor
    assert len(second.tasks) == 1


def test_list_rows_do_not_load_answers_or_raw_results(django_assert_num_queries):
    make_task(labels=["a"])

    page = selectors.task_list(filters={})
    with django_assert_num_queries(0):
        row = page.tasks[0]
        _ = (row.submitted_by, row.label_list[0].name, row.spend, row.status, row.is_active)
    # Plain rows of only what the row shows: nothing else was read, nothing can be read lazily.
    for absent in ("result", "answer_text", "request_body", "credential"):
        assert not hasattr(row, absent)


def test_tag_summary_totals_cover_all_tasks_and_runs_are_oldest_first():
    now = timezone.now()
    a = make_task(tag="t", user_prompt="p", answer_text="one", created_at=now - timedelta(days=2))
    b = make_task(tag="t", user_prompt="p", answer_text="two", created_at=now - timedelta(days=1))
    c = make_task(tag="t", user_prompt="p", status="pending", created_at=now)

    summary = tags.tag_summary(tag="t")

    assert summary.count == 3
    assert summary.spend == a.spend + b.spend + c.spend
    assert summary.provisional_spend == c.spend
    assert [run.task.pk for run in summary.answers.runs] == [a.pk, b.pk]
    assert summary.answers.runs[1].changed
    assert "<del>one</del>" in summary.answers.runs[1].diff_html


def test_tag_summary_picks_the_requested_prompt():
    make_task(tag="t", user_prompt="first")
    make_task(tag="t", user_prompt="second")

    assert tags.tag_summary(tag="t", prompt="first").answers.runs[0].task.user_prompt == "first"


def test_home_summary_counts_only_this_month(member_user):
    make_task(money_spent=Decimal("1"), created_at=timezone.now() - timedelta(days=45))
    recent = make_task(status="pending", submitted_by=member_user)

    summary = home.home_summary(user=member_user)

    if recent.created_at >= summary.month_start:
        assert summary.month_spend == recent.spend
        assert summary.my_month_spend == recent.spend
    assert [row.pk for row in summary.pending] == [recent.pk]


def test_home_month_figures_are_the_sums_of_this_months_tasks_from_one_scan(member_user, team_admin):
    start = month_start()
    mine = [
        make_task(money_spent=Decimal("0.012345"), submitted_by=member_user),
        make_task(status="pending", submitted_by=member_user),  # provisional: charged, not final
    ]
    others = [
        make_task(money_spent=Decimal("0.5"), submitted_by=team_admin),
        make_task(money_spent=Decimal("0.25"), submitted_by=None),  # nobody's: the team's all the same
    ]
    make_task(money_spent=Decimal("7"), submitted_by=member_user, created_at=start - timedelta(days=3))

    with CaptureQueriesContext(connection) as queries:
        summary = home.home_summary(user=member_user)

    month = [task for task in mine + others if task.created_at >= start]
    assert summary.month_tasks == len(month)
    assert summary.month_spend == sum(task.spend for task in month)
    assert summary.month_final == sum(task.spend for task in month if task.spend_is_final)
    assert summary.my_month_spend == sum(task.spend for task in mine if task.created_at >= start)
    assert summary.month_final < summary.month_spend  # the pending task's charge is provisional
    # The team's total and mine come from the same scan of the month's tasks.
    spend_scans = [q["sql"] for q in queries.captured_queries if 'SUM("tasks_task"."spend")' in q["sql"]]
    assert len(spend_scans) == 1


def _prompts_by_hand(tasks: list, window: int, shown: int) -> list[dict]:
    """The prompt picker as it was computed in Python: the window's tasks newest first, each prompt in the
    order of its newest task, with its tasks and completed tasks in the window."""
    prompts: dict[str, dict] = {}
    newest_first = sorted(tasks, key=lambda task: (task.created_at, str(task.pk)), reverse=True)
    for task in newest_first[:window]:
        row = prompts.setdefault(task.user_prompt, {"user_prompt": task.user_prompt, "n": 0, "completed": 0})
        row["n"] += 1
        row["completed"] += task.status == "completed"
    return list(prompts.values())[:shown]


def test_the_prompt_picker_lists_the_windows_prompts_most_recently_run_first(monkeypatch):
    """Counted by the database over the tag's newest tasks: the prompts, their tasks and completed tasks,
    as the Python loop over the window counted them, ties on time included."""
    monkeypatch.setattr(tags, "TAG_PROMPT_WINDOW", 30)
    monkeypatch.setattr(tags, "TAG_PROMPTS", 6)
    now = timezone.now()
    made = []
    for i in range(40):
        made.append(
            make_task(
                tag="t",
                user_prompt=f"prompt {i % 9}" if i % 5 else "Ünïcode prompt, with ‘quotes’",
                status="pending" if i % 4 == 0 else "completed",
                # pairs of tasks at the same instant: the newest task of each decides on its id
                created_at=now - timedelta(minutes=i // 2),
            )
        )
    make_task(tag="other", user_prompt="prompt of another tag", created_at=now + timedelta(minutes=1))

    answers = tags.tag_answers(tag="t")

    expected = _prompts_by_hand(made, window=30, shown=6)
    assert [row["n"] for row in expected] != [row["completed"] for row in expected]  # both counted
    assert answers.prompts == expected
    assert answers.prompt == expected[0]["user_prompt"]
    assert tags.tag_answers(tag="none").prompts == []
