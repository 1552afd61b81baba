"""Nothing a model writes can run script or break the page; cited spans are highlighted safely."""

import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from tasks.history.rendering import cited_html, cited_text, render_answer, render_markdown, word_diff
from tests.factories import make_task

ATTACKS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    "<iframe src=https://evil.example></iframe>",
    '<svg onload="alert(1)"></svg>',
    "<style>body{display:none}</style>",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    '<div style="position:fixed;inset:0">cover</div>',
    "![img](https://tracker.example/pixel.png)",
    "</div></main><form action=https://evil.example>",
]


SAFE_TAGS = {
    *("p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "pre", "code"),
    *("em", "strong", "del", "s", "a", "table", "thead", "tbody", "tr", "th", "td", "sup", "sub", "mark"),
}


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def _assert_inert(html: str) -> None:
    """Only allow-listed elements, no event handlers or styles, links only to http(s)/mailto or #cite-n.
    Model text shown escaped (&lt;script&gt;) is fine: it is text, not an element."""
    parser = _Elements()
    parser.feed(html)
    for tag, attrs in parser.found:
        assert tag in SAFE_TAGS, (tag, html)
        assert not any(name.startswith("on") or name == "style" for name in attrs), (tag, attrs)
        href = attrs.get("href")
        if href is not None:
            assert re.match(r"(https?:|mailto:|#cite-\d+$)", href), href


@pytest.mark.parametrize("attack", ATTACKS)
def test_markdown_rendering_neutralises_attacks(attack):
    _assert_inert(render_markdown(f"Hello\n\n{attack}\n\nbye"))


@pytest.mark.parametrize("attack", ATTACKS)
def test_highlighting_cannot_be_used_to_smuggle_markup(attack):
    text = f"Intro {attack} outro"
    citations = [{"start_index": 0, "end_index": len(text)}, {"start_index": 3, "end_index": 9}]

    _assert_inert(render_answer(text, citations))


def test_markdown_features_still_render():
    html = render_markdown(
        "# Title\n\n**bold** and *it* and `code`\n\n- a\n- b\n\n| x | y |\n|---|---|\n| 1 | 2 |"
    )

    for tag in ("<h1>", "<strong>bold</strong>", "<em>it</em>", "<code>code</code>", "<li>a</li>", "<table>"):
        assert tag in html


def test_links_get_safe_rel_and_relative_links_are_dropped():
    html = render_markdown("[ok](https://example.com/x) and [local](/admin/)")

    assert 'href="https://example.com/x"' in html
    assert 'rel="noopener noreferrer nofollow"' in html
    assert "/admin/" not in html


def test_a_bare_url_the_model_wrote_is_a_link_and_a_file_name_is_not():
    """Answers often give their sources as bare URLs: they read as text one could not click. Only URLs
    with their scheme become links (“setup.py”, “README.md” and “www.…” stay text), sanitized as any."""
    text = "Sources: https://example.com/a_b?x=1. See setup.py, README.md, javascript:alert(1)."

    html = render_answer(text)

    assert re.findall(r"<a [^>]*>", html) == [
        '<a href="https://example.com/a_b?x=1" rel="noopener noreferrer nofollow">'
    ]
    assert ">https://example.com/a_b?x=1</a>. See setup.py, README.md, javascript:alert(1).</p>" in html


def test_an_image_the_model_wrote_reads_as_a_link_to_it_without_a_stray_bang():
    """Images are not shown (the CSP blocks remote ones); the answer read '!chart' before a link."""
    html = render_markdown(
        "Visitors: ![Visitors per park](https://example.com/chart.png) and ![](https://example.com/x.png)."
    )

    text = re.sub(r"<[^>]+>", "", html)
    assert "!" not in text
    assert ">Visitors per park</a>" in html
    assert 'href="https://example.com/chart.png"' in html
    assert ">image</a>" in html  # an image without alt text is still named
    assert "<img" not in html
    diff, _ = word_diff(
        "See ![Chart A](https://a.example/a.png).", "See ![Chart B](https://a.example/b.png)."
    )
    assert "!" not in re.sub(r"<[^>]+>", "", diff)
    assert '<ins><a href="https://a.example/b.png"' in diff


def test_cited_span_is_highlighted_and_numbered():
    text = "Parks are big ([grandview.com](https://grandview.com/x)). Next sentence."
    start, end = text.index("(["), text.index(")).") + 2
    html = render_answer(text, [{"start_index": start, "end_index": end}])

    assert '<mark class="cited">(<a href="https://grandview.com/x"' in html
    assert '</mark><sup class="cite-ref"><a href="#cite-1"' in html
    assert html.count("<mark") == 1


def test_a_span_starting_at_a_heading_keeps_the_heading():
    text = "## Summary\n\nBody."

    html = render_answer(text, [{"start_index": 0, "end_index": 10}])

    assert "<h4><mark" in html  # an answer's "##" sits under its section's h2 (ANSWER_HEADING_SHIFT)


def test_overlapping_and_invalid_spans_do_not_break_the_answer():
    text = "One two three four five."
    citations = [
        {"start_index": 0, "end_index": 7},
        {"start_index": 4, "end_index": 13},
        {"start_index": 50, "end_index": 80},
        {"start_index": 9, "end_index": 2},
        {"start_index": "3", "end_index": None},
        "not a dict",
    ]

    html = render_answer(text, citations)

    assert html.count("<mark") == 1
    assert 'href="#cite-1"' in html and 'href="#cite-2"' in html
    assert re.sub(r"<sup.*?</sup>|<[^>]+>", "", html).strip() == text


def test_a_span_inside_a_link_url_falls_back_to_plain_rendering():
    text = "See [site](https://example.com/long/path)."
    start = text.index("long")

    html = render_answer(text, [{"start_index": start, "end_index": start + 4}])

    assert "<mark" not in html
    assert 'href="https://example.com/long/path"' in html


def test_a_span_inside_a_link_url_loses_only_its_own_highlight():
    """The other cited spans of that answer keep their highlight and their numbers."""
    text = "See [site](https://example.com/long/path). Parks are big. Lakes are deep."
    inside, parks, lakes = text.index("long"), text.index("Parks"), text.index("Lakes")
    citations = [
        {"start_index": parks, "end_index": parks + 13},
        {"start_index": inside, "end_index": inside + 4},
        {"start_index": lakes, "end_index": lakes + 15},
    ]

    html = render_answer(text, citations)

    assert 'href="https://example.com/long/path"' in html
    assert re.findall(r'<mark class="cited">(.*?)</mark>', html) == ["Parks are big", "Lakes are deep."]
    assert re.findall(r'href="#cite-(\d+)"', html) == ["1", "3"]


@pytest.mark.parametrize("starts_at", ["See", "the Eiffel"])
def test_a_span_ending_inside_a_links_text_keeps_the_link_whole(starts_at):
    """The citation's number is a link: inside the answer's link it split that link in two (its end lost
    its link, the number left an empty <sup>). The highlight now runs to the link's end, the number
    after it."""
    text = "See [the Eiffel tower page](https://example.com/eiffel) for more."
    start, end = text.index(starts_at), text.index("tower")

    html = render_answer(text, [{"start_index": start, "end_index": end}])

    links = re.findall(r'<a href="https://example.com/eiffel"[^>]*>(.*?)</a>', html)
    assert [re.sub(r"<[^>]+>", "", link) for link in links] == ["the Eiffel tower page"]
    assert re.search(r'</a></mark><sup class="cite-ref"><a href="#cite-1"[^>]*>1</a></sup> for more', html)
    assert "<mark" in html and '<sup class="cite-ref"></sup>' not in html


def test_a_span_that_would_change_how_the_answer_reads_is_not_highlighted():
    """A marker inside '&amp;' would show the entity as text: the answer reads as it does unhighlighted."""
    text = "AT&amp;T leads the market. Parks are big."
    start = text.index("amp;")

    html = render_answer(text, [{"start_index": start, "end_index": start + 14}])

    assert "<mark" not in html
    assert "AT&amp;T leads" in html and "amp;amp;" not in html
    assert html == render_markdown(text)


def test_model_written_markers_are_ignored():
    html = render_answer("a\ue000b\ue001c", [{"start_index": 0, "end_index": 1}])

    assert "\ue000" not in html and "\ue001" not in html


def test_cited_text_is_the_span_or_the_annotation_text():
    assert cited_text("Hello world", {"start_index": 6, "end_index": 11}) == "world"
    assert cited_text("Hello", {"start_index": 3, "end_index": 99, "text": "fallback"}) == "fallback"


def test_word_diff_escapes_model_text():
    html, similarity = word_diff("safe <b>old</b>", "safe <script>alert(1)</script>")

    assert "<script>" not in html and "<b>" not in html
    assert "&lt;" in html
    assert 0 < similarity < 1


@pytest.mark.django_db
def test_task_page_blocks_script_in_answers_and_citation_titles(member_client):
    task = make_task(
        answer_text="Hi <script>alert('answer')</script> [x](javascript:alert(2))",
        reasoning_text="<img src=x onerror=alert(3)>",
        fan_out_queries=["<script>alert(4)</script>"],
        citations=[
            {
                "title": "<script>alert('title')</script><img src=x onerror=alert(5)>",
                "url": "javascript:alert(6)",
                "domain": "<b>evil</b>",
                "start_index": 0,
                "end_index": 2,
                "text": "<script>alert(7)</script>",
            }
        ],
        user_prompt="<script>alert('prompt')</script>",
        tag="<script>alert('tag')</script>",
    )

    response = member_client.get(reverse("history:task_detail", args=[task.pk]))
    page = response.content.decode()

    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "onerror=alert" not in page.replace("onerror=alert(5)&gt;", "").replace("onerror=alert(3)&gt;", "")
    assert 'href="javascript:' not in page
    assert "&lt;script&gt;alert(&#x27;title&#x27;)&lt;/script&gt;" in page


# --- Citation quotes and answer diffs read as rendered text ------------------------------------------


def test_a_citation_quote_is_rendered_markdown_not_raw_syntax():
    answer = (
        "## Parks\n\nVisitors: **Disneyland** leads, per [Reuters](https://www.reuters.com/x) <b>now</b>."
    )
    start = answer.index("**Disneyland")
    citation = {"start_index": start, "end_index": len(answer)}

    quote = cited_html(answer, citation)

    assert quote.startswith("<strong>Disneyland</strong> leads")
    assert '<a href="https://www.reuters.com/x" rel="noopener noreferrer nofollow">Reuters</a>' in quote
    assert "**" not in quote and "](" not in quote
    assert "&lt;b&gt;now&lt;/b&gt;" in quote  # the model's HTML stays text


def test_a_citation_quote_drops_block_syntax_and_never_links_unsafe_urls():
    answer = "# Heading cited\n- [x](javascript:alert(1)) item"

    quote = cited_html(answer, {"start_index": 0, "end_index": len(answer)})

    assert "#" not in quote and "<h1>" not in quote
    assert "<a" not in quote  # markdown-it leaves a javascript: link as its text


def test_the_answer_diff_compares_rendered_text_and_keeps_links_as_links():
    before = "Top source: [Reuters](https://www.reuters.com/parks) says **Disneyland** leads."
    after = "Top source: [BBC](https://www.bbc.com/parks) says **Disneyland** leads."

    diff, similarity = word_diff(before, after)

    assert (
        '<del><a href="https://www.reuters.com/parks" rel="noopener noreferrer nofollow">Reuters</a></del>'
        in diff
    )
    assert '<ins><a href="https://www.bbc.com/parks" rel="noopener noreferrer nofollow">BBC</a></ins>' in diff
    assert "www.reutersbbc" not in re.sub(r"<[^>]+>", "", diff)
    assert "**" not in diff and "](" not in diff
    assert "Disneyland leads." in diff
    assert 0.5 < similarity < 1


def test_the_answer_diff_never_links_an_unsafe_url():
    diff, _ = word_diff("See [a](https://a.example).", "See [a](javascript:alert(1)).")

    assert 'href="javascript' not in diff
    assert '<del><a href="https://a.example"' in diff
