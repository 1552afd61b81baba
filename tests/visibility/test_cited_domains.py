"""The citation share's counts (our domains, competitors', others) open the answers that cite them."""

import html as html_lib
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from tasks.visibility.mentions import mentions_recompute
from tests.factories import make_task
from tests.visibility.conftest import ANSWERS, CITATIONS, at

pytestmark = pytest.mark.django_db


@pytest.fixture
def four(brand_set):
    """The four sample answers, one each, today: our domains cited in answers 1 and 4, a competitor's in
    answer 2, other domains in answers 1 and 4, nothing in answer 3."""
    today = timezone.localdate()
    tasks = [
        make_task(tag="parks", answer_text=text, citations=cites, created_at=at(today, 1 + i))
        for i, (text, cites) in enumerate(zip(ANSWERS, CITATIONS, strict=True))
    ]
    mentions_recompute(brand_set_id=brand_set.pk)
    return tasks


def _shown_tasks(page: str) -> list[str]:
    return re.findall(r'<article class="card answer" data-task="([^"]+)"', page)


@pytest.mark.parametrize(
    ("group", "citations", "heading", "cited_in"),
    [
        ("ours", 2, "2 answers citing our domains", [3, 0]),
        ("competitors", 1, "1 answer citing competitors' domains", [1]),
        ("others", 2, "2 answers citing domains of no brand", [3, 0]),
    ],
)
def test_each_cited_domains_count_opens_the_answers_citing_them(
    client, member_user, brand_set, four, group, citations, heading, cited_in
):
    client.force_login(member_user)
    report = client.get(reverse("visibility:set_page", args=[brand_set.pk]), {"period": "last_7"})
    row = re.search(rf'<tr data-group="{group}">(.*?)</tr>', report.content.decode(), re.S)[1]
    link = re.search(r'<a href="([^"]+)" data-figure="cited-domains">(\d+)</a>', row)
    assert link is not None, row
    assert int(link[2]) == citations

    answers = client.get(html_lib.unescape(link[1]))

    page = answers.content.decode()
    assert answers.status_code == 200
    assert re.search(r"<h1>(.*?)</h1>", page)[1] == heading
    assert _shown_tasks(page) == [str(four[i].pk) for i in cited_in]
    assert "Some filters were ignored:" not in page


def test_the_cited_domains_links_of_a_tag_page_keep_to_the_tag(client, member_user, brand_set, four):
    make_task(tag="elsewhere", answer_text="Acme", citations=CITATIONS[0], created_at=timezone.now())
    brand_set.tag_links.create(tag="elsewhere")
    mentions_recompute(brand_set_id=brand_set.pk)
    client.force_login(member_user)

    report = client.get(reverse("visibility:tag_page", kwargs={"tag": "parks"}), {"period": "last_7"})

    row = re.search(r'<tr data-group="ours">(.*?)</tr>', report.content.decode(), re.S)[1]
    url = html_lib.unescape(re.search(r'<a href="([^"]+)"', row)[1])
    assert "tag=parks" in url
    assert _shown_tasks(client.get(url).content.decode()) == [str(four[3].pk), str(four[0].pk)]


@pytest.mark.parametrize(
    "query",
    [
        {"figure": "cited_others", "brand": "1"},
        {"figure": "cited_<script>"},
        {"figure": ["cited_ours", "cited_others"], "brand": ["x", "99999999999999999999999"]},
        {"figure": "cited_ours'\"><svg onload=alert(1)>", "page": "-1"},
    ],
)
def test_hostile_cited_domains_queries_are_named_not_a_500(client, member_user, brand_set, four, query):
    client.force_login(member_user)

    response = client.get(reverse("visibility:answers", args=[brand_set.pk]), query)

    page = response.content.decode()
    assert response.status_code == 200
    assert "Some filters were ignored:" in page
    assert "<script>" not in page.split("<main", 1)[1] and "<svg" not in page


def test_a_brand_beside_a_cited_domains_figure_is_named_and_not_used(client, member_user, brand_set, four):
    client.force_login(member_user)
    globex = brand_set.brands.get(name="Globex")

    page = client.get(
        reverse("visibility:answers", args=[brand_set.pk]), {"figure": "cited_ours", "brand": globex.pk}
    ).content.decode()

    assert re.search(r"<h1>(.*?)</h1>", page)[1] == "2 answers citing our domains"
    assert (
        f"Brand “{globex.pk}”: This figure is not about one brand; showing the answers citing our domains."
        in page
    )
