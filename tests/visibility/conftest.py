"""A brand set of four brands reading tag "parks", and a few weeks of answers under it; and a set whose
names, aliases, domains and tag are hostile to HTML, URLs and CSV."""

from datetime import date, datetime, timedelta

import pytest
from django.utils import timezone

from tasks.models import Brand, BrandSet, BrandSetTag
from tasks.visibility.mentions import mentions_recompute
from tests.factories import make_task

ANSWERS = [
    "Acme leads the parks in France.\n\nGlobex and Initech follow.",
    "Globex is the best. Acme is second. Umbrella is third.",
    "Nothing about any brand here.",
    "Initech and [Acme](https://globex.com) are popular; ACMÉ again.",
]
CITATIONS = [
    [
        {"url": "https://acme.com/a", "domain": "acme.com"},
        {"url": "https://wikipedia.org/x", "domain": "wikipedia.org"},
    ],
    [{"url": "https://www.globex.com/b", "domain": "www.globex.com"}],
    [],
    [
        {"url": "https://reddit.com/r", "domain": "reddit.com"},
        {"url": "https://shop.acme.com/", "domain": "shop.acme.com"},
    ],
]


def at(day: date, hour: int = 12) -> datetime:
    return timezone.make_aware(datetime(day.year, day.month, day.day, hour))


@pytest.fixture
def brand_set(db):
    brand_set = BrandSet.objects.create(name="Parks")
    Brand.objects.create(
        brand_set=brand_set, name="Acme", is_ours=True, aliases="Acme Parks", domains="acme.com"
    )
    Brand.objects.create(brand_set=brand_set, name="Globex", domains="globex.com")
    Brand.objects.create(brand_set=brand_set, name="Initech")
    Brand.objects.create(brand_set=brand_set, name="Umbrella")
    BrandSetTag.objects.create(brand_set=brand_set, tag="parks")
    return brand_set


@pytest.fixture
def answers(brand_set):
    """Answers on each of the last 70 days, over two providers; a few failed and other tags too."""
    today = timezone.localdate()
    tasks = []
    for offset in range(70):
        day = today - timedelta(days=offset)
        for n in range(1 + offset % 2):
            i = offset + n
            provider = "claude" if i % 3 == 0 else "chat_gpt"
            tasks.append(
                make_task(
                    tag="parks" if i % 5 else "other",
                    provider=provider,
                    answer_text=ANSWERS[i % 4],
                    citations=CITATIONS[i % 4],
                    created_at=at(day, hour=(5 * i) % 24),
                )
            )
        if offset % 9 == 0:
            make_task(tag="parks", status="failed", created_at=at(day))
    mentions_recompute(brand_set_id=brand_set.pk)
    return tasks


HOSTILE_TAG = "a&b/c#d%20e <x> \"q\" 'ü'"
HOSTILE_BRANDS = [
    # name, ours, aliases, domains
    ('<b>Acme</b> & "Co"', True, "Acme\nAcmé Parks", "acme.com\nacme.example/a#b"),
    ("Glöbex 100% / #1", False, "Globex\nre:glob[eé]x", "globex.com"),
    ("It's & <i>", False, "Initech", "initech.com?x=1&y=2"),
    ("空の会社", False, "Umbrella", ""),
]
HOSTILE_ANSWERS = [
    ("Acme leads.\n\nGlobex and Initech follow.", [{"url": "https://acme.com/a", "domain": "acme.com"}]),
    ("Globex first, Acme second, Umbrella third.", [{"url": "https://globex.com/b", "domain": "globex.com"}]),
    ("No brand at all.", []),
    ("Initech and Acmé Parks.", [{"url": "https://wiki.org/x", "domain": "wiki.org"}]),
]


@pytest.fixture
def hostile_set(db):
    """Four brands with hostile names over 40 days of answers (some days none), two tags, two providers."""
    brand_set = BrandSet.objects.create(name="<script>&'\"")
    for name, ours, aliases, domains in HOSTILE_BRANDS:
        Brand.objects.create(brand_set=brand_set, name=name, is_ours=ours, aliases=aliases, domains=domains)
    BrandSetTag.objects.create(brand_set=brand_set, tag=HOSTILE_TAG)
    BrandSetTag.objects.create(brand_set=brand_set, tag="plain")
    today = timezone.localdate()
    # answers on some of the last 40 days (today and some days without any), over two providers
    for offset in range(0, 40, 3):
        for i, (text, citations) in enumerate(HOSTILE_ANSWERS[: 1 + offset % 4]):
            make_task(
                tag=HOSTILE_TAG if (offset + i) % 2 else "plain",
                provider="claude" if (offset + i) % 3 == 0 else "chat_gpt",
                answer_text=text,
                citations=citations,
                created_at=at(today - timedelta(days=offset), hour=1 + i),
            )
    mentions_recompute(brand_set_id=brand_set.pk)
    return brand_set
