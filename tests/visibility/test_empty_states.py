"""A brand set that cannot have figures yet (no tag to read, no brand to find) says why on its page, instead
of a page of zeros."""

import re

import pytest
from django.urls import reverse

from tasks.models import Brand, BrandSet, BrandSetTag
from tasks.visibility.mentions import mentions_recompute

pytestmark = pytest.mark.django_db


def _notice(page: str) -> str:
    found = re.search(r'<p class="notice" role="status" data-empty-set>(.*?)</p>', page, re.S)
    return re.sub(r"<[^>]+>", "", found[1]) if found else ""


def test_a_set_reading_no_tag_says_it_has_no_answers_and_where_to_add_tags(client, member_user):
    brand_set = BrandSet.objects.create(name="New set")
    Brand.objects.create(brand_set=brand_set, name="Acme", is_ours=True)
    client.force_login(member_user)

    page = client.get(reverse("visibility:set_page", args=[brand_set.pk])).content.decode()

    assert _notice(page) == (
        "This set reads no tag yet, so it has no answers: add the tags whose answers it reads "
        "(a monitor's tasks carry its tag) on its Edit page."
    )
    assert f'href="{reverse("visibility:set_edit", args=[brand_set.pk])}"' in page.split("data-empty-set")[1]


def test_a_set_with_no_brand_says_so_and_where_to_add_them(client, member_user, answers):
    brand_set = BrandSet.objects.create(name="No brands")
    BrandSetTag.objects.create(brand_set=brand_set, tag="parks")
    client.force_login(member_user)

    set_page = client.get(reverse("visibility:set_page", args=[brand_set.pk])).content.decode()
    tag_page = client.get(
        reverse("visibility:tag_page", kwargs={"tag": "parks"}), {"set": brand_set.pk}
    ).content.decode()

    expected = (
        "This set has no brand yet, so no answer mentions one: "
        "add our brands and competitors on its Edit page."
    )
    assert _notice(set_page) == expected
    assert _notice(tag_page) == expected


def test_a_set_with_tags_and_brands_says_nothing_of_it(client, member_user, brand_set, answers):
    client.force_login(member_user)

    page = client.get(reverse("visibility:set_page", args=[brand_set.pk])).content.decode()

    assert "data-empty-set" not in page


def test_the_test_page_of_a_set_with_no_brand_says_so_instead_of_an_empty_table(client, member_user):
    brand_set = BrandSet.objects.create(name="No brands")
    client.force_login(member_user)
    url = reverse("visibility:set_test", args=[brand_set.pk])

    page = client.get(url).content.decode()
    result = client.post(url, {"text": "Acme leads."}, headers={"HX-Request": "true"}).content.decode()

    for html in (page, result):
        assert _notice(html) == (
            "This set has no brand yet, so it finds nothing: add our brands and competitors on its Edit page."
        )
    assert "<table" not in result


def test_a_set_whose_answers_are_still_being_read_says_so_until_they_are(client, member_user, answers):
    brand_set = BrandSet.objects.create(name="Fresh")
    Brand.objects.create(brand_set=brand_set, name="Acme", is_ours=True)
    BrandSetTag.objects.create(brand_set=brand_set, tag="parks")  # its first reading still queued
    client.force_login(member_user)
    url = reverse("visibility:set_page", args=[brand_set.pk])

    before = client.get(url).content.decode()
    mentions_recompute(brand_set_id=brand_set.pk)  # what the worker does
    after = client.get(url).content.decode()

    assert _notice(before) == (
        "This set's answers are being read in the background: "
        "its figures appear once they are (reload in a moment)."
    )
    assert "data-empty-set" not in after and "<h1>" in after
