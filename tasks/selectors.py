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
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from operator import itemgetter

from django.db.models import Count, Max, Min, Prefetch, Q, QuerySet, Sum, Value
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from tasks import spend
from tasks.budgets import month_start
from tasks.models import Batch, SpendDay, Task, TaskEvent
from tasks.prompt_templates import template_variables

PAGE_SIZE = 50
COUNT_CAP = 1000
# A task the upstream usually answers within minutes; one still waiting after this needs a look (home's
# "needs attention", the list's `stale=1`). Queued tasks are marked unknown after 10 minutes anyway.
STALE_AFTER = timedelta(minutes=30)
# How far back home's "needs attention" counts failed and lost tasks.
ATTENTION_DAYS = 7

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
    model: str = "",
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
) -> QuerySet[Task]:
    """Tasks matching every given filter (unordered). The list and both exports use this one queryset.

    `model` matches the requested or the resolved model name; `q` searches prompt and answer
    (case-insensitive substring); cost filters apply to `spend`, the task's current cost (final cost,
    else charge at post, else estimate); `date_to` is inclusive, in the site's time zone; `stale` keeps
    the tasks still active (queued, submitted, pending) STALE_AFTER after they were created.
    """
    tasks = Task.objects.all()
    if provider:
        tasks = tasks.filter(provider=provider)
    if model:
        tasks = tasks.filter(Q(model_name=model) | Q(resolved_model_name=model))
    if status:
        tasks = tasks.filter(status=status)
    if tag:
        tasks = tasks.filter(tag=tag)
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
    return tasks


def _stale_q() -> Q:
    return Q(status__in=Task.ACTIVE_STATUSES, created_at__lt=timezone.now() - STALE_AFTER)


def task_ordered(tasks: QuerySet[Task], *, sort: str) -> QuerySet[Task]:
    field_name, descending = SORTS.get(sort, SORTS["-created"])
    return tasks.order_by(f"-{field_name}", "-id") if descending else tasks.order_by(field_name, "id")


# --- Seek pagination --------------------------------------------------------------------------------


def _cursor_encode(value, pk) -> str:
    raw = json.dumps([value.isoformat() if isinstance(value, datetime) else str(value), str(pk)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _cursor_decode(cursor: str, field_name: str):
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, pk = json.loads(raw)
        parsed = parse_datetime(value) if field_name == "created_at" else Decimal(value)
        if parsed is None:
            raise ValueError(value)
        return parsed, uuid.UUID(pk)
    except (binascii.Error, ValueError, TypeError, InvalidOperation, UnicodeDecodeError) as exc:
        raise InvalidCursor(cursor) from exc


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
    tasks: list[Task]
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
    """One page of the filtered list: 3 queries (capped count, rows, labels)."""
    page_size = page_size or PAGE_SIZE
    field_name, descending = SORTS.get(sort, SORTS["-created"])
    tasks = task_filter(**filters)
    count = tasks.order_by().values("pk")[: COUNT_CAP + 1].count()
    rows = (
        tasks.select_related("submitted_by", "credential")
        .only(*LIST_FIELDS)
        .prefetch_related(Prefetch("labels", to_attr="label_list"))
    )
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
    found = found[:page_size]
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


# --- One task ---------------------------------------------------------------------------------------


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
    return task


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
        .prefetch_related(Prefetch("labels", to_attr="label_list"))
        .get(pk=task_id)
    )


# --- Tags -------------------------------------------------------------------------------------------


def tag_list(*, q: str = "", sort: str = "-last") -> list[dict]:
    """Every upstream tag with its task count, spend, active tasks and first and last run.

    Days the spend rollup covers are read from its per-tag rows (a few hundred a day, however many
    tasks), the days after them from the tasks: two small aggregates instead of one over every tagged
    task (273 ms → 105 ms at a million tasks). Active tasks are all in the days after the rollup: a
    day with one still in flight is not rolled up.
    """
    through = spend.rolled_through()
    live = Task.objects.exclude(tag="")
    parts = []
    if through is not None:
        rolled = SpendDay.objects.filter(dimension=SpendDay.Dimension.TAG, day__lte=through).exclude(tag="")
        parts.append(
            rolled.values("tag").annotate(
                count=Sum("task_count"),
                total=Sum("spend"),
                first_run=Min("first_at"),
                last_run=Max("last_at"),
                active=Value(0),
            )
        )
        live = live.filter(created_at__gte=spend.rollup_end(through))
    parts.append(
        live.values("tag").annotate(
            count=Count("id"),
            total=Sum("spend"),
            first_run=Min("created_at"),
            last_run=Max("created_at"),
            active=Count("id", filter=Q(status__in=Task.ACTIVE_STATUSES)),
        )
    )
    tags: dict[str, dict] = {}
    for part in parts:
        for row in (part.filter(tag__icontains=q) if q else part).order_by():
            seen = tags.setdefault(row["tag"], row)
            if seen is not row:  # the tag has rolled-up days and later ones
                for name in ("count", "total", "active"):
                    seen[name] += row[name]
                seen["first_run"] = min(seen["first_run"], row["first_run"])
                seen["last_run"] = max(seen["last_run"], row["last_run"])
    rows = sorted(tags.values(), key=itemgetter("tag"))
    key = {"-count": "count", "-spend": "total", "tag": None}.get(sort, "last_run")
    # sorted() is stable: rows with equal keys stay in tag order.
    return rows if key is None else sorted(rows, key=itemgetter(key), reverse=True)


@dataclass
class AnswerRun:
    task: Task
    diff_html: str = ""  # escaped word diff against the previous run, as <ins>/<del>
    changed: bool = False
    similarity: float = 1.0


@dataclass
class TagSummary:
    tag: str
    count: int = 0
    spend: Decimal = Decimal("0")
    final_spend: Decimal = Decimal("0")
    provisional_spend: Decimal = Decimal("0")
    first_run: datetime | None = None
    last_run: datetime | None = None
    status_counts: list[tuple[str, str, int]] = field(default_factory=list)
    models: list[dict] = field(default_factory=list)
    domains: list[tuple[str, int]] = field(default_factory=list)
    domains_sampled: int = 0
    prompts: list[dict] = field(default_factory=list)
    prompt: str = ""
    runs: list[AnswerRun] = field(default_factory=list)
    recent: list[Task] = field(default_factory=list)


TAG_DOMAIN_SAMPLE = 500
TAG_PROMPTS = 25
TAG_PROMPT_WINDOW = 1000
TAG_RUNS = 20
TAG_RECENT = 20


def tag_summary(*, tag: str, prompt: str | None = None) -> TagSummary:
    """Everything the tag page shows, in 6 queries whatever the number of tasks under the tag.

    Totals, status counts and models cover every task of the tag; the prompts to pick from are those
    of its newest TAG_PROMPT_WINDOW tasks. Cited domains are counted over the newest
    TAG_DOMAIN_SAMPLE completed answers; the answer timeline shows the newest TAG_RUNS completed runs of
    one prompt (`prompt`, else the prompt run most recently), oldest first, each diffed against the one
    before it.
    """
    from tasks.rendering import word_diff

    tasks = Task.objects.filter(tag=tag)
    # One pass over the tag's rows, grouped small (status × model); totals, status counts and models are
    # summed from it, so a tag with 50,000 tasks is read once, not three times.
    groups = list(
        tasks.values("status", "provider", "model_name")
        .annotate(
            n=Count("id"),
            total=Sum("spend"),
            final_total=Sum("spend", filter=Q(spend_is_final=True)),
            first_run=Min("created_at"),
            last_run=Max("created_at"),
        )
        .order_by()
    )
    summary = TagSummary(tag=tag)
    labels = dict(Task.Status.choices)
    statuses: Counter[str] = Counter()
    models: dict[tuple[str, str], dict] = {}
    for group in groups:
        summary.count += group["n"]
        summary.spend += group["total"] or Decimal("0")
        summary.final_spend += group["final_total"] or Decimal("0")
        if summary.first_run is None or group["first_run"] < summary.first_run:
            summary.first_run = group["first_run"]
        if summary.last_run is None or group["last_run"] > summary.last_run:
            summary.last_run = group["last_run"]
        statuses[group["status"]] += group["n"]
        key = (group["provider"], group["model_name"])
        model = models.setdefault(
            key, {"provider": key[0], "model_name": key[1], "n": 0, "total": Decimal("0"), "last_run": None}
        )
        model["n"] += group["n"]
        model["total"] += group["total"] or Decimal("0")
        if model["last_run"] is None or group["last_run"] > model["last_run"]:
            model["last_run"] = group["last_run"]
    summary.provisional_spend = summary.spend - summary.final_spend
    summary.status_counts = [
        (status, labels.get(status, status), n)
        for status, n in sorted(statuses.items(), key=lambda item: (-item[1], item[0]))
    ]
    summary.models = sorted(models.values(), key=lambda m: (-m["n"], m["model_name"]))
    completed = tasks.filter(status=Task.Status.COMPLETED)
    citations = list(
        completed.order_by("-created_at").values_list("citations", flat=True)[:TAG_DOMAIN_SAMPLE]
    )
    summary.domains_sampled = len(citations)
    domains: Counter[str] = Counter()
    for cited in citations:
        # A domain counts once per answer: "how many answers cite it".
        domains.update({c.get("domain") or "" for c in cited or [] if isinstance(c, dict)} - {""})
    summary.domains = domains.most_common(30)
    # Prompts come from the tag's newest TAG_PROMPT_WINDOW tasks (read through the tag index), so the
    # choice stays cheap however long the tag's history is.
    prompts: dict[str, dict] = {}
    window = tasks.order_by("-created_at", "-id").values_list("user_prompt", "status", "created_at")
    for user_prompt, status, created_at in window[:TAG_PROMPT_WINDOW]:
        row = prompts.setdefault(
            user_prompt, {"user_prompt": user_prompt, "n": 0, "completed": 0, "last_run": created_at}
        )
        row["n"] += 1
        row["completed"] += status == Task.Status.COMPLETED
    summary.prompts = list(prompts.values())[:TAG_PROMPTS]
    if prompt is None:
        prompt = summary.prompts[0]["user_prompt"] if summary.prompts else ""
    summary.prompt = prompt
    runs = list(
        completed.filter(user_prompt=prompt)
        .select_related("submitted_by")
        .only(
            "id",
            "created_at",
            "provider",
            "model_name",
            "resolved_model_name",
            "answer_text",
            "spend",
            "spend_is_final",
            "cost",
            "status",
            "submitted_by__username",
            "citations",
        )
        .order_by("-created_at", "-id")[:TAG_RUNS]
    )
    runs.reverse()
    previous = None
    for task in runs:
        run = AnswerRun(task=task)
        if previous is not None:
            run.diff_html, run.similarity = word_diff(previous.answer_text, task.answer_text)
            run.changed = previous.answer_text != task.answer_text
        summary.runs.append(run)
        previous = task
    summary.recent = list(
        tasks.select_related("submitted_by", "credential")
        .only(*LIST_FIELDS)
        .prefetch_related(Prefetch("labels", to_attr="label_list"))
        .order_by("-created_at", "-id")[:TAG_RECENT]
    )
    return summary


# --- Home -------------------------------------------------------------------------------------------


@dataclass
class Attention:
    """Tasks that need a look: failed or lost lately, or waiting longer than usual; with the task list's
    query for exactly each group."""

    failed: int
    unknown: int
    stale: int
    since: date  # failed and unknown count from this day on (the list's date_from)
    stale_minutes: int = int(STALE_AFTER.total_seconds() // 60)
    days: int = ATTENTION_DAYS

    @property
    def total(self) -> int:
        return self.failed + self.unknown + self.stale

    @property
    def failed_query(self) -> str:
        return f"status=failed&date_from={self.since.isoformat()}"

    @property
    def unknown_query(self) -> str:
        return f"status=unknown&date_from={self.since.isoformat()}"


@dataclass
class HomeSummary:
    pending: list[Task]
    recent: list[Task]
    month_spend: Decimal
    month_final: Decimal
    month_tasks: int
    my_month_spend: Decimal
    month_start: datetime
    attention: Attention | None = None


def attention_summary() -> Attention:
    """Failed and unknown tasks created in the last ATTENTION_DAYS days (from midnight, as the list's
    date filter counts) and active tasks older than STALE_AFTER, in one query over the status index."""
    since = timezone.localdate() - timedelta(days=ATTENTION_DAYS - 1)
    recent_trouble = Q(
        status__in=[Task.Status.FAILED, Task.Status.UNKNOWN], created_at__gte=_day_start(since)
    )
    stale = _stale_q()
    counts = Task.objects.filter(recent_trouble | stale).aggregate(
        failed=Count("pk", filter=Q(status=Task.Status.FAILED)),
        unknown=Count("pk", filter=Q(status=Task.Status.UNKNOWN)),
        stale=Count("pk", filter=stale),
    )
    return Attention(failed=counts["failed"], unknown=counts["unknown"], stale=counts["stale"], since=since)


def home_summary(*, user, limit: int = 10) -> HomeSummary:
    """The home page: active tasks, the newest tasks, this month's spend (team and mine).

    The month's figures come from the spend page's selectors, which read the daily rollup for settled
    days and only the newest tasks themselves, so home stays fast at a million tasks.
    """
    base = Task.objects.select_related("submitted_by", "credential").only(*LIST_FIELDS)
    base = base.prefetch_related(Prefetch("labels", to_attr="label_list"))
    pending = list(base.filter(status__in=Task.ACTIVE_STATUSES).order_by("-created_at", "-id")[:limit])
    recent = list(base.order_by("-created_at", "-id")[:limit])
    period = spend.period_preset("this_month")
    month, mine = spend.spend_total_and_person(period=period, person_id=user.pk)
    return HomeSummary(
        pending=pending,
        recent=recent,
        month_spend=month.spend,
        month_final=month.spend - month.provisional,
        month_tasks=month.tasks,
        my_month_spend=mine,
        month_start=month_start(),
        attention=attention_summary(),
    )


# --- Batches ----------------------------------------------------------------------------------------

BATCH_PAGE_SIZE = 50


@dataclass
class BatchRow:
    """One batch of the batch list: its record and what its tasks are now."""

    batch: Batch
    status_counts: dict[str, int] = field(default_factory=dict)
    cost: Decimal = Decimal("0")

    @property
    def finished(self) -> int:
        return sum(self.status_counts.get(status, 0) for status in Task.FINAL_STATUSES)

    @property
    def written(self) -> int:
        return sum(self.status_counts.values())

    @property
    def statuses(self) -> list[tuple[str, str, int]]:
        """(status, label, count) of the statuses its tasks are in, in the lifecycle's order."""
        return [
            (status, label, self.status_counts[status])
            for status, label in Task.Status.choices
            if self.status_counts.get(status)
        ]


def batch_list(*, template_id: int | None = None, page: int = 1) -> tuple[list[BatchRow], bool]:
    """A page of batches, newest first (of one template when given), with each one's task counts by
    status and cost so far; and whether an older page exists. Two queries whatever the number of tasks:
    the batches, and one aggregate of their tasks grouped by batch and status."""
    batches = Batch.objects.select_related("created_by", "template_version__template").order_by(
        "-created_at", "-id"
    )
    if template_id is not None:
        batches = batches.filter(template_version__template_id=template_id)
    start = (max(page, 1) - 1) * BATCH_PAGE_SIZE
    found = list(batches[start : start + BATCH_PAGE_SIZE + 1])
    more = len(found) > BATCH_PAGE_SIZE
    rows = {batch.pk: BatchRow(batch=batch) for batch in found[:BATCH_PAGE_SIZE]}
    if rows:
        groups = (
            Task.objects.filter(batch_id__in=list(rows))
            .values("batch_id", "status")
            .annotate(n=Count("id"), total=Sum("spend"))
            .order_by()
        )
        for group in groups:
            row = rows[group["batch_id"]]
            row.status_counts[group["status"]] = group["n"]
            row.cost += group["total"] or Decimal("0")
    return list(rows.values()), more


def batch_tasks(*, batch: Batch, limit: int) -> list[Task]:
    """The first `limit` tasks of a batch, in the order they were planned, each with its variables in
    the template's order (`variable_items`)."""
    version = batch.template_version
    fields = version.fields if version is not None else None
    tasks = list(batch.tasks.order_by("created_at", "id")[:limit])
    for task in tasks:
        task.variable_items = variable_items(task.variables, version_fields=fields)
    return tasks


def batch_choices(*, selected=None, limit: int = 100) -> list[Batch]:
    """The newest batches for the task list's batch picker, and the selected one if it is older."""
    batches = list(
        Batch.objects.select_related("template_version__template").order_by("-created_at", "-id")[:limit]
    )
    if selected is not None and all(batch.pk != selected for batch in batches):
        batches += list(Batch.objects.select_related("template_version__template").filter(pk=selected))
    return batches
