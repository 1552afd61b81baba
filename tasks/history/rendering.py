"""Turning what a model wrote into HTML that cannot run script or break the page.

Answers are Markdown, rendered by markdown-it-py with raw HTML disabled (bare http(s) URLs made links by
linkify-it-py), then sanitized by nh3 (ammonia)
with a small allow-list: no script, no event handlers, no style, no images (the CSP would block remote
ones: an image reads as a link to it, named by its alt text), links only to http(s)/mailto with
rel="noopener noreferrer nofollow".

Spans of an answer are highlighted by `render_marked` (cited spans here, brand mentions in
tasks/visibility/rendering.py): two private-use characters around each span in the raw text before rendering,
replaced by elements (<mark>) after sanitizing. The markers are plain characters to markdown-it and nh3, so
nothing the model wrote is ever trusted; the result goes through nh3 once more so that a span crossing
Markdown structure still yields well-formed HTML. Each span has its own pair (none the answer itself
contains), so a span whose markers land where they cannot become an element (a link's URL or title, a code
fence's language) loses its highlight alone; the citations list still quotes each span. If the markers
changed how the answer reads at all (an entity or an autolink split by one), the answer is shown
unhighlighted, exactly as `render_markdown` shows it.
"""

import difflib
import functools
import html
import itertools
import re

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

# Private-use characters dropped from every answer before rendering (the span markers were these once);
# render_marked's markers are others, chosen among those the answer does not contain.
SPAN_START = "\ue000"
SPAN_END = "\ue001"

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "pre", "code",
    "em", "strong", "del", "s", "a", "table", "thead", "tbody", "tr", "th", "td", "sup", "sub",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "ol": {"start"},
    "th": {"colspan", "rowspan"},
    "td": {"colspan", "rowspan"},
}
URL_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "noopener noreferrer nofollow"

# Markdown block syntax a span may start on; the start marker moves past it so a heading stays a heading.
_BLOCK_PREFIX = re.compile(r"[ \t]*(?:#{1,6}[ \t]+|>[ \t]*|[-*+][ \t]+|\d{1,9}[.)][ \t]+)*")

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": True, "typographer": False})
_markdown.enable(["table", "strikethrough", "linkify"])
# Bare URLs become links only with their scheme: "setup.py" or "README.md" would be links to .py and .md
# domains, and "www." links would guess a scheme.
_markdown.linkify.set({"fuzzy_link": False, "fuzzy_email": False})

IMAGE_NAME = "image"  # the link text of an image the model gave no alt text


def _image_as_link(renderer, tokens, idx, options, env) -> str:
    """An image as a link to it, named by its alt text: with images disabled the parser read `![alt](src)`
    as a '!' before a link, and nh3 drops <img>, so the answer read '!alt' or lost the image."""
    token = tokens[idx]
    alt = renderer.renderInlineAsText(token.children or [], options, env) or IMAGE_NAME
    src = html.escape(token.attrGet("src") or "", quote=True)
    return f'<a href="{src}">{html.escape(alt)}</a>'


_markdown.add_render_rule("image", _image_as_link)

ANSWER_HEADING_SHIFT = 2  # an answer sits under its page's h1 and its section's h2: its "#" is an h3


def _shifted_heading(renderer, tokens, idx, options, env) -> str:
    """A heading `env["heading_shift"]` levels down (at most h6), so an answer's '#' is no second h1 of
    its page, larger than the section heading above it."""
    token = tokens[idx]
    shift = (env or {}).get("heading_shift", 0)
    if shift:
        token.tag = f"h{min(int(token.tag[1]) + shift, 6)}"
    return renderer.renderToken(tokens, idx, options, env)


_markdown.add_render_rule("heading_open", _shifted_heading)
_markdown.add_render_rule("heading_close", _shifted_heading)


def sanitize(html_text: str) -> str:
    """nh3 with the answer allow-list; use for any HTML that came, even in part, from the upstream."""
    return nh3.clean(
        html_text,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
        url_relative="deny",
        clean_content_tags={"script", "style"},
    )


def render_markdown(text: str, *, heading_shift: int = 0) -> SafeString:
    """Markdown → sanitized HTML, safe to put in a template; headings `heading_shift` levels down."""
    text = (text or "").replace(SPAN_START, "").replace(SPAN_END, "")
    rendered = _markdown.render(text, {"heading_shift": heading_shift})
    return mark_safe(sanitize(rendered))  # noqa: S308 - sanitized just above


def _valid_spans(text: str, citations: list[dict]) -> list[tuple[int, int, list[int]]]:
    """Merged (start, end, citation numbers) intervals from the citations' indexes, in text order."""
    spans = []
    for number, citation in enumerate(citations or [], start=1):
        if not isinstance(citation, dict):
            continue
        start, end = citation.get("start_index"), citation.get("end_index")
        if not isinstance(start, int) or not isinstance(end, int):
            continue
        start, end = max(start, 0), min(end, len(text))
        if start < end:
            spans.append((start, end, number))
    spans.sort()
    merged: list[tuple[int, int, list[int]]] = []
    for start, end, number in spans:
        if merged and start < merged[-1][1]:
            last_start, last_end, numbers = merged[-1]
            merged[-1] = (last_start, max(last_end, end), [*numbers, number])
        else:
            merged.append((start, end, [number]))
    return merged


Span = tuple[int, int, str, str]  # (start, end, the HTML it opens with, the HTML it closes with)

_MARKERS = range(0xF0000, 0xFFFFE)  # Supplementary Private Use Area-A; the answer's own are skipped
_MARKER = re.compile("[\U000f0000-\U000ffffd]")
_IN_A_TAG = re.compile(r"<[^>]*>")


def _marker_pairs(text: str, count: int) -> list[tuple[str, str]]:
    """Up to `count` pairs of marker characters that do not occur in `text`."""
    taken = set(_MARKER.findall(text))
    free = (chr(code) for code in _MARKERS if chr(code) not in taken)
    pairs = []
    for _ in range(count):
        start, end = next(free, None), next(free, None)
        if end is None:
            break
        pairs.append((start, end))
    return pairs


def _with_markers(text: str, spans: list[Span], pairs: list[tuple[str, str]], heading_shift: int) -> str:
    """The sanitized rendering of `text` with each pair around its span; a span starting on block syntax
    (a heading's #, a list's -) starts after it, so a heading stays a heading. A span overlapping the one
    before gets no markers."""
    pieces, at = [], 0
    for (start, end, _open, _close), (opening, closing) in zip(spans, pairs, strict=False):
        line_start = text.rfind("\n", 0, start) + 1
        prefix = _BLOCK_PREFIX.match(text, line_start)
        if line_start <= start < prefix.end():
            start = min(prefix.end(), end)
        if start < at:
            continue
        pieces += [text[at:start], opening, text[start:end], closing]
        at = end
    pieces.append(text[at:])
    return str(render_markdown("".join(pieces), heading_shift=heading_shift))


def _whole_pairs(html_text: str, pairs: list[tuple[str, str]]) -> list[int]:
    """The indexes of the pairs whose markers both made it into the page's text, once each and in order
    (one pass over the page: an answer may name brands hundreds of times)."""
    places: dict[str, list[int]] = {}
    for found in _MARKER.finditer(html_text):
        places.setdefault(found.group(), []).append(found.start())
    in_tags = set(_MARKER.findall("".join(_IN_A_TAG.findall(html_text))))
    whole = []
    for index, (start, end) in enumerate(pairs):
        starts, ends = places.get(start, []), places.get(end, [])
        if len(starts) == len(ends) == 1 and starts[0] < ends[0] and not {start, end} & in_tags:
            whole.append(index)
    return whole


def _marked_pass(
    text: str, spans: list[Span], pairs: list[tuple[str, str]], heading_shift: int, plain: str
) -> tuple[str, list[int], bool]:
    """One rendering with markers: the HTML, the indexes of the pairs that can become elements, and whether
    the page reads as `plain` once these markers are taken out."""
    html_text = _with_markers(text, spans, pairs, heading_shift)
    ours = {marker for pair in pairs for marker in pair}
    stripped = _MARKER.sub(lambda m: "" if m.group() in ours else m.group(), html_text)
    return html_text, _whole_pairs(html_text, pairs), stripped == plain


_LINK = re.compile(r"<a\b[^>]*>.*?</a>", re.DOTALL)


def _links_kept_whole(
    html_text: str, spans: list[Span], pairs: list[tuple[str, str]], kept: list[int]
) -> tuple[str, list[int]]:
    """A span whose closing HTML is a link (a citation's number) cannot close inside the answer's own
    link: a link in a link splits the outer one. Such a span closes after that link, and opens before it
    if it opened inside it; a span it then encloses is left out."""
    for index in list(kept):
        if index not in kept or "<a" not in spans[index][3]:
            continue
        start_marker, end_marker = pairs[index]
        end_at = html_text.index(end_marker)
        link = next((m for m in _LINK.finditer(html_text) if m.start() < end_at < m.end()), None)
        if link is None:
            continue
        start_at = html_text.index(start_marker)
        opens_at = link.start() if start_at > link.start() else start_at
        inner = html_text[opens_at : link.end()].replace(start_marker, "").replace(end_marker, "")
        enclosed = set(_MARKER.findall(inner))
        kept = [i for i in kept if i == index or not enclosed & set(pairs[i])]
        html_text = html_text[:opens_at] + start_marker + inner + end_marker + html_text[link.end() :]
    return html_text, kept


def render_marked(
    text: str, spans: list[Span], *, classes: dict[str, set[str]], heading_shift: int = 0
) -> SafeString:
    """`text` as `render_markdown` renders it, each span's text (spans in text order, not overlapping)
    between its opening and closing HTML; `classes` are the classes that HTML may carry. A span that cannot
    become an element is left out; if the markers changed how the answer reads, no span is marked."""
    plain = render_markdown(text, heading_shift=heading_shift)
    pairs = _marker_pairs(text, len(spans))
    if not pairs:
        return plain
    html_text, kept, reads_the_same = _marked_pass(text, spans, pairs, heading_shift, plain)
    if not reads_the_same:
        if not kept or len(kept) == len(pairs):
            return plain  # the markers that could become elements are what changed it
        # a marker that cannot be marked (one in a link's URL) may be what changed it: the others alone
        spans, pairs = [spans[i] for i in kept], [pairs[i] for i in kept]
        html_text, kept, reads_the_same = _marked_pass(text, spans, pairs, heading_shift, plain)
        if len(kept) < len(pairs) or not reads_the_same:
            return plain
    html_text, kept = _links_kept_whole(html_text, spans, pairs, kept)
    ours = {marker for pair in pairs for marker in pair}
    elements = dict.fromkeys(ours, "")  # the markers of spans left out read as nothing
    for index in kept:
        (_start, _end, opening, closing), (start_marker, end_marker) = spans[index], pairs[index]
        elements[start_marker], elements[end_marker] = opening, closing
    final = nh3.clean(  # a span across Markdown structure (**) still gives well-formed HTML
        _MARKER.sub(lambda m: elements.get(m.group(), m.group()), html_text),
        tags=ALLOWED_TAGS | {"mark"},
        attributes=ALLOWED_ATTRIBUTES,
        allowed_classes=classes,
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
        url_relative="pass_through",  # render_markdown denied every relative URL the model wrote
    )
    return mark_safe(final)  # noqa: S308 - every part sanitized by nh3


def render_answer(
    text: str, citations: list[dict] | None = None, *, anchor_prefix: str = "cite", citations_page: str = ""
) -> SafeString:
    """The answer as sanitized HTML; cited spans wrapped in <mark>, numbered like the citations list, each
    number a link to its citation: on this page, or on `citations_page` (the task's page, for an answer
    shown elsewhere)."""
    text = (text or "").replace(SPAN_START, "").replace(SPAN_END, "")
    page = html.escape(citations_page)
    spans = []
    for start, end, numbers in _valid_spans(text, citations or []):
        refs = "".join(f'<a href="{page}#{anchor_prefix}-{n}">{n}</a>' for n in numbers)
        spans.append((start, end, '<mark class="cited">', f'</mark><sup class="cite-ref">{refs}</sup>'))
    classes = {"mark": {"cited"}, "sup": {"cite-ref"}}
    return render_marked(text, spans, classes=classes, heading_shift=ANSWER_HEADING_SHIFT)


def cited_text(text: str, citation: dict) -> str:
    """The span a citation points at (plain text, to be escaped by the template), or its `text`."""
    start, end = citation.get("start_index"), citation.get("end_index")
    if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text or ""):
        return text[start:end]
    return str(citation.get("text") or "")


def cited_html(text: str, citation: dict, *, limit: int = 400) -> SafeString:
    """The cited span as it reads in the answer: its Markdown rendered inline (links, emphasis, code) and
    sanitized, block syntax at the start of its lines (a heading's #, a list's -) dropped, since a quote
    is a piece of a paragraph; cut at `limit` characters of source."""
    span = cited_text(text, citation).replace(SPAN_START, "").replace(SPAN_END, "")
    if len(span) > limit:
        span = span[:limit].rstrip() + "…"
    lines = [line[_BLOCK_PREFIX.match(line).end() :] for line in span.splitlines()]
    return mark_safe(sanitize(_markdown.renderInline("\n".join(lines)).strip()))  # noqa: S308 - sanitized


# --- Diffs of answers -------------------------------------------------------------------------------

_TOKEN = re.compile(r"\w+\s*|[^\w\s]\s*|\s+")  # a word with the space after it
_BREAK_AFTER = {"paragraph_close", "heading_close", "tr_close", "hr", "fence", "code_block"}

Token = tuple[str, str]  # (a word with the space after it, the http(s) link it is part of or "")


def _link(href: str | None) -> str:
    href = (href or "").strip()
    return href if href.lower().startswith(("https://", "http://")) else ""


def _plain_runs(text: str) -> list[Token]:
    """An answer as it reads once rendered: its text in (text, link) runs, each block on its own line.
    Markdown syntax (link targets, emphasis markers, list bullets, table pipes) is not text."""
    runs: list[Token] = []
    for token in _markdown.parse(text or ""):
        if token.type == "inline":
            href = ""
            for child in token.children or []:
                if child.type == "link_open":
                    href = _link(child.attrGet("href"))
                elif child.type == "link_close":
                    href = ""
                elif child.type in ("text", "code_inline"):
                    runs.append((child.content, href))
                elif child.type == "image":  # rendered as a link named by its alt text
                    runs.append((child.content or IMAGE_NAME, _link(child.attrGet("src"))))
                elif child.type in ("softbreak", "hardbreak"):
                    runs.append(("\n", ""))
        elif token.type in ("fence", "code_block"):
            runs.append((token.content, ""))
        elif token.type == "list_item_open":
            runs.append(("• ", ""))
        elif token.type in ("th_close", "td_close"):
            runs.append((" ", ""))
        if token.type in _BREAK_AFTER:
            runs.append(("\n", ""))
    return runs


@functools.lru_cache(maxsize=2)
def _lines(text: str) -> tuple[tuple[Token, ...], ...]:
    """The rendered text's words, each with its link, cut into lines.

    A tag page diffs each run against the one before: the last two answers' lines are kept, so each answer
    is parsed once per page rather than twice (and not kept across pages).
    """
    lines: list[tuple[Token, ...]] = []
    line: list[Token] = []
    for run, href in _plain_runs(text):
        for word in _TOKEN.findall(run):
            line.append((word, href))
            if word.endswith("\n"):
                lines.append(tuple(line))
                line = []
    if line:
        lines.append(tuple(line))
    return tuple(lines)


def _tokens_html(tokens: list[Token]) -> str:
    """Escaped words; consecutive words of one link inside one <a>."""
    out = []
    for href, group in itertools.groupby(tokens, key=lambda token: token[1]):
        words = html.escape("".join(word for word, _ in group))
        if href:
            out.append(f'<a href="{html.escape(href, quote=True)}" rel="{LINK_REL}">{words}</a>')
        else:
            out.append(words)
    return "".join(out)


def word_diff(before: str, after: str) -> tuple[SafeString, float]:
    """A word-level diff of two answers' rendered text as escaped HTML with <del>/<ins>, and their
    similarity 0–1.

    The answers are Markdown: what is compared is the text a reader sees, so a changed link reads as
    its text changing (kept as a link), not as two URLs spliced into "www.reutersbbc.com". Lines are
    matched first and words only inside the blocks of lines that changed: re-runs of a prompt share
    most of their lines, and a word-level match over a whole answer is what made tag pages slow.
    """
    a_lines, b_lines = _lines(before), _lines(after)
    chunks: list[list[list[Token]]] = []  # (removed, added, unchanged)
    matched = total = 0
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a_lines, b_lines, autojunk=False).get_opcodes():
        a = [token for line in a_lines[i1:i2] for token in line]
        b = [token for line in b_lines[j1:j2] for token in line]
        total += len(a) + len(b)
        if op == "equal":
            _add_chunk(chunks, "equal", a, b)
            matched += 2 * len(a)
            continue
        words = difflib.SequenceMatcher(None, a, b)
        for word_op, w1, w2, v1, v2 in words.get_opcodes():
            _add_chunk(chunks, word_op, a[w1:w2], b[v1:v2])
            if word_op == "equal":
                matched += 2 * (w2 - w1)
    out = []
    for removed, added, same in chunks:
        if removed:
            out.append(f"<del>{_tokens_html(removed)}</del>")
        if added:
            out.append(f"<ins>{_tokens_html(added)}</ins>")
        out.append(_tokens_html(same))
    similarity = matched / total if total else 1.0
    return mark_safe("".join(out)), similarity  # noqa: S308 - every word escaped, links checked


def _add_chunk(chunks: list[list[list[Token]]], op: str, a: list[Token], b: list[Token]) -> None:
    """Append a diff piece; a whitespace-only match between two changes joins them, so "A B" -> "C D"
    reads as one replacement instead of four."""
    if op == "equal":
        if chunks and not chunks[-1][0] and not chunks[-1][1]:
            chunks[-1][2] += a
        else:
            chunks.append([[], [], list(a)])
    elif chunks and not chunks[-1][2] and (chunks[-1][0] or chunks[-1][1]):
        chunks[-1][0] += a
        chunks[-1][1] += b
    elif len(chunks) >= 2 and _is_space(chunks[-1][2]) and not chunks[-2][2]:
        space = chunks.pop()[2]
        chunks[-1][0] += space + a
        chunks[-1][1] += space + b
    else:
        chunks.append([list(a), list(b), []])


def _is_space(tokens: list[Token]) -> bool:
    return "".join(word for word, _ in tokens).isspace()
