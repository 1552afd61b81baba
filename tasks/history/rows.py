"""A task table's rows, built in Python: the list shows 50 of them, home and the tag pages a few, and the
live row refresh one. As a template partial, a row cost more to render than the query that found it
(docs/performance.md, "Pages against their own SQL"); the HTML is the same.
"""

import hashlib
import uuid
from html import escape
from urllib.parse import quote

from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import RFC3986_SUBDELIMS
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from tasks.history.converters import TagConverter
from tasks.models import Provider, SendChunk, Task
from tasks.templatetags.spend_format import money

STATUS_LABELS = dict(Task.Status.choices)
PROVIDER_LABELS = dict(Provider.choices)
_PLACEHOLDER = uuid.UUID(int=0)
_TAG_PLACEHOLDER = "tag-placeholder"
_TAG_CONVERTER = TagConverter()


def status_badge(status: str, title: str = "") -> SafeString:
    label = STATUS_LABELS.get(status, status)
    return format_html('<span class="badge badge-{}" title="{}">{}</span>', status, title or label, label)


def shown_status(task) -> str:
    """The status a row (or the task's page) shows: "sending" for a queued task whose chunk a worker is
    sending, as its batch's counters say; `chunk_state` is read with the row (tasks/history/selectors.py)."""
    if task.status == Task.Status.QUEUED and _chunk_state(task) == SendChunk.State.SENDING:
        return Task.Status.SENDING
    return task.status


def _chunk_state(task) -> str | None:
    """The state of the task's send chunk: read with a row (`chunk_state`), or a task page's `chunk`."""
    if hasattr(task, "chunk_state"):
        return task.chunk_state
    if isinstance(task, Task) and task.chunk_id is not None and Task.chunk.is_cached(task):
        return task.chunk.state
    return None


def task_cost(task: Task) -> SafeString:
    """The cost cell: the final cost, or the current charge marked provisional."""
    if task.spend_is_final:
        return format_html('<span class="cost cost-final">{}</span>', money(task.spend))
    return format_html(
        '<span class="cost cost-provisional" title="Charged at post or estimated; the final cost is known '
        'when the task finishes">{} <small>provisional</small></span>',
        money(task.spend),
    )


class TaskUrls:
    """The task page's, the live row's and the tags' URLs, reversed once per table, not once per row."""

    def __init__(self):
        self.detail = reverse("history:task_detail", args=[_PLACEHOLDER]).split(str(_PLACEHOLDER))
        self.status = reverse("history:task_status", args=[_PLACEHOLDER]).split(str(_PLACEHOLDER))
        self.tag_parts = reverse("history:tag_detail", kwargs={"tag": _TAG_PLACEHOLDER}).split(
            _TAG_PLACEHOLDER
        )

    def of(self, parts: list[str], pk) -> str:
        return f"{parts[0]}{pk}{parts[1]}"

    def tag(self, tag: str) -> str:
        """The tag page's URL as reverse() makes it: the converter's path, quoted as reverse quotes."""
        path = quote(_TAG_CONVERTER.to_url(tag), safe=RFC3986_SUBDELIMS + "/~:@")
        return f"{self.tag_parts[0]}{path}{self.tag_parts[1]}"


def task_rows(tasks) -> SafeString:
    urls = TaskUrls()
    return SafeString("".join([_row(task, urls) for task in tasks]))


def task_row(task: Task) -> SafeString:
    return SafeString(_row(task, TaskUrls()))


def created_link(task, url: str) -> str:
    """The task's creation time in local time, linking to `url` (its page): how every task table and a tag's
    answer timeline show when a task ran."""
    created = timezone.localtime(task.created_at)
    when = f'<time datetime="{created.isoformat()}">{created:%Y-%m-%d %H:%M}</time>'
    return f'<a href="{escape(url)}">{when}</a>'


def person(task) -> str:
    """Who submitted the task, "—" for nobody (not escaped)."""
    return (task.submitted_by.username if task.submitted_by_id else "") or "—"


def _chars(text: str, limit: int) -> str:
    """Truncator(text).chars(limit), without its work for the usual short ASCII text."""
    if len(text) <= limit and text.isascii():
        return text
    return Truncator(text).chars(limit)


def _cells(task: Task, urls: TaskUrls, shown: str) -> str:
    """The row's cells, escaped as format_html escapes (html.escape, which Django's escape uses), built as a
    string: a table of 50 rows through format_html cost more than its query."""
    detail_url = urls.of(urls.detail, task.pk)
    detail = escape(detail_url)
    tag = ""
    if task.tag:
        tag = f'<a class="tag" href="{escape(urls.tag(task.tag))}">{escape(_chars(task.tag, 40))}</a>'
    labels = "".join(
        f' <span class="label">{escape(label.name)}</span>' for label in getattr(task, "label_list", ())
    )
    provider = escape(task.provider)
    status_label = STATUS_LABELS.get(shown, shown)
    prompt = task.user_prompt
    return (
        f'  <td class="when">{created_link(task, detail_url)}</td>\n'
        f"  <td>{escape(person(task))}</td>\n"
        f'  <td><span class="provider provider-{provider}">'
        f"{escape(PROVIDER_LABELS.get(task.provider, task.provider))}</span> "
        f'<span class="model">{escape(task.resolved_model_name or task.model_name)}</span></td>\n'
        f'  <td class="prompt"><a href="{detail}" title="{escape(prompt)}">'
        f"{escape(_chars(prompt, 90))}</a></td>\n"
        f'  <td class="tags">{tag}{labels}</td>\n'
        f'  <td><span class="badge badge-{escape(shown)}" '
        f'title="{escape(task.status_message or status_label)}">{escape(status_label)}</span></td>\n'
        f'  <td class="num">{task_cost(task)}</td>\n'
    )


def _version(cells: str) -> str:
    return hashlib.blake2b(cells.encode(), digest_size=6).hexdigest()


def row_version(task: Task) -> str:
    """What a live row's poll carries (`v`): the view answers 204 while the row would be the same, so htmx
    swaps nothing and a keyboard focus on the row's links (which have no ids) stays put."""
    return _version(_cells(task, TaskUrls(), shown_status(task)))


def _row(task: Task, urls: TaskUrls) -> str:
    """One <tr>; a live one polls its own fragment with its version."""
    shown = shown_status(task)
    cells = _cells(task, urls, shown)
    every = "3s" if task.is_active else "10s" if task.status == Task.Status.UNKNOWN else ""
    live = ""
    if every:  # an unknown task: a callback or an Admin may still find out what became of it
        poll = f"{escape(urls.of(urls.status, task.pk))}?part=row&amp;v={_version(cells)}"
        live = f' hx-get="{poll}" hx-trigger="every {every}" hx-swap="outerHTML"'
    pk = escape(str(task.pk))
    return f'<tr data-task="{pk}" class="task-row status-{escape(shown)}"{live}>\n{cells}</tr>\n'
