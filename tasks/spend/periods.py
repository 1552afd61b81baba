"""Spend periods (presets and custom ranges), the dimensions spend is broken down by, and the money
rounding shared by the spend reports."""

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.urls import NoReverseMatch, reverse
from django.utils import timezone

ZERO = Decimal("0")


CENT_FRACTION = Decimal("0.000001")  # Task money has 6 decimal places; SQLite sums carry noise digits


def _money(value) -> Decimal:
    return (value or ZERO).quantize(CENT_FRACTION)


PERIOD_CHOICES = [
    ("this_month", "This month"),
    ("last_month", "Last month"),
    ("last_7", "Last 7 days"),
    ("last_30", "Last 30 days"),
    ("custom", "Custom"),
]


GRANULARITY_CHOICES = [("day", "Day"), ("week", "Week"), ("month", "Month")]


MAX_PERIOD_DAYS = 366 * 3


def local_today() -> date:
    return timezone.localdate()


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Period:
    """Whole days from `start` to `end`, both inclusive, in the site's time zone."""

    start: date
    end: date
    key: str = "custom"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=timezone.get_current_timezone())

    @property
    def end_before(self) -> datetime:
        """The first instant after the period."""
        return datetime.combine(
            self.end + timedelta(days=1), time.min, tzinfo=timezone.get_current_timezone()
        )

    @property
    def is_month_aligned(self) -> bool:
        return self.key in ("this_month", "last_month")

    def previous(self) -> "Period":
        """The period to compare with: the same span one month earlier for the month presets (1–22 Nov
        against 1–22 Oct), otherwise the same number of days immediately before."""
        if self.is_month_aligned:
            start = _add_months(self.start, -1)
            if self.key == "last_month":
                end = self.start - timedelta(days=1)
            else:
                end = min(_add_months(self.end, -1), self.start - timedelta(days=1))
            return Period(start=start, end=end, key="previous")
        return Period(
            start=self.start - timedelta(days=self.days), end=self.start - timedelta(days=1), key="previous"
        )

    @property
    def label(self) -> str:
        if self.start == self.end:
            return f"{self.start:%-d %b %Y}"
        if self.start.year == self.end.year:
            if self.start.month == self.end.month:
                return f"{self.start:%-d}–{self.end:%-d %b %Y}"
            return f"{self.start:%-d %b} – {self.end:%-d %b %Y}"
        return f"{self.start:%-d %b %Y} – {self.end:%-d %b %Y}"

    def filters(self) -> dict[str, str]:
        return {"date_from": self.start.isoformat(), "date_to": self.end.isoformat()}


def period_preset(key: str, *, today: date | None = None) -> Period:
    today = today or local_today()
    if key == "last_month":
        first = today.replace(day=1)
        end = first - timedelta(days=1)
        return Period(start=end.replace(day=1), end=end, key=key)
    if key == "last_7":
        return Period(start=today - timedelta(days=6), end=today, key=key)
    if key == "last_30":
        return Period(start=today - timedelta(days=29), end=today, key=key)
    return Period(start=today.replace(day=1), end=today, key="this_month")


def period_custom(*, start: date, end: date) -> Period:
    if end < start:
        start, end = end, start
    if (end - start).days >= MAX_PERIOD_DAYS:
        start = end - timedelta(days=MAX_PERIOD_DAYS - 1)
    return Period(start=start, end=end, key="custom")


def task_list_url(filters: dict) -> str | None:
    """The task list filtered by `filters`, or None until the history pages exist."""
    try:
        base = reverse("history:task_list")
    except NoReverseMatch:
        return None
    return f"{base}?{urlencode(filters)}"


@dataclass(frozen=True)
class Dimension:
    key: str
    title: str
    filter_name: str  # the task list's GET parameter
    value: str  # the grouped field
    empty_label: str


DIMENSIONS = {
    d.key: d
    for d in (
        Dimension("person", "By person", "person", "submitted_by_id", "(nobody)"),
        Dimension("provider", "By provider", "provider", "provider", "(none)"),
        Dimension("model", "By model", "model", "model_name", "(none)"),
        Dimension("credential", "By credential", "credential", "credential_id", "(none)"),
        Dimension("tag", "By tag", "tag", "tag", "(no tag)"),
        Dimension("template", "By template", "template", "template_version__template_id", "(no template)"),
    )
}
