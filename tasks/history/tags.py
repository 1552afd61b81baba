"""Reads for the tag pages: the list of tags and one tag's summary."""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from operator import itemgetter

from django.db import connection
from django.db.models import Count, Max, Min, Q, Sum, Value

from tasks.history.rows import PROVIDER_LABELS
from tasks.history.selectors import TaskRow, being_sent_q, newest_rows
from tasks.models import SpendDay, TagMonth, Task
from tasks.spend import figures
from tasks.upstream.providers import MAX_TEXT_LENGTH


def tag_list(*, q: str = "", sort: str = "-last") -> list[dict]:
    """Every upstream tag with its task count, spend, active tasks and first and last run.

    Days the spend rollup covers are read from its per-tag rows: whole months from TagMonth (a few
    hundred rows a month), the watermark's month so far from SpendDay (a few hundred a day); the days
    after them from the tasks: three small aggregates instead of one over every tagged task
    (docs/performance.md, Task history and Visibility pages). Active tasks are all in the days after
    the rollup: a day with one still in flight is not rolled up.
    """
    through = figures.rolled_through()
    live = Task.objects.exclude(tag="")
    parts = []
    if through is not None:
        # Whole months from TagMonth (a row per tag and month), the watermark's month so far from SpendDay.
        next_day = through + timedelta(days=1)
        whole_before = next_day if next_day.day == 1 else through.replace(day=1)
        parts.append(
            TagMonth.objects.filter(month__lt=whole_before)
            .values("tag")
            .annotate(
                count=Sum("task_count"),
                total=Sum("spend"),
                first_run=Min("first_at"),
                last_run=Max("last_at"),
                active=Value(0),
            )
        )
        rolled = SpendDay.objects.filter(
            dimension=SpendDay.Dimension.TAG, day__gte=whole_before, day__lte=through
        ).exclude(tag="")
        parts.append(
            rolled.values("tag").annotate(
                count=Sum("task_count"),
                total=Sum("spend"),
                first_run=Min("first_at"),
                last_run=Max("last_at"),
                active=Value(0),
            )
        )
        live = live.filter(created_at__gte=figures.rollup_end(through))
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
    first_of_model: bool = False  # not the timeline's first run, but the first shown of its model
    no_text: bool = False  # completed, but its result held no answer text: not a change, nor a base for one

    @property
    def similarity_label(self) -> str:
        """How alike a changed run is to the one before: a whole percent that never reads 100 (something
        changed), or, when the rendered text is the same, that only the Markdown's formatting changed."""
        if self.similarity >= 1:
            return "same words, only the formatting changed"
        return f"{min(round(float(self.similarity) * 100), 99)}% similar"


@dataclass
class TagAnswers:
    """The answer timeline of a tag: the prompts to pick from and one prompt's runs."""

    prompts: list[dict] = field(default_factory=list)
    prompt: str = ""
    runs: list[AnswerRun] = field(default_factory=list)

    @property
    def prompt_listed(self) -> bool:
        """Whether the prompt shown is one of the picker's: a link may name one no task of the tag asked
        (a monitor's prompt edited since its last run), and the picker must not show another as chosen."""
        return any(row["user_prompt"] == self.prompt for row in self.prompts)


@dataclass
class TagSummary:
    tag: str
    answers: TagAnswers
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
    recent: list[TaskRow] = field(default_factory=list)


TAG_DOMAIN_SAMPLE = 500


TAG_DOMAINS = 30


TAG_PROMPTS = 25


TAG_PROMPT_WINDOW = 1000


TAG_RUNS = 20


TAG_RECENT = 20


def tag_summary(*, tag: str, prompt: str | None = None) -> TagSummary:
    """Everything the tag page shows, in 7 queries whatever the number of tasks under the tag (8 while
    some of them are queued).

    Totals, status counts (by the status the rows show) and models cover every task of the tag; cited
    domains are counted over the newest TAG_DOMAIN_SAMPLE completed answers; the answer timeline is
    `tag_answers`.
    """
    tasks = Task.objects.filter(tag=tag)
    # One pass over the tag's rows, grouped small (status × model); totals, status counts and models are
    # summed from it, so a tag with 50,000 tasks is read once, not three times.
    groups = list(
        tasks.values("status", "provider", "model_name")
        .annotate(
            # COUNT(*), not COUNT(id): every column read is in task_tag_created, so PostgreSQL answers
            # from the index alone (the largest tag at 1 M tasks: ~500 ms → ~60 ms).
            n=Count("*"),
            total=Sum("spend"),
            final_total=Sum("spend", filter=Q(spend_is_final=True)),
            first_run=Min("created_at"),
            last_run=Max("created_at"),
        )
        .order_by()
    )
    summary = TagSummary(tag=tag, answers=tag_answers(tag=tag, prompt=prompt))
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
            key,
            {
                "provider": key[0],
                "provider_label": PROVIDER_LABELS.get(key[0], key[0]),
                "model_name": key[1],
                "n": 0,
                "total": Decimal("0"),
                "last_run": None,
            },
        )
        model["n"] += group["n"]
        model["total"] += group["total"] or Decimal("0")
        if model["last_run"] is None or group["last_run"] > model["last_run"]:
            model["last_run"] = group["last_run"]
    summary.provisional_spend = summary.spend - summary.final_spend
    if statuses[Task.Status.QUEUED]:  # those being sent read "Sending", as their rows do: one query more
        being_sent = tasks.filter(being_sent_q()).count()
        statuses[Task.Status.QUEUED] -= being_sent
        statuses[Task.Status.SENDING] += being_sent
        statuses = +statuses  # no "Queued 0"
    summary.status_counts = [
        (status, labels.get(status, status), n)
        for status, n in sorted(statuses.items(), key=lambda item: (-item[1], item[0]))
    ]
    summary.models = sorted(models.values(), key=lambda m: (-m["n"], m["model_name"]))
    completed = tasks.filter(status=Task.Status.COMPLETED)
    summary.domains_sampled, summary.domains = _cited_domains(completed)
    summary.recent = newest_rows(tasks, limit=TAG_RECENT)
    return summary


def tag_answers(*, tag: str, prompt: str | None = None) -> TagAnswers:
    """The tag's answer timeline, in 2 queries: what the tag page's prompt picker swaps, and what a
    monitor's page shows.

    The prompts to pick from are those of the tag's newest TAG_PROMPT_WINDOW tasks, the most recently run
    first; the timeline shows the newest TAG_RUNS completed runs of one prompt (`prompt`, else the prompt
    run most recently), oldest first, each diffed against the one before it. No prompt means no task has
    the tag. A `prompt` from a URL is cut to a prompt's length: no stored prompt is longer, and a huge one
    would be sent to the database.
    """
    from tasks.history.rendering import word_diff

    tasks = Task.objects.filter(tag=tag)
    answers = TagAnswers(prompts=_prompts(tasks))
    if prompt is None:
        prompt = answers.prompts[0]["user_prompt"] if answers.prompts else ""
    prompt = prompt[:MAX_TEXT_LENGTH]
    answers.prompt = prompt
    if prompt and all(row["user_prompt"] != prompt for row in answers.prompts):
        # A prompt asked for by name (a monitor's page links each of its prompts) but older than the
        # picker's list: listed too, so the picker shows it chosen beside its timeline. One more query.
        counts = tasks.filter(user_prompt=prompt).aggregate(
            n=Count("id"), completed=Count("id", filter=Q(status=Task.Status.COMPLETED))
        )
        if counts["n"]:
            answers.prompts.append({"user_prompt": prompt, **counts})
    runs = list(
        tasks.filter(status=Task.Status.COMPLETED, user_prompt=prompt)
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
    # Each run against the previous run of its own model, as the monitor's table counts changes: a tag
    # run on several models alternates them, and one model's answer against another's is no change.
    previous: dict[tuple[str, str], Task] = {}
    # A run without answer text (a reasoning model spent every output token) is no new answer: the next
    # run is diffed against the last answer there was.
    for index, task in enumerate(runs):
        run = AnswerRun(task=task)
        before = previous.get((task.provider, task.model_name))
        if not task.answer_text.strip():
            run.no_text = True
            answers.runs.append(run)
            continue
        if before is None:
            run.first_of_model = index > 0
        elif before.answer_text != task.answer_text:
            run.diff_html, run.similarity = word_diff(before.answer_text, task.answer_text)
            run.changed = True
        answers.runs.append(run)
        previous[(task.provider, task.model_name)] = task
    return answers


# The prompts of a window of tasks (newest first), grouped by the database: each prompt with its tasks and
# completed tasks in the window, the most recently run first (its newest task's place in the window), so
# the database sends TAG_PROMPTS rows, not the TAG_PROMPT_WINDOW tasks' prompts.
_PROMPTS_SQL = """
    SELECT user_prompt, COUNT(*), COUNT(CASE WHEN status = %s THEN 1 END), MIN(place) AS newest
    FROM (
        SELECT user_prompt, status, ROW_NUMBER() OVER (ORDER BY created_at DESC, id DESC) AS place
        FROM ({inner}) window_tasks
    ) numbered
    GROUP BY user_prompt ORDER BY newest LIMIT %s
"""


def _prompts(tasks) -> list[dict]:
    """The prompts of the newest TAG_PROMPT_WINDOW of `tasks` (read through the tag index, so the choice
    stays cheap however long the tag's history is), with their number of tasks and completed tasks."""
    window = tasks.order_by("-created_at", "-id").values("user_prompt", "status", "created_at", "id")
    rows = _around(
        window[:TAG_PROMPT_WINDOW], _PROMPTS_SQL, before=(Task.Status.COMPLETED,), after=(TAG_PROMPTS,)
    )
    return [{"user_prompt": prompt, "n": n, "completed": completed} for prompt, n, completed, _ in rows]


def _around(queryset, sql: str, *, before: tuple = (), after: tuple = ()) -> list[tuple]:
    """The rows of `sql` run around `queryset`'s own SQL (in place of `{inner}`): parameters `before` it,
    the queryset's, then `after` it."""
    inner, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql.replace("{inner}", inner), (*before, *params, *after))
        return cursor.fetchall()


# The sample's size, then each domain with the number of the sample's answers citing it (once per answer):
# a domain is a non-empty string in a citation object, anything else in a stored list is skipped. The most
# cited first, ties by name (byte order, as Python sorts), so the list is the same on every load.
_DOMAINS_SQL = """
    WITH sample AS ({inner})
    SELECT NULL, COUNT(*) FROM sample
    UNION ALL
    SELECT * FROM (
        SELECT cited.domain, COUNT(*) AS n FROM ({cited}) cited
        WHERE cited.domain <> ''
        GROUP BY cited.domain ORDER BY n DESC, cited.domain{byte_order} LIMIT %s
    ) top
"""


# Each sampled answer's distinct domains, and how to order names by byte, per database.
_CITED = {
    "postgresql": (
        """SELECT DISTINCT sample.id, citation.value ->> 'domain' AS domain
        FROM sample CROSS JOIN LATERAL jsonb_array_elements(
            CASE WHEN jsonb_typeof(sample.citations) = 'array' THEN sample.citations ELSE '[]' END
        ) citation
        WHERE jsonb_typeof(citation.value -> 'domain') = 'string'""",
        ' COLLATE "C"',
    ),
    "sqlite": (
        """SELECT DISTINCT sample.id, json_extract(citation.value, '$.domain') AS domain
        FROM sample, json_each(
            CASE WHEN json_type(sample.citations) = 'array' THEN sample.citations ELSE '[]' END
        ) citation
        WHERE citation.type = 'object' AND json_type(citation.value, '$.domain') = 'text'""",
        "",
    ),
}


def _cited_domains(completed) -> tuple[int, list[tuple[str, int]]]:
    """How many of the newest TAG_DOMAIN_SAMPLE completed answers were sampled, and the TAG_DOMAINS
    domains they cite most: one query, counted by the database, so 500 citation lists are not decoded
    in Python for 30 rows."""
    sample = completed.order_by("-created_at").values("id", "citations")[:TAG_DOMAIN_SAMPLE]
    cited, byte_order = _CITED[connection.vendor]
    query = _DOMAINS_SQL.replace("{cited}", cited).replace("{byte_order}", byte_order)
    rows = _around(sample, query, after=(TAG_DOMAINS,))
    sampled = next(n for domain, n in rows if domain is None)
    domains = sorted(
        ((domain, n) for domain, n in rows if domain is not None), key=lambda row: (-row[1], row[0])
    )
    return sampled, domains
