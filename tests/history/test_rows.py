"""The task table's rows, built as strings (tasks/history/rows.py), are the HTML the format_html version
wrote: every text escaped, live rows polling, tags linked and truncated."""

import uuid

import pytest
from django.db.models import Prefetch
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from tasks.history import rows
from tasks.history.selectors import LIST_FIELDS, task_list, task_ordered
from tasks.models import Task
from tests.factories import make_task, make_user

HOSTILE = "<script>alert(\"x\")</script> & 'q'"


def _reference_row(task, urls) -> str:
    """The row as the format_html version (before issue 18) built it."""
    detail = urls.of(urls.detail, task.pk)
    live = ""
    # A live row's poll carries its version (the view answers 204 while it is the same).
    poll = f"{urls.of(urls.status, task.pk)}?part=row&v={rows.row_version(task)}"
    if task.is_active:
        live = format_html(' hx-get="{}" hx-trigger="every 3s" hx-swap="outerHTML"', poll)
    elif task.status == "unknown":
        live = format_html(' hx-get="{}" hx-trigger="every 10s" hx-swap="outerHTML"', poll)
    created = timezone.localtime(task.created_at)
    tag = ""
    if task.tag:
        tag = format_html(
            '<a class="tag" href="{}">{}</a>',
            reverse("history:tag_detail", kwargs={"tag": task.tag}),
            Truncator(task.tag).chars(40),
        )
    labels = format_html_join(
        "", ' <span class="label">{}</span>', ((label.name,) for label in getattr(task, "label_list", ()))
    )
    return format_html(
        '<tr data-task="{pk}" class="task-row status-{status}"{live}>\n'
        '  <td class="when"><a href="{detail}"><time datetime="{iso}">{when}</time></a></td>\n'
        "  <td>{person}</td>\n"
        '  <td><span class="provider provider-{provider}">{provider_label}</span> '
        '<span class="model">{model}</span></td>\n'
        '  <td class="prompt"><a href="{detail}" title="{prompt}">{prompt_short}</a></td>\n'
        '  <td class="tags">{tag}{labels}</td>\n'
        "  <td>{badge}</td>\n"
        '  <td class="num">{cost}</td>\n'
        "</tr>\n",
        pk=task.pk,
        status=task.status,
        live=live,
        detail=detail,
        iso=date_format(created, "c"),
        when=date_format(created, "Y-m-d H:i"),
        person=(task.submitted_by.username if task.submitted_by_id else "") or "—",
        provider=task.provider,
        provider_label=rows.PROVIDER_LABELS.get(task.provider, task.provider),
        model=task.resolved_model_name or task.model_name,
        prompt=task.user_prompt,
        prompt_short=Truncator(task.user_prompt).chars(90),
        tag=tag,
        labels=labels,
        badge=rows.status_badge(task.status, task.status_message),
        cost=rows.task_cost(task),
    )


@pytest.mark.django_db
def test_rows_are_the_html_the_format_html_rows_were():
    person = make_user(f"ann{HOSTILE}"[:150])
    make_task(user_prompt=HOSTILE, tag=f"team/{HOSTILE}", labels=[HOSTILE, "plain"], submitted_by=person)
    make_task(user_prompt="é" * 200, tag="x" * 80, status="pending")
    make_task(user_prompt="short", tag="", status="failed", status_message=HOSTILE)
    make_task(user_prompt="e\u0301" * 100, tag="café\u0301 ~odd/../tag", status="submitted")
    make_task(user_prompt="a" * 90, tag="t" * 40, status="queued")
    make_task(user_prompt="b", tag="a b?c#d%e&f=g'h\"i/~j:k@l", status="completed")
    make_task(user_prompt="c", tag="~starts-with-the-mark\n", status="completed")
    make_task(user_prompt="d", tag="", status="unknown")
    page = task_list(filters={}, sort="-created")
    assert len(page.tasks) == 8
    urls = rows.TaskUrls()
    for task in page.tasks:
        assert rows._row(task, rows.TaskUrls()) == _reference_row(task, urls)
    table = rows.task_rows(page.tasks)
    assert "<script>" not in table
    assert table.count("<tr ") == 8
    assert table.count('hx-trigger="every 3s"') == 3  # pending, submitted and queued poll
    assert table.count('hx-trigger="every 10s"') == 1  # unknown polls slowly


def test_short_ascii_text_skips_the_truncator_and_other_text_does_not():
    assert rows._chars("short", 90) == "short"
    assert rows._chars("x" * 91, 90) == Truncator("x" * 91).chars(90)
    assert rows._chars("e\u0301", 90) == Truncator("e\u0301").chars(90)
    assert str(uuid.UUID(int=0)) in rows.TaskUrls().of(rows.TaskUrls().detail, uuid.UUID(int=0))


@pytest.mark.django_db
def test_the_lists_plain_rows_render_as_the_model_instances_did():
    """The list reads its rows as tuples (selectors.TaskRow): the table model instances gave, unchanged."""
    person = make_user(f"ann{HOSTILE}"[:150])
    make_task(user_prompt=HOSTILE, tag=f"team/{HOSTILE}", labels=[HOSTILE, "b", "a"], submitted_by=person)
    make_task(user_prompt="é" * 200, tag="x" * 80, status="pending", labels=["only"])
    make_task(user_prompt="short", tag="", status="failed", status_message=HOSTILE, submitted_by=None)
    make_task(
        user_prompt="e\u0301" * 100, tag="café\u0301 ~odd/../tag", status="submitted", submitted_by=person
    )
    make_task(user_prompt="a" * 90, tag="t" * 40, status="queued", resolved_model_name=HOSTILE)
    make_task(user_prompt="b", tag="a b?c#d%e&f=g'h\"i/~j:k@l", status="unknown", spend_is_final=False)
    instances = (
        Task.objects.select_related("submitted_by", "credential")
        .only(*LIST_FIELDS)
        .prefetch_related(Prefetch("labels", to_attr="label_list"))
    )

    for sort in ("-created", "created", "-cost", "cost"):
        page = task_list(filters={}, sort=sort)
        before = rows.task_rows(task_ordered(instances, sort=sort))

        assert rows.task_rows(page.tasks) == before
        assert before.count("<tr ") == 6 and "<script>" not in before
