"""generate_tasks gives the benchmarks something real to measure: a demo brand set and its mentions."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from tasks.models import BrandMention, BrandSet, Task
from tasks.spend import periods
from tasks.visibility.selectors import AnswerScope, visibility_report

pytestmark = pytest.mark.django_db


@pytest.mark.long
def test_generated_answers_mention_and_cite_the_demo_brands(member_client):
    call_command("generate_tasks", count=2000, batch_size=1000, tags=20, users=3, sample=0.01, stdout=None)

    brand_set = BrandSet.objects.get(name="Demo brands")
    tagged_answers = Task.objects.filter(status="completed").exclude(tag="").count()
    assert BrandMention.objects.filter(brand_set=brand_set, brand__isnull=True).count() == tagged_answers
    assert brand_set.rolled_through is not None
    report = visibility_report(
        brand_set=brand_set, scope=AnswerScope(), period=periods.period_preset("last_30")
    )
    assert report.answers > 0
    assert all(0 < line.visibility < 1 for line in report.lines)
    assert report.citation_groups[0].citations > 0 and report.citation_groups[1].citations > 0
    assert member_client.get(reverse("visibility:set_page", args=[brand_set.pk])).status_code == 200
