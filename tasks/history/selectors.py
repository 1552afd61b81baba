"""Reads for the task history: the filtered task list and its seek pagination, the task page, tags, home.

Every function here runs a fixed number of queries whatever the number of tasks (tests assert it).

Pagination is keyset ("seek"): a cursor holds the sort value and id of the last row shown, and the next
page is the rows strictly after it in (sort value, id) order, so page 20,000 costs what page 1 costs and
no COUNT(*) over the whole filtered set is ever run (the list shows a capped count, e.g. "1,000+").
"""

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django.db.models import Case, CharField, Expression, F, Prefetch, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from tasks.models import MONEY, SendChunk, Task, TaskEvent, TaskLabel
from tasks.prompt_templates.services import template_variables

PAGE_SIZE = 50


COUNT_CAP = 1000


# A task the upstream usually answers within minutes; one still waiting after this needs a look (home's
# "needs attention", the list's `stale=1`). Queued tasks are marked unknown after 10 minutes anyway.
STALE_AFTER = timedelta(minutes=30)


# What a list row shows; the big JSON and text columns stay in the database.
LIST_FIELDS = (
    "id",
    "created_at",
    "provider",
    "mode",
    "model_name",
    "resolved_model_name",
    "user_prompt",
    "tag",
    "status",
    "status_code",
    "status_message",
    "charged",
    "cost",
    "spend",
    "spend_is_final",
    "submitted_by__id",
    "submitted_by__username",
    "credential__id",
    "credential__name",
)


# What a row of the list shows (the attributes tasks/history/rows.py reads), read as plain tuples.
ROW_FIELDS = (
    "id",
    "created_at",
    "provider",
    "model_name",
    "resolved_model_name",
    "user_prompt",
    "tag",
    "status",
    "status_message",
    "spend",
    "spend_is_final",
    "submitted_by_id",
    "chunk__state",  # a queued task whose chunk is being sent shows "Sending" (tasks/history/rows.py)
    "submitted_by__username",
)


@dataclass(frozen=True, slots=True)
class RowPerson:
    username: str


@dataclass(frozen=True, slots=True)
class RowLabel:
    name: str


class TaskRow:
    """One task of the list as its row shows it, from a plain tuple: 50 model instances (and their
    people, credentials and labels) cost more than the query that read them."""

    __slots__ = (*ROW_FIELDS[:-2], "chunk_state", "submitted_by", "label_list")

    def __init__(self, values: tuple, labels: list[RowLabel]):
        *fields, self.chunk_state, username = values
        for name, value in zip(ROW_FIELDS[:-2], fields, strict=True):
            setattr(self, name, value)
        self.submitted_by = RowPerson(username) if self.submitted_by_id is not None else None
        self.label_list = labels

    @property
    def pk(self):
        return self.id

    @property
    def is_active(self) -> bool:
        return self.status in Task.ACTIVE_STATUSES


def _task_rows(found: list[tuple]) -> list[TaskRow]:
    """The rows with their labels (by name, as the task page lists them): one more query."""
    labels = {}
    names = TaskLabel.objects.filter(task_id__in=[values[0] for values in found]).order_by("name")
    for task_id, name in names.values_list("task_id", "name") if found else ():
        labels.setdefault(task_id, []).append(RowLabel(name))
    return [TaskRow(values, labels.get(values[0], [])) for values in found]


def newest_rows(tasks: QuerySet[Task], *, limit: int) -> list[TaskRow]:
    """The newest `limit` of `tasks` as the list's rows (home's tables, a tag's recent tasks): 2 queries,
    no model instances."""
    return _task_rows(list(tasks.values_list(*ROW_FIELDS).order_by("-created_at", "-id")[:limit]))


# sort parameter -> (model field, descending)
SORTS = {
    "-created": ("created_at", True),
    "created": ("created_at", False),
    "-cost": ("spend", True),
    "cost": ("spend", False),
}


class InvalidCursor(ValueError):
    """A pagination cursor that was not made by this module (edited or truncated URL)."""


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def task_filter(
    *,
    q: str = "",
    provider: str = "",
    mode: str = "",
    model: str = "",
    model_requested: bool = False,
    status: str = "",
    tag: str = "",
    label: str = "",
    person=None,
    credential=None,
    template=None,
    batch=None,
    date_from: date | None = None,
    date_to: date | None = None,
    cost_min: Decimal | None = None,
    cost_max: Decimal | None = None,
    stale: bool = False,
    provisional: bool = False,
) -> QuerySet[Task]:
    """Tasks matching every given filter (unordered). The list and both exports use this one queryset.

    `status` is the status the rows show (`status_shown_q`): "sending" includes the queued tasks whose
    chunk a worker is sending, and "queued" leaves them out; `model` matches the requested or the
    resolved model name, only the requested one with `model_requested` (as the spend and tag pages
    count tasks by model); `q` searches prompt and answer
    (case-insensitive substring); cost filters apply to `spend`, the task's current cost (final cost,
    else charge at post, else estimate); `date_to` is inclusive, in the site's time zone; `stale` keeps
    the tasks still active (queued, submitted, pending) STALE_AFTER after they were created;
    `provisional` the tasks whose spend is not final yet.
    """
    tasks = Task.objects.all()
    if provider:
        tasks = tasks.filter(provider=provider)
    if mode:
        tasks = tasks.filter(mode=mode)
    if model and model_requested:
        tasks = tasks.filter(model_name=model)
    elif model:
        tasks = tasks.filter(Q(model_name=model) | Q(resolved_model_name=model))
    if status:
        tasks = tasks.filter(status_shown_q(status))
    if tag:  # as given (a stored tag may have spaces around it) or trimmed (as typed with a stray space)
        tasks = tasks.filter(tag__in=sorted({tag, tag.strip()}))
    if label:
        tasks = tasks.filter(labels__name=label)
    if person is not None:
        tasks = tasks.filter(submitted_by=person)
    if credential is not None:
        tasks = tasks.filter(credential=credential)
    if template is not None:
        tasks = tasks.filter(template_version__template=template)
    if batch is not None:
        tasks = tasks.filter(batch_id=batch)
    if date_from:
        tasks = tasks.filter(created_at__gte=_day_start(date_from))
    if date_to:
        tasks = tasks.filter(created_at__lt=_day_start(date_to + timedelta(days=1)))
    if cost_min is not None:
        tasks = tasks.filter(spend__gte=cost_min)
    if cost_max is not None:
        tasks = tasks.filter(spend__lte=cost_max)
    if q:
        tasks = tasks.filter(Q(user_prompt__icontains=q) | Q(answer_text__icontains=q))
    if stale:
        tasks = tasks.filter(_stale_q())
    if provisional:
        tasks = tasks.filter(spend_is_final=False)
    return tasks


def being_sent_q() -> Q:
    """The queued tasks whose chunk a worker is sending: their rows and pages read "Sending"
    (rows.shown_status). The chunks being sent are a handful, found by their state's index."""
    chunks_sending = SendChunk.objects.filter(state=SendChunk.State.SENDING).values("pk")
    return Q(status=Task.Status.QUEUED, chunk_id__in=chunks_sending)


def status_shown(stored: Expression | None = None) -> Case:
    """The status each row and page shows (`rows.shown_status`), in SQL, as the exports write it:
    "sending" for the queued tasks being sent (`being_sent_q`), else `stored` (the stored status, or an
    expression over it: the COPY export formats it as a CSV cell)."""
    return Case(
        When(being_sent_q(), then=Value(Task.Status.SENDING)),
        default=F("status") if stored is None else stored,
        output_field=CharField(),
    )


# The status filter's choice for every status not final yet (home's "in progress" links to it).
IN_PROGRESS = "in_progress"


def status_shown_q(status: str) -> Q:
    """The tasks whose rows and pages show `status`: "sending" includes the queued tasks being sent
    (`being_sent_q`) and "queued" leaves them out; IN_PROGRESS is every active status (queued, sending,
    submitted, pending), whatever a queued row shows. The status index finds the tasks either way."""
    if status == IN_PROGRESS:
        return Q(status__in=Task.ACTIVE_STATUSES)
    if status == Task.Status.SENDING:
        return Q(status__in=(Task.Status.SENDING, Task.Status.QUEUED)) & (
            Q(status=Task.Status.SENDING) | being_sent_q()
        )
    if status == Task.Status.QUEUED:
        return Q(status=Task.Status.QUEUED) & ~being_sent_q()
    return Q(status=status)


def _stale_q() -> Q:
    return Q(status__in=Task.ACTIVE_STATUSES, created_at__lt=timezone.now() - STALE_AFTER)


def task_ordered(tasks: QuerySet[Task], *, sort: str) -> QuerySet[Task]:
    field_name, descending = SORTS.get(sort, SORTS["-created"])
    return tasks.order_by(f"-{field_name}", "-id") if descending else tasks.order_by(field_name, "id")


def _cursor_encode(value, pk) -> str:
    raw = json.dumps([value.isoformat() if isinstance(value, datetime) else str(value), str(pk)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _cursor_decode(cursor: str, field_name: str):
    """The (sort value, id) a cursor carries: an aware time the database can store, or an amount the
    money columns can hold; anything else (an edited or made-up cursor) is InvalidCursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, pk = json.loads(raw)
        if not (isinstance(value, str) and isinstance(pk, str)):
            raise TypeError(value, pk)
        return _cursor_value(value, field_name), uuid.UUID(pk)
    except (
        binascii.Error,
        ValueError,
        TypeError,
        InvalidOperation,
        UnicodeDecodeError,
        OverflowError,
    ) as exc:
        raise InvalidCursor(cursor) from exc


# An amount a money column cannot hold: MONEY's digits before the point.
_MONEY_LIMIT = Decimal(10) ** (MONEY["max_digits"] - MONEY["decimal_places"])


def _cursor_value(value: str, field_name: str) -> datetime | Decimal:
    if field_name == "created_at":
        parsed = parse_datetime(value)
        if parsed is None or parsed.tzinfo is None:
            raise ValueError(value)
        return parsed.astimezone(UTC)  # OverflowError past year 1 or 9999 in UTC
    amount = Decimal(value)
    if not amount.is_finite() or abs(amount) >= _MONEY_LIMIT:
        raise ValueError(value)
    if amount.as_tuple().exponent < -MONEY["decimal_places"]:  # 1E-999999: more places than stored
        raise ValueError(value)
    return amount


def _seek(tasks: QuerySet[Task], field_name: str, descending: bool, cursor: str, forward: bool):
    value, pk = _cursor_decode(cursor, field_name)
    towards_smaller = descending == forward
    if towards_smaller:
        # The redundant `<=` lets the database walk the (field) index from the cursor instead of the top.
        tasks = tasks.filter(**{f"{field_name}__lte": value}).filter(
            Q(**{f"{field_name}__lt": value}) | Q(**{field_name: value, "id__lt": pk})
        )
        return tasks.order_by(f"-{field_name}", "-id")
    tasks = tasks.filter(**{f"{field_name}__gte": value}).filter(
        Q(**{f"{field_name}__gt": value}) | Q(**{field_name: value, "id__gt": pk})
    )
    return tasks.order_by(field_name, "id")


@dataclass
class TaskPage:
    tasks: list[TaskRow]
    next_cursor: str = ""  # rows further along the sort order ("older" when newest first)
    previous_cursor: str = ""
    count: int = 0
    count_is_capped: bool = False
    cursor_error: str = ""

    @property
    def count_label(self) -> str:
        return f"{self.count:,}+" if self.count_is_capped else f"{self.count:,}"


def task_list(
    *, filters: dict, sort: str = "-created", after: str = "", before: str = "", page_size: int | None = None
) -> TaskPage:
    """One page of the filtered list (`TaskRow`s): 3 queries (capped count, rows, labels)."""
    page_size = page_size or PAGE_SIZE
    field_name, descending = SORTS.get(sort, SORTS["-created"])
    tasks = task_filter(**filters)
    count = tasks.order_by().values("pk")[: COUNT_CAP + 1].count()
    rows = tasks.values_list(*ROW_FIELDS)
    cursor_error = ""
    forward = not before
    cursor = before or after
    ordered = task_ordered(rows, sort=sort)
    if cursor:
        try:
            ordered = _seek(rows, field_name, descending, cursor, forward)
        except InvalidCursor:
            cursor_error = "That page link is not valid any more; showing the first page."
            cursor, forward = "", True
    found = list(ordered[: page_size + 1])
    more = len(found) > page_size
    found = _task_rows(found[:page_size])
    if not forward:
        found.reverse()
    page = TaskPage(
        tasks=found, count=min(count, COUNT_CAP), count_is_capped=count > COUNT_CAP, cursor_error=cursor_error
    )
    if found:
        first, last = found[0], found[-1]
        has_next = more if forward else True
        has_previous = bool(cursor) if forward else more
        if has_next:
            page.next_cursor = _cursor_encode(getattr(last, field_name), last.pk)
        if has_previous:
            page.previous_cursor = _cursor_encode(getattr(first, field_name), first.pk)
    return page


def task_export_queryset(*, filters: dict, sort: str = "-created") -> QuerySet[Task]:
    """Exactly the filtered set of the list (all pages), for streaming exports."""
    tasks = task_filter(**filters).select_related("submitted_by", "credential")
    tasks = tasks.prefetch_related(Prefetch("labels", to_attr="label_list"))
    return task_ordered(tasks, sort=sort)


def task_get(*, task_id) -> Task:
    """A task with everything its page shows: 4 queries (task and relations, events, labels, -)."""
    task = (
        Task.objects.select_related(
            "submitted_by", "credential", "template_version__template", "batch", "chunk"
        )
        .prefetch_related(
            Prefetch(
                "events", queryset=TaskEvent.objects.select_related("actor").order_by("created_at", "id")
            ),
            Prefetch("labels", to_attr="label_list"),
        )
        .get(pk=task_id)
    )
    version = task.template_version
    task.variable_items = variable_items(task.variables, version_fields=version.fields if version else None)
    task.citation_items = citation_items(task.citations)
    task.prompt_head = prompt_head(task.user_prompt)
    fan_out = task.fan_out_queries if isinstance(task.fan_out_queries, list) else []
    task.fan_out_items = [query for query in fan_out if isinstance(query, str) and query.strip()]
    return task


PROMPT_HEAD_CHARS = 200
PROMPT_HEAD_LINES = 5


def prompt_head(prompt: str) -> str:
    """The prompt as the task page's heading: whole when short, else its first lines and characters
    with '…' (the page opens the whole prompt below it), so a long prompt does not push the status and
    answer screens down."""
    lines = prompt.splitlines()
    head = "\n".join(lines[:PROMPT_HEAD_LINES])[:PROMPT_HEAD_CHARS]
    return prompt if head == prompt else head.rstrip() + "…"


def citation_items(citations) -> list[tuple[int, dict]]:
    """The citation objects of a task with their numbers, as the answer's highlights number them (their
    place in the stored list). The result parser stores a list of objects; anything else the admin or a
    shell stored there is skipped, not shown."""
    if not isinstance(citations, list):
        return []
    return [(number, c) for number, c in enumerate(citations, start=1) if isinstance(c, dict)]


def variable_items(values: dict | None, *, version_fields: dict | None) -> list[tuple[str, str]]:
    """A task's variables in the order its template names them (PostgreSQL's jsonb keeps keys in an
    order of its own), any others after them by name."""
    values = values or {}
    names = [name for name in template_variables(version_fields or {}) if name in values]
    return [(name, values[name]) for name in names] + sorted(
        (name, value) for name, value in values.items() if name not in names
    )


def task_get_for_row(*, task_id) -> Task:
    return (
        Task.objects.select_related("submitted_by", "credential")
        .only(*LIST_FIELDS)
        .annotate(chunk_state=F("chunk__state"))
        .prefetch_related(Prefetch("labels", to_attr="label_list"))
        .get(pk=task_id)
    )
