"""The answers behind a figure: each answer rendered from its Markdown as the task page renders it, the set's
brand mentions highlighted, nothing the model wrote trusted."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from tasks.history.rendering import render_markdown
from tasks.visibility.mentions import mentions_recompute
from tests.factories import make_task

pytestmark = pytest.mark.django_db


def _answers_html(client, brand_set, text: str) -> str:
    """The rendered answer of one task whose answer is `text`, on the set's answers page."""
    task = make_task(tag="parks", answer_text=text, created_at=timezone.now())
    mentions_recompute(brand_set_id=brand_set.pk)
    response = client.get(reverse("visibility:answers", args=[brand_set.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    return re.search(
        rf'data-task="{task.pk}">.*?<div class="answer-body">(.*?)</div>\n</article>', html, re.S
    )[1]


def _without_marks(html: str) -> str:
    return re.sub(r"</?mark[^>]*>", "", html)


@pytest.fixture
def logged_in(client, member_user):
    client.force_login(member_user)
    return client


def test_an_answer_reads_as_formatted_text_with_its_mentions_highlighted(logged_in, brand_set):
    text = (
        "## Best parks\n\n**Acme** leads, see [Globex](https://globex.com/parks).\n\n- Initech\n- `Umbrella`"
    )

    html = _answers_html(logged_in, brand_set, text)

    assert "**" not in html and "##" not in html and "](" not in html
    assert "<h2>Best parks</h2>" in html
    assert '<strong><mark class="mention mention-ours">Acme</mark></strong>' in html
    assert (
        '<a href="https://globex.com/parks" rel="noopener noreferrer nofollow">'
        '<mark class="mention mention-other">Globex</mark></a>'
    ) in html
    assert '<li><mark class="mention mention-other">Initech</mark></li>' in html
    assert '<code><mark class="mention mention-other">Umbrella</mark></code>' in html
    assert _without_marks(html) == render_markdown(text)  # the task page's rendering, marks aside


@pytest.mark.parametrize(
    ("text", "marks"),
    [
        ("<script>alert('Acme')</script> Acme", 2),
        ("[Acme](javascript:alert(1)) and [x](JaVaScRiPt:alert(1)) Acme", 2),
        ('<a href="https://evil.example" onclick="alert(1)">Acme</a> <img src=x onerror=alert(1)>', 1),
        ("Acme <iframe src=https://evil.example></iframe>\n\n<div style=\"position:fixed\">Globex</div>", 2),
        # the mentions in a link's title and in a link definition cannot be marked; the others still are
        ("[Acme](https://acme.com \"Acme <b>x</b>\") and [Globex][1]\n\n[1]: https://globex.com 'Globex'", 2),
        ("```Acme\nAcme in code\n```\n\nAT&amp;T and Acme &#60;script&#62;", 2),
        ("\U000f0000Acme\U000f0001 and \ue000Globex\ue001 with stray markers", 2),
        # a marker would split the autolink: the answer is shown as the task page shows it, unmarked
        ("Call <mailto:parks@acme.com> or <https://acme.com/Acme> about Acme", 0),
    ],
    ids=["script", "javascript links", "raw html", "iframe and style", "link titles", "fence and entities",
         "private-use characters", "autolinks"],
)  # fmt: skip
def test_a_hostile_answer_renders_as_safely_as_on_the_task_page(logged_in, brand_set, text, marks):
    html = _answers_html(logged_in, brand_set, text)

    assert _without_marks(html) == render_markdown(text)
    assert not re.search(r"<(script|img|iframe|div|style)\b", html)
    assert not re.search(
        r"<[^>]*(\son\w+=|href=\"(?!https?:|mailto:))", html, re.I
    )  # no handler, no script URL
    assert len(re.findall(r"<mark[^>]*>", html)) == marks
    for tag in re.findall(r"<mark[^>]*>", html):
        assert tag in ('<mark class="mention mention-ours">', '<mark class="mention mention-other">')


def test_a_mention_across_emphasis_is_highlighted_in_well_formed_html(logged_in, brand_set):
    brand = brand_set.brands.get(name="Acme")
    brand.aliases = "re:acme \\*\\*parks"
    brand.save()

    html = _answers_html(logged_in, brand_set, "Visit Acme **Parks** today.")

    assert _without_marks(html) == render_markdown("Visit Acme **Parks** today.")
    assert html.count("<mark") == html.count("</mark>") >= 1
    assert html.count("<strong>") == html.count("</strong>")
    assert "Acme" in re.search(r"<mark[^>]*>(.*?)</mark>", html)[1]
