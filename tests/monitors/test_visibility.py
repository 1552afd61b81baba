"""A monitor read with a brand set: attached from the monitor's page, its visibility page is its tag's,
titled and linked back, and the runs whose brands changed are marked on the monitor's and the tag's pages."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tasks.models import Brand, BrandSet, BrandSetTag
from tasks.visibility.mentions import mentions_recompute
from tests.factories import make_task
from tests.monitors.factories import make_monitor

pytestmark = pytest.mark.django_db


@pytest.fixture
def brand_set(db):
    brand_set = BrandSet.objects.create(name="Hotel brands")
    Brand.objects.create(brand_set=brand_set, name="Ritz", is_ours=True, domains="ritz.com")
    Brand.objects.create(brand_set=brand_set, name="Hilton", domains="hilton.com")
    return brand_set


@pytest.fixture
def monitor(credential, catalog):
    monitor = make_monitor(credential=credential)
    yesterday = timezone.now() - timedelta(days=1)
    for hour, text in ((1, "Ritz, then Hilton."), (2, "Hilton, then Ritz."), (3, "Only Hilton now.")):
        make_task(
            tag=monitor.tag,
            model_name="gpt-4.1",
            user_prompt="What is the best hotel in Paris?",
            answer_text=text,
            created_at=yesterday.replace(hour=hour),
        )
    return monitor


def test_a_member_reads_a_monitor_with_a_brand_set_from_its_page(member_client, monitor, brand_set):
    detail = reverse("monitors:detail", args=[monitor.slug])
    page = member_client.get(detail).content.decode()
    assert "No brand set reads these answers yet." in page
    assert "Hotel brands" in page  # offered in the form

    response = member_client.post(
        reverse("monitors:brand_set_attach", args=[monitor.slug]), {"brand_set": brand_set.pk}
    )

    assert response.status_code == 302 and response["Location"] == detail
    assert BrandSetTag.objects.filter(brand_set=brand_set, tag=monitor.tag).exists()
    again = member_client.post(
        reverse("monitors:brand_set_attach", args=[monitor.slug]), {"brand_set": brand_set.pk}, follow=True
    )
    assert "reads this monitor&#x27;s answers already" in again.content.decode()
    assert BrandSetTag.objects.filter(brand_set=brand_set).count() == 1


def test_the_monitor_page_and_its_tag_page_mark_the_runs_whose_brands_changed(
    member_client, monitor, brand_set
):
    BrandSetTag.objects.create(brand_set=brand_set, tag=monitor.tag)
    mentions_recompute(brand_set_id=brand_set.pk)

    monitor_page = member_client.get(reverse("monitors:detail", args=[monitor.slug])).content.decode()
    tag_page = member_client.get(reverse("history:tag_detail", kwargs={"tag": monitor.tag})).content.decode()

    for html in (monitor_page, tag_page):
        assert "Ritz moved #1 → #2" in html and "Hilton moved #2 → #1" in html
        assert "Ritz disappeared (was #2)" in html
    assert reverse("monitors:visibility", args=[monitor.slug]) in monitor_page


def test_the_monitors_visibility_page_is_its_tags_titled_and_linked_back(member_client, monitor, brand_set):
    BrandSetTag.objects.create(brand_set=brand_set, tag=monitor.tag)
    mentions_recompute(brand_set_id=brand_set.pk)

    response = member_client.get(
        reverse("monitors:visibility", args=[monitor.slug]),
        {
            "period": "custom",
            "date_from": (timezone.localdate() - timedelta(days=3)).isoformat(),
            "date_to": timezone.localdate().isoformat(),
        },
    )

    html = response.content.decode()
    assert response.status_code == 200
    # Named once: "Visibility · Hotels", not "Visibility · Hotels: visibility".
    assert "<title>Visibility · Hotels · LLM Responses</title>" in html
    assert "<h1>Visibility · Hotels</h1>" in html
    assert html.lower().count("hotels: visibility") == 0
    assert f'href="{reverse("monitors:detail", args=[monitor.slug])}"' in html
    assert "Ritz" in html and "Hilton" in html
    assert "Ritz: 66.7%" in html and "Hilton: 100.0%" in html  # Ritz is in 2 of the 3 answers, Hilton in all


def test_the_custom_period_form_of_the_monitors_visibility_page_stays_on_it(
    member_client, monitor, brand_set
):
    BrandSetTag.objects.create(brand_set=brand_set, tag=monitor.tag)
    mentions_recompute(brand_set_id=brand_set.pk)
    url = reverse("monitors:visibility", args=[monitor.slug])

    html = member_client.get(url).content.decode()

    form = re.search(r'<form method="get" class="filters" action="([^"]*)" hx-get="([^"]*)"', html)
    assert form is not None
    assert form.groups() == (url, url)  # "Show" keeps the monitor's title and back link, with or without htmx
    shown = member_client.get(form.group(1), {"set": brand_set.pk, "period": "last_30", "by": "day"})
    assert "<h1>Visibility · Hotels</h1>" in shown.content.decode()


def test_without_a_brand_set_the_monitors_visibility_page_names_the_filters_it_ignored(
    member_client, monitor
):
    url = reverse("monitors:visibility", args=[monitor.slug])

    response = member_client.get(url, {"period": "nope", "date_from": "2026-99-99", "by": "year"})

    html = response.content.decode()
    assert response.status_code == 200
    assert "No brand set reads this tag yet." in html
    assert 'role="alert"' in html and "Some filters were ignored:" in html
    assert "Period “nope”: Select a valid choice. nope is not one of the available choices." in html
    assert "From “2026-99-99”: Enter a valid date." in html
    assert "Over time by “year”: Select a valid choice." in html
    assert "Some filters were ignored:" not in member_client.get(url).content.decode()


def test_a_brand_set_that_does_not_read_the_tag_is_named_and_the_first_one_shown(
    member_client, monitor, brand_set
):
    BrandSetTag.objects.create(brand_set=brand_set, tag=monitor.tag)
    mentions_recompute(brand_set_id=brand_set.pk)
    url = reverse("monitors:visibility", args=[monitor.slug])
    days = {
        "period": "custom",
        "date_from": (timezone.localdate() - timedelta(days=3)).isoformat(),
        "date_to": timezone.localdate().isoformat(),
    }

    response = member_client.get(url, {**days, "set": "999"})

    html = response.content.decode()
    assert response.status_code == 200
    assert 'role="alert"' in html and "Some filters were ignored:" in html
    assert "Brand set “999”: No brand set with this id reads this tag; showing “Hotel brands”." in html
    assert "Ritz: 66.7%" in html  # the first set, over the period asked for
    fine = member_client.get(url, {**days, "set": str(brand_set.pk)}).content.decode()
    assert "Some filters were ignored:" not in fine and "Ritz: 66.7%" in fine


def test_people_without_brand_sets_cannot_attach_one(client, django_user_model, monitor, brand_set):
    client.force_login(django_user_model.objects.create_user(username="nobody"))
    response = client.post(
        reverse("monitors:brand_set_attach", args=[monitor.slug]), {"brand_set": brand_set.pk}
    )
    assert response.status_code == 403
    assert not BrandSetTag.objects.exists()
