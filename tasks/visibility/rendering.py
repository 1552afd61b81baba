"""An answer as the task page renders it (tasks/history/rendering.py: Markdown, raw HTML off, nh3), with the
brand mentions the matcher found highlighted.

As the task page does for cited spans, each mention gets two private-use characters around it in the
Markdown before rendering; to markdown-it and nh3 they are letters, so nothing the model wrote is trusted.
Each mention has its own pair (none the answer itself contains), so one that lands where it cannot become
an element (a link's title, a dropped link definition, a code fence's language) loses its highlight alone.
If the markers changed how the answer reads at all (an entity or an autolink split by one), the answer is
shown unhighlighted, exactly as on the task page.
"""

import re

import nh3
from django.utils.safestring import SafeString, mark_safe

from tasks.history.rendering import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, LINK_REL, URL_SCHEMES, render_markdown
from tasks.visibility.extraction import Match

_MARKERS = range(0xF0000, 0xFFFFE)  # Supplementary Private Use Area-A; the answer's own are skipped
_MARKER = re.compile("[\U000f0000-\U000ffffd]")
_IN_A_TAG = re.compile(r"<[^>]*>")
MARK_CLASSES = {"mention", "mention-ours", "mention-other"}


def _marker_pairs(text: str, count: int) -> list[tuple[str, str]]:
    """`count` pairs of marker characters that do not occur in `text`."""
    taken = set(_MARKER.findall(text))
    free = (chr(code) for code in _MARKERS if chr(code) not in taken)
    pairs = []
    for _ in range(count):
        start, end = next(free, None), next(free, None)
        if end is None:
            break
        pairs.append((start, end))
    return pairs


def _rendered(text: str, matches: list[Match], pairs: list[tuple[str, str]]) -> str:
    pieces, at = [], 0
    for match, (start, end) in zip(matches, pairs, strict=False):
        pieces += [text[at : match.start], start, text[match.start : match.end], end]
        at = match.end
    pieces.append(text[at:])
    return str(render_markdown("".join(pieces)))


def _whole_pairs(html: str, pairs: list[tuple[str, str]]) -> list[int]:
    """The indexes of the pairs whose markers both made it into the page's text, once each and in order
    (one pass over the page: an answer may name brands hundreds of times)."""
    places: dict[str, list[int]] = {}
    for found in _MARKER.finditer(html):
        places.setdefault(found.group(), []).append(found.start())
    in_tags = set(_MARKER.findall("".join(_IN_A_TAG.findall(html))))
    whole = []
    for index, (start, end) in enumerate(pairs):
        starts, ends = places.get(start, []), places.get(end, [])
        if len(starts) == len(ends) == 1 and starts[0] < ends[0] and not {start, end} & in_tags:
            whole.append(index)
    return whole


def highlight_answer(text: str, matches: list[Match], *, ours: set[int] = frozenset()) -> SafeString:
    """The answer rendered from its Markdown and sanitized, each of `matches` (the matcher's, over this
    text) in a <mark>, ours in a stronger colour."""
    text = text or ""
    plain = str(render_markdown(text))
    pairs = _marker_pairs(text, len(matches))
    html = _rendered(text, matches, pairs)
    kept = _whole_pairs(html, pairs)
    if len(kept) < len(pairs):  # render again with the mentions that can be highlighted
        matches, pairs = [matches[i] for i in kept], [pairs[i] for i in kept]
        html = _rendered(text, matches, pairs)
        if len(_whole_pairs(html, pairs)) < len(pairs):
            return mark_safe(plain)  # noqa: S308 - sanitized by render_markdown
    markers = {}
    for match, (start, end) in zip(matches, pairs, strict=False):
        kind = "mention-ours" if match.brand_id in ours else "mention-other"
        markers[start], markers[end] = f'<mark class="mention {kind}">', "</mark>"
    if _MARKER.sub(lambda m: "" if m.group() in markers else m.group(), html) != plain:
        return mark_safe(plain)  # noqa: S308 - the markers changed how the answer reads
    marked = _MARKER.sub(lambda m: markers.get(m.group(), m.group()), html)
    final = nh3.clean(  # a mention across Markdown structure (**) still gives well-formed HTML
        marked,
        tags=ALLOWED_TAGS | {"mark"},
        attributes=ALLOWED_ATTRIBUTES,
        allowed_classes={"mark": MARK_CLASSES},
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
        url_relative="pass_through",  # render_markdown denied every relative URL the model wrote
    )
    return mark_safe(final)  # noqa: S308 - every part sanitized by nh3
