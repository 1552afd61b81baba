"""The visibility rollup gives the figures of the mentions themselves, and follows changes."""

from datetime import timedelta
from itertools import product

import pytest
from django.utils import timezone

from tasks.models import BrandMention, BrandSet, VisibilityDay
from tasks.spend import periods
from tasks.spend.rollup import spend_rollup
from tasks.visibility.rollup import visibility_rollup
from tasks.visibility.selectors import AnswerScope, visibility_report
from tests.factories import make_task
from tests.visibility.conftest import at

pytestmark = pytest.mark.django_db


def _figures(report):
    """Everything the page shows, as plain values."""

    def lines(ls):
        return [
            (x.brand.name, x.answers, dict(x.sums), x.visibility, x.share_of_voice, x.average_position)
            for x in ls
        ]

    return {
        "answers": report.answers,
        "previous": report.previous_answers,
        "citations": [(g.key, g.citations) for g in report.citation_groups],
        "lines": lines(report.lines),
        "previous_lines": lines([x.previous for x in report.lines]),
        "over_time": [(c.key, c.answers, lines(c.lines)) for c in report.over_time],
        "by_model": [(c.key, c.answers, lines(c.lines)) for c in report.by_model],
        "spend": report.spend,
    }


SCOPES = {"set": AnswerScope(), "tag": AnswerScope(tags=("parks",))}


def test_rolled_up_figures_equal_the_mentions(brand_set, answers):
    """Every scope, granularity and period on one set of answers (each case alone built them again)."""
    spend_rollup()
    through = visibility_rollup()[brand_set.pk]
    assert through is not None and through >= timezone.localdate() - timedelta(days=2)
    assert VisibilityDay.objects.filter(brand_set=brand_set).exists()
    brand_set.refresh_from_db()

    differ, empty = [], []
    for case in product(SCOPES, ("day", "week", "month"), ("this_month", "last_month", "last_30")):
        scope, granularity, period_key = SCOPES[case[0]], case[1], case[2]
        period = periods.period_preset(period_key)
        rolled = visibility_report(brand_set=brand_set, scope=scope, period=period, granularity=granularity)
        live = visibility_report(
            brand_set=brand_set, scope=scope, period=period, granularity=granularity, use_rollup=False
        )
        if (figures := _figures(rolled)) != (live_figures := _figures(live)):
            differ.append((case, figures, live_figures))
        if not rolled.answers and period_key != "this_month":
            empty.append(case)

    assert not differ, "rolled up and live figures differ:\n" + "\n".join(map(str, differ))
    assert not empty, f"no answers in {empty}"


def test_a_late_answer_on_a_rolled_up_day_is_counted_at_once(brand_set, answers):
    spend_rollup()
    visibility_rollup()
    day = timezone.localdate() - timedelta(days=5)
    period = periods.period_custom(start=day, end=day)
    before = visibility_report(brand_set=brand_set, scope=AnswerScope(), period=period).answers

    from tasks.visibility.mentions import mentions_for_task

    late = make_task(tag="parks", answer_text="Acme!", created_at=at(day, 3))
    mentions_for_task(task_id=late.pk)
    brand_set.refresh_from_db()

    assert brand_set.rolled_through < day
    assert visibility_report(brand_set=brand_set, scope=AnswerScope(), period=period).answers == before + 1


def test_recompute_replaces_the_mentions_and_clears_the_rollup(brand_set, answers):
    spend_rollup()
    visibility_rollup()
    brand_set.brands.filter(name="Umbrella").delete()

    from tasks.visibility.mentions import mentions_recompute

    mentions_recompute(brand_set_id=brand_set.pk)

    assert BrandSet.objects.get(pk=brand_set.pk).rolled_through is None
    assert not VisibilityDay.objects.filter(brand_set=brand_set).exists()
    assert BrandMention.objects.filter(brand_set=brand_set, brand__isnull=True).count() == len(
        [t for t in answers if t.tag == "parks"]
    )
