"""The visibility rollup: BrandMention summed per day, so a set's page over 90 days reads a few thousand
rows instead of every answer.

A day is rolled up once the spend rollup has (tasks/spend/rollup.py: every task of the day is final, so
no answer is still to come). `BrandSet.rolled_through` is each set's watermark; a recompute clears it, and
an answer completed late for a rolled-up day moves it back (mentions._reopen_rollup). Pages read the
rows up to the watermark and the mentions after it (selectors.py), the same sums either way.
"""

from datetime import date, timedelta

from django.db import transaction
from django.db.models import Count, Min, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from tasks.models import BrandMention, BrandSet, VisibilityDay
from tasks.spend.figures import rolled_through
from tasks.spend.periods import Period

SUMS = ("rows", "mentioned", "mentions", "position_sum", "first_paragraph", "cited", "citations", "spend")


def mention_sums(queryset, keys: list[str]):
    """BrandMention rows grouped by `keys` ("day" is the local day), with every figure the pages use."""
    if "day" in keys:
        queryset = queryset.annotate(day=TruncDate("created_at"))
    return (
        queryset.values(*keys)
        .annotate(
            rows=Count("pk"),
            mentioned=Count("pk", filter=Q(mention_count__gt=0)),
            mentions=Sum("mention_count"),
            position_sum=Sum("position"),
            first_paragraph=Count("pk", filter=Q(in_first_paragraph=True)),
            cited=Count("pk", filter=Q(citation_count__gt=0)),
            citations=Sum("citation_count"),
            spend=Sum("spend", filter=Q(brand__isnull=True) | Q(mention_count__gt=0)),
        )
        .order_by()
    )


SET_KEYS = ["day", "brand_id", "provider", "model_name"]
TAG_KEYS = ["day", "tag", "brand_id", "provider", "model_name"]


def _rows(brand_set_id: int, start: date, end: date) -> list[VisibilityDay]:
    span = Period(start=start, end=end)
    mentions = BrandMention.objects.filter(
        brand_set_id=brand_set_id, created_at__gte=span.start_at, created_at__lt=span.end_before
    )
    rows = []
    for per_tag, keys in ((False, SET_KEYS), (True, TAG_KEYS)):
        for group in mention_sums(mentions, keys):
            figures = {name: group[name] or 0 for name in SUMS}
            rows.append(
                VisibilityDay(
                    brand_set_id=brand_set_id,
                    per_tag=per_tag,
                    day=group["day"],
                    tag=group.get("tag", ""),
                    brand_id=group["brand_id"],
                    provider=group["provider"],
                    model_name=group["model_name"],
                    **figures,
                )
            )
    return rows


def visibility_rollup(*, brand_set_ids: list[int] | None = None) -> dict[int, date | None]:
    """Roll up each set's days not rolled up yet, through the spend rollup's last day; idempotent.
    Returns each set's watermark after the run."""
    through = rolled_through()
    sets = BrandSet.objects.all() if brand_set_ids is None else BrandSet.objects.filter(pk__in=brand_set_ids)
    done = {}
    for set_id in sets.values_list("pk", flat=True):
        with transaction.atomic():
            brand_set = BrandSet.objects.select_for_update().get(pk=set_id)
            done[set_id] = brand_set.rolled_through
            if through is None or (brand_set.rolled_through or date.min) >= through:
                continue
            if brand_set.rolled_through is not None:
                start = brand_set.rolled_through + timedelta(days=1)
            else:
                first = BrandMention.objects.filter(brand_set_id=set_id).aggregate(first=Min("created_at"))[
                    "first"
                ]
                start = timezone.localdate(first) if first else through
            VisibilityDay.objects.filter(brand_set_id=set_id, day__gte=start, day__lte=through).delete()
            if start <= through:
                VisibilityDay.objects.bulk_create(_rows(set_id, start, through), batch_size=5000)
            brand_set.rolled_through = through
            brand_set.save(update_fields=["rolled_through"])
            done[set_id] = through
    return done
