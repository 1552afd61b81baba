"""A task table's rows, built in Python: the list shows 50 of them, home and the tag pages a few, and the
live row refresh one. As a template partial, a row cost more to render than the query that found it
(docs/performance.md, "Pages against their own SQL"); the HTML is the same.
"""

import uuid

from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from tasks.models import Provider, Task
from tasks.templatetags.spend_format import money

STATUS_LABELS = dict(Task.Status.choices)
PROVIDER_LABELS = dict(Provider.choices)
_PLACEHOLDER = uuid.UUID(int=0)


def status_badge(status: str, title: str = "") -> SafeString:
    label = STATUS_LABELS.get(status, status)
    return format_html('<span class="badge badge-{}" title="{}">{}</span>', status, title or label, label)


def task_cost(task: Task) -> SafeString:
    """The cost cell: the final cost, or the current charge marked provisional."""
    if task.spend_is_final:
        return format_html('<span class="cost cost-final">{}</span>', money(task.spend))
    return format_html(
        '<span class="cost cost-provisional" title="Charged at post or estimated; the final cost is known '
        'when the task finishes">{} <small>provisional</small></span>',
        money(task.spend),
    )


class _TaskUrls:
    """The task page's and the live row's URLs, reversed once per table rather than once per row."""

    def __init__(self):
        self.detail = reverse("history:task_detail", args=[_PLACEHOLDER]).split(str(_PLACEHOLDER))
        self.status = reverse("history:task_status", args=[_PLACEHOLDER]).split(str(_PLACEHOLDER))

    def of(self, parts: list[str], pk) -> str:
        return f"{parts[0]}{pk}{parts[1]}"


def task_rows(tasks) -> SafeString:
    urls = _TaskUrls()
    return format_html_join("", "{}", ((_row(task, urls),) for task in tasks))


def task_row(task: Task) -> SafeString:
    return _row(task, _TaskUrls())


def _row(task: Task, urls: _TaskUrls) -> SafeString:
    detail = urls.of(urls.detail, task.pk)
    live = ""
    if task.is_active:
        live = format_html(
            ' hx-get="{}?part=row" hx-trigger="every 3s" hx-swap="outerHTML"', urls.of(urls.status, task.pk)
        )
    created = timezone.localtime(task.created_at)
    tag = ""
    if task.tag:
        tag = format_html(
            '<a class="tag" href="{}">{}</a>',
            reverse("history:tag_detail", kwargs={"tag": task.tag}),
            Truncator(task.tag).chars(40),
        )
    labels = getattr(task, "label_list", ())
    labels = format_html_join("", ' <span class="label">{}</span>', ((label.name,) for label in labels))
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
        provider_label=PROVIDER_LABELS.get(task.provider, task.provider),
        model=task.resolved_model_name or task.model_name,
        prompt=task.user_prompt,
        prompt_short=Truncator(task.user_prompt).chars(90),
        tag=tag,
        labels=labels,
        badge=status_badge(task.status, task.status_message),
        cost=task_cost(task),
    )
