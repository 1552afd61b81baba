"""Mentions extracted once per answer and per brand set reading its tag: when the task completes
(`mentions_for_task`, called where an outcome is applied, tasks/submission/collection.py) and again for
a whole set when its brands or tags change (`mentions_recompute`, run by the `recompute_mentions` job).
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from tasks.models import Brand, BrandMention, BrandSet, BrandSetTag, Task, VisibilityDay
from tasks.visibility.extraction import BrandRule, Matcher, analyse, parse_aliases, parse_domains

logger = logging.getLogger(__name__)

RECOMPUTE_CHUNK = 2000


def brand_rules(brand_set_id: int) -> list[BrandRule]:
    rules = []
    for brand in Brand.objects.filter(brand_set_id=brand_set_id).order_by("pk"):
        terms, patterns = parse_aliases(brand.name, brand.aliases)
        rules.append(
            BrandRule(
                id=brand.pk,
                name=brand.name,
                is_ours=brand.is_ours,
                terms=terms,
                patterns=patterns,
                domains=parse_domains(brand.domains),
            )
        )
    return rules


def mention_rows(*, brand_set_id: int, matcher: Matcher, task: dict) -> list[BrandMention]:
    """The answer row and one row per brand mentioned or cited, for one task (a dict of its fields)."""
    findings = analyse(matcher, task["answer_text"], task["citations"])
    common = {
        "task_id": task["id"],
        "brand_set_id": brand_set_id,
        "created_at": task["created_at"],
        "tag": task["tag"],
        "provider": task["provider"],
        "model_name": task["model_name"],
        "spend": task["spend"],
    }
    rows = [BrandMention(**common, citation_count=findings.citation_count)]
    for finding in findings.brands.values():
        rows.append(
            BrandMention(
                **common,
                brand_id=finding.brand_id,
                mention_count=finding.mention_count,
                position=finding.position,
                in_first_paragraph=finding.in_first_paragraph,
                citation_count=finding.citation_count,
                citation_rank=finding.citation_rank,
            )
        )
    return rows


TASK_FIELDS = ("id", "answer_text", "citations", "created_at", "tag", "provider", "model_name", "spend")


def _reopen_rollup(brand_set_ids, created_at) -> None:
    """A day already rolled up gained an answer: it is read from the mentions again until re-rolled."""
    day = timezone.localdate(created_at)
    BrandSet.objects.filter(pk__in=brand_set_ids, rolled_through__gte=day).update(
        rolled_through=day - timedelta(days=1)
    )


def mentions_for_task(*, task_id) -> int:
    """Extract the mentions of a completed task for every brand set reading its tag; returns the rows
    written. Safe to run twice (the task's rows are replaced). Called in the transaction that completes
    the task; a failure here is logged and never stops the task being recorded (a recompute repairs it)."""
    try:
        with transaction.atomic():
            return _mentions_for_task(task_id)
    except Exception:
        logger.exception("Mentions of task %s could not be extracted; recompute the brand set.", task_id)
        return 0


def _mentions_for_task(task_id) -> int:
    task = Task.objects.filter(pk=task_id, status=Task.Status.COMPLETED).values(*TASK_FIELDS).first()
    if task is None or not task["tag"]:
        return 0
    set_ids = list(BrandSetTag.objects.filter(tag=task["tag"]).values_list("brand_set_id", flat=True))
    if not set_ids:
        return 0
    BrandMention.objects.filter(task_id=task_id, brand_set_id__in=set_ids).delete()
    rows = []
    for set_id in set_ids:
        rows += mention_rows(brand_set_id=set_id, matcher=Matcher(brand_rules(set_id)), task=task)
    BrandMention.objects.bulk_create(rows)
    _reopen_rollup(set_ids, task["created_at"])
    return len(rows)


def mentions_recompute(*, brand_set_id: int) -> int:
    """Extract again every answer of the set's tags (after its brands or tags changed); returns the rows.

    One transaction: the set's pages show the old figures until the new ones are complete."""
    rules = brand_rules(brand_set_id)
    matcher = Matcher(rules)
    tags = list(BrandSetTag.objects.filter(brand_set_id=brand_set_id).values_list("tag", flat=True))
    written = 0
    with transaction.atomic():
        brand_set = BrandSet.objects.select_for_update().filter(pk=brand_set_id).first()
        if brand_set is None:
            return 0
        BrandMention.objects.filter(brand_set_id=brand_set_id).delete()
        VisibilityDay.objects.filter(brand_set_id=brand_set_id).delete()
        tasks = (
            Task.objects.filter(tag__in=tags, status=Task.Status.COMPLETED)
            .order_by()
            .values(*TASK_FIELDS)
            .iterator(chunk_size=RECOMPUTE_CHUNK)
        )
        rows = []
        for task in tasks:
            rows += mention_rows(brand_set_id=brand_set_id, matcher=matcher, task=task)
            if len(rows) >= RECOMPUTE_CHUNK:
                written += len(BrandMention.objects.bulk_create(rows))
                rows = []
        written += len(BrandMention.objects.bulk_create(rows))
        brand_set.rolled_through = None
        brand_set.extracted_at = timezone.now()
        brand_set.save(update_fields=["rolled_through", "extracted_at", "updated_at"])
    return written
