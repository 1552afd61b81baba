"""Reads of visibility: a brand set's figures over a scope of answers, and the answers behind a figure.

The API the other pages reuse (a monitor's page is its tag's scope):

    report = visibility_report(brand_set=s, scope=AnswerScope(tags=("parks",)), period=p, granularity="week")
    tasks = answers_behind(brand_set=s, scope=..., period=p, brand_id=b, figure="mentioned")
    visibility_url_for_tag(tag, title=..., back=...)

Figures come from VisibilityDay for the days the set's rollup covers and from BrandMention after them
(`use_rollup=False` reads only mentions: the tests compare both). Nothing here reads answer text.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import quote_plus, urlencode

from django.db.models import F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.urls import reverse

from tasks.models import Brand, BrandMention, BrandSet, Task, VisibilityDay
from tasks.spend.figures import rolled_through
from tasks.spend.periods import Period
from tasks.spend.reports import _bucket_end, _bucket_label, _bucket_start
from tasks.visibility.rollup import SUMS, mention_sums

FIGURES = (
    "answers",
    "mentioned",
    "first_paragraph",
    "cited",
    "position",
    "ours",
    "cited_ours",
    "cited_competitors",
    "cited_others",
)
# The citation share's groups: the figure of the answers citing each (no brand of its own).
CITED_GROUPS = {"ours": "cited_ours", "competitors": "cited_competitors", "others": "cited_others"}


@dataclass(frozen=True)
class AnswerScope:
    """Which answers: the set's own tags (neither given), some tags, or a queryset of tasks (no rollup)."""

    tags: tuple[str, ...] | None = None
    tasks: object = None

    def mention_filter(self) -> Q:
        q = Q()
        if self.tags is not None:
            q &= Q(tag__in=self.tags)
        if self.tasks is not None:
            q &= Q(task_id__in=self.tasks.values("pk"))
        return q

    def query(self) -> dict:
        return {"tag": list(self.tags)} if self.tags is not None else {}


def _empty() -> dict:
    return dict.fromkeys(SUMS, 0)


def _add(into: dict, row: dict) -> None:
    for name in SUMS:
        into[name] += row[name] or 0


def _set_through(brand_set: BrandSet) -> date | None:
    """The last day read from the rollup: the set's watermark, never past the spend rollup's."""
    spend_through = rolled_through()
    if brand_set.rolled_through is None or spend_through is None:
        return None
    return min(brand_set.rolled_through, spend_through)


def source_rows(
    *,
    brand_set: BrandSet,
    scope: AnswerScope,
    start: date,
    end: date,
    keys: list[str],
    through: date | None,
) -> dict[tuple, dict]:
    """The figures (SUMS) for the days start..end grouped by `keys` (of day, brand_id, provider,
    model_name), summed by the database: from the rollup for the days through `through`, from the
    mentions after them. Keyed by the tuple of the `keys`' values, each group once."""
    parts = []
    live_start = start
    if through is not None and through >= start:
        rolled = VisibilityDay.objects.filter(
            brand_set=brand_set, per_tag=scope.tags is not None, day__gte=start, day__lte=min(end, through)
        )
        if scope.tags is not None:
            rolled = rolled.filter(tag__in=scope.tags)
        sums = {f"{name}_sum": Sum(name) for name in SUMS}
        parts.append(rolled.values(*keys).annotate(**sums).values_list(*keys, *sums).order_by())
        live_start = through + timedelta(days=1)
    if live_start <= end:
        span = Period(start=live_start, end=end)
        mentions = BrandMention.objects.filter(
            scope.mention_filter(),
            brand_set=brand_set,
            created_at__gte=span.start_at,
            created_at__lt=span.end_before,
        )
        parts.append(mention_sums(mentions, keys).values_list(*keys, *SUMS))
    # tuples, not dicts, while the two parts are merged: a 90-day page reads ~1,000 rows per grouping
    width = len(keys)
    groups: dict[tuple, list] = {}
    for part in parts:
        for row in part:
            key = row[:width]
            into = groups.get(key)
            if into is None:
                groups[key] = [value or 0 for value in row[width:]]
            else:
                for index, value in enumerate(row[width:]):
                    into[index] += value or 0
    return {key: dict(zip(SUMS, figures, strict=True)) for key, figures in groups.items()}


def _ratio(part, whole) -> Decimal | None:
    return (Decimal(part) / Decimal(whole)) if whole else None


@dataclass
class BrandLine:
    """One brand's figures over some answers."""

    brand: Brand
    answers: int
    sums: dict
    mentions_all: int  # every brand's mentions, for share of voice
    citations_all: int
    links: "SliceLinks | None" = None  # its slice's answers-behind URLs, made when asked for
    previous: "BrandLine | None" = None

    @property
    def url(self) -> str | None:
        """The answers that mention it."""
        return self.links.of("mentioned", self.brand.pk) if self.links is not None else None

    @property
    def cited_url(self) -> str | None:
        return self.links.of("cited", self.brand.pk) if self.links is not None else None

    @property
    def first_paragraph_url(self) -> str | None:
        return self.links.of("first_paragraph", self.brand.pk) if self.links is not None else None

    @property
    def mentioned(self) -> int:
        return self.sums["mentioned"]

    @property
    def visibility(self) -> Decimal | None:
        return _ratio(self.sums["mentioned"], self.answers)

    @property
    def share_of_voice(self) -> Decimal | None:
        return _ratio(self.sums["mentions"], self.mentions_all)

    @property
    def average_position(self) -> Decimal | None:
        value = _ratio(self.sums["position_sum"], self.sums["mentioned"])
        return value.quantize(Decimal("0.01")) if value is not None else None

    @property
    def citation_share(self) -> Decimal | None:
        return _ratio(self.sums["citations"], self.citations_all)

    @property
    def cost_per_answer(self) -> Decimal | None:
        """What the answers that mention it cost, per answer."""
        value = _ratio(self.sums["spend"], self.sums["mentioned"])
        return value.quantize(Decimal("0.000001")) if value is not None else None

    @property
    def visibility_change(self) -> Decimal | None:
        if self.previous is None or self.visibility is None or self.previous.visibility is None:
            return None
        return self.visibility - self.previous.visibility


@dataclass
class Column:
    """Figures of a slice of the answers (a time bucket, or a provider and model)."""

    key: str
    label: str
    answers: int
    lines: list[BrandLine]
    links: "SliceLinks | None" = None
    start: date | None = None
    end: date | None = None

    @property
    def url(self) -> str | None:
        """Its answers."""
        return self.links.of("answers") if self.links is not None else None


@dataclass
class CitationGroup:
    key: str
    label: str
    citations: int
    share: Decimal | None
    url: str | None = None  # the answers citing these domains


@dataclass
class VisibilityReport:
    brand_set: BrandSet
    brands: list[Brand]
    scope: AnswerScope
    period: Period
    previous_period: Period
    granularity: str
    answers: int = 0
    previous_answers: int = 0
    citations: int = 0
    spend: Decimal = Decimal("0")
    answers_url: str | None = None
    lines: list[BrandLine] = field(default_factory=list)
    citation_groups: list[CitationGroup] = field(default_factory=list)
    over_time: list[Column] = field(default_factory=list)
    by_model: list[Column] = field(default_factory=list)

    @property
    def cost_per_answer(self) -> Decimal | None:
        value = _ratio(self.spend, self.answers)
        return value.quantize(Decimal("0.000001")) if value is not None else None

    @property
    def ours(self) -> list[BrandLine]:
        return [line for line in self.lines if line.brand.is_ours]


def answers_url(
    *, brand_set: BrandSet, scope: AnswerScope, start: date, end: date, figure: str = "answers", **extra
) -> str | None:
    """The answers page of a figure (None for a queryset scope, which has no URL)."""
    return _Links(brand_set, scope).url(start, end, figure, **extra)


class _Links:
    """The answers-behind URLs of one report, built without a reverse() for each of its many figures."""

    def __init__(self, brand_set: BrandSet, scope: AnswerScope):
        self.base = None if scope.tasks is not None else reverse("visibility:answers", args=[brand_set.pk])
        self.scope = urlencode(scope.query(), doseq=True)

    def url(self, start: date, end: date, figure: str = "answers", **extra) -> str | None:
        return self.slice(start, end, **extra).of(figure)

    def slice(self, start: date, end: date, **extra) -> "SliceLinks":
        return SliceLinks(self, start, end, extra)


class SliceLinks:
    """The URLs of the figures of one slice of a report (its period, a time bucket, a provider and model):
    `head + figure + tail`, then the brand; the query string is built once per slice, not per figure.

    `head` and `tail` are public so the tables (tasks/visibility/tables.py) escape them once per slice."""

    def __init__(self, links: _Links, start: date, end: date, extra: dict):
        self.base = links.base
        query = f"date_from={start.isoformat()}&date_to={end.isoformat()}&figure="
        self.head = f"{links.base}?{links.scope}&{query}" if links.scope else f"{links.base}?{query}"
        self.tail = "".join(
            f"&{name}={quote_plus(str(value))}" for name, value in extra.items() if value not in (None, "")
        )

    def of(self, figure: str, brand: int | None = None) -> str | None:
        if self.base is None:
            return None
        if brand is None or brand == "":
            return f"{self.head}{figure}{self.tail}"
        return f"{self.head}{figure}{self.tail}&brand={quote_plus(str(brand))}"


def _lines(brands, groups: dict, *, links: SliceLinks | None = None) -> tuple[int, list[BrandLine]]:
    whole = groups.get(None) or _empty()
    answers, citations = whole["rows"], whole["citations"]
    sums = [groups.get(brand.pk) or _empty() for brand in brands]
    mentions_all = sum(brand_sums["mentions"] for brand_sums in sums)
    lines = [
        BrandLine(brand, answers, brand_sums, mentions_all, citations, links)
        for brand, brand_sums in zip(brands, sums, strict=True)
    ]
    return answers, lines


def visibility_report(
    *,
    brand_set: BrandSet,
    scope: AnswerScope,
    period: Period,
    granularity: str = "day",
    use_rollup: bool = True,
) -> VisibilityReport:
    """Visibility, share of voice, first-mention position and citation share of each brand of the set,
    for the answers of `scope` created in `period`, over time, per provider and model, and against the
    previous period; every figure with the URL of the answers behind it."""
    if granularity not in ("day", "week", "month"):
        granularity = "day"
    previous = period.previous()
    brands = list(brand_set.brands.all())

    through = _set_through(brand_set) if use_rollup and scope.tasks is None else None

    def rows(start, end, keys):
        return source_rows(brand_set=brand_set, scope=scope, start=start, end=end, keys=keys, through=through)

    # each group's figures are summed into the period's (and a week's or a month's); a day's used as they are
    now: dict = defaultdict(_empty)
    buckets: dict[date, dict] = defaultdict(dict)
    for (day, brand_id), sums in rows(period.start, period.end, ["day", "brand_id"]).items():
        _add(now[brand_id], sums)
        if granularity == "day":
            buckets[day][brand_id] = sums
        else:
            _add(buckets[_bucket_start(day, granularity)].setdefault(brand_id, _empty()), sums)
    models: dict[tuple, dict] = defaultdict(dict)
    for (provider, model_name, brand_id), sums in rows(
        period.start, period.end, ["provider", "model_name", "brand_id"]
    ).items():
        models[(provider, model_name)][brand_id] = sums
    previous_groups = rows(previous.start, previous.end, ["brand_id"])
    before = {brand_id: sums for (brand_id,), sums in previous_groups.items()}
    links = _Links(brand_set, scope)

    report = VisibilityReport(brand_set, brands, scope, period, previous, granularity)
    whole = links.slice(period.start, period.end)
    report.answers, report.lines = _lines(brands, now, links=whole)
    report.citations = now[None]["citations"] if None in now else 0
    report.spend = Decimal(now[None]["spend"] if None in now else 0)
    report.answers_url = whole.of("answers")
    report.previous_answers, previous_lines = _lines(
        brands, before, links=links.slice(previous.start, previous.end)
    )
    for line, old in zip(report.lines, previous_lines, strict=True):
        line.previous = old
    ours = sum(line.sums["citations"] for line in report.lines if line.brand.is_ours)
    theirs = sum(line.sums["citations"] for line in report.lines if not line.brand.is_ours)
    others = max(report.citations - ours - theirs, 0)
    report.citation_groups = [
        CitationGroup(key, label, count, _ratio(count, report.citations), whole.of(CITED_GROUPS[key]))
        for key, label, count in (
            ("ours", "Our domains", ours),
            ("competitors", "Competitors' domains", theirs),
            ("others", "Other domains", others),
        )
    ]
    start = _bucket_start(period.start, granularity)
    while start <= period.end:
        end = min(_bucket_end(start, granularity), period.end)
        first = max(start, period.start)
        link = links.slice(first, end)
        answers, lines = _lines(brands, buckets.get(start, {}), links=link)
        report.over_time.append(
            Column(start.isoformat(), _bucket_label(start, granularity), answers, lines, link, first, end)
        )
        start = end + timedelta(days=1)
    provider_labels = dict(Task._meta.get_field("provider").choices)
    for (provider, model_name), groups in sorted(models.items()):
        link = links.slice(period.start, period.end, provider=provider, model=model_name)
        answers, lines = _lines(brands, groups, links=link)
        label = f"{provider_labels.get(provider, provider)} {model_name}"
        report.by_model.append(Column(f"{provider}/{model_name}", label, answers, lines, link))
    return report


def answer_rows(
    *,
    brand_set: BrandSet,
    scope: AnswerScope,
    period: Period,
    figure: str = "answers",
    brand_id: int | None = None,
    position: int | None = None,
    provider: str = "",
    model_name: str = "",
):
    """The mention rows behind a figure of `visibility_report` (one per answer), as (task_id, created_at)
    newest first: paginating them reads the mentions' indexes, never the tasks."""
    mentions = BrandMention.objects.filter(
        scope.mention_filter(),
        brand_set=brand_set,
        created_at__gte=period.start_at,
        created_at__lt=period.end_before,
    )
    if provider:
        mentions = mentions.filter(provider=provider)
    if model_name:
        mentions = mentions.filter(model_name=model_name)
    if figure == "ours":
        mentions = mentions.filter(brand__is_ours=True, mention_count__gt=0)
    elif figure in ("cited_ours", "cited_competitors"):
        mentions = mentions.filter(brand__is_ours=figure == "cited_ours", citation_count__gt=0)
    elif figure == "cited_others":
        mentions = _citing_other_domains(mentions.filter(brand__isnull=True))
    elif figure == "answers" or brand_id is None:
        mentions = mentions.filter(brand__isnull=True)
    else:
        mentions = mentions.filter(brand_id=brand_id)
        if figure == "mentioned":
            mentions = mentions.filter(mention_count__gt=0)
        elif figure == "first_paragraph":
            mentions = mentions.filter(in_first_paragraph=True)
        elif figure == "cited":
            mentions = mentions.filter(citation_count__gt=0)
        elif figure == "position":
            mentions = mentions.filter(position=position)
    rows = mentions.order_by("-created_at", "-task_id").values_list("task_id", "created_at")
    return rows.distinct() if figure in ("ours", "cited_ours", "cited_competitors") else rows


def _citing_other_domains(answer_rows):
    """The answer rows with more citations than the set's brands' domains account for: those citing a
    domain of no brand (the report's "Other domains", counted the same way)."""
    branded = (
        BrandMention.objects.filter(
            brand_set_id=OuterRef("brand_set_id"), task_id=OuterRef("task_id"), brand__isnull=False
        )
        .order_by()
        .values("task_id")
        .annotate(total=Sum("citation_count"))
        .values("total")
    )
    return answer_rows.annotate(branded=Coalesce(Subquery(branded), 0)).filter(
        citation_count__gt=F("branded")
    )


def answers_behind(**criteria):
    """The tasks behind a figure of `visibility_report` (answer_rows' arguments), newest first: as many
    as the figure counts."""
    rows = answer_rows(**criteria)
    return Task.objects.filter(pk__in=rows.values("task_id")).order_by("-created_at", "-pk")


def visibility_url_for_tag(tag: str, *, title: str = "", back: str = "") -> str:
    """The visibility page of a tag (a monitor's page: its tasks carry its tag), with an optional
    title and back link shown on it."""
    url = reverse("visibility:tag_page", kwargs={"tag": tag})
    query = {k: v for k, v in (("title", title), ("back", back)) if v}
    return url + ("?" + urlencode(query) if query else "")
