"""An answer as the task page renders it (tasks/history/rendering.py: Markdown, raw HTML off, nh3), with the
brand mentions the matcher found highlighted.

As the task page does for cited spans, and with the same helper (`render_marked`), each mention gets two
private-use characters around it in the Markdown before rendering; to markdown-it and nh3 they are letters,
so nothing the model wrote is trusted. Each mention has its own pair (none the answer itself contains), so
one that lands where it cannot become an element (a link's title, a dropped link definition, a code fence's
language) loses its highlight alone. If the markers changed how the answer reads at all (an entity or an
autolink split by one), the answer is shown unhighlighted, exactly as on the task page.
"""

from django.utils.safestring import SafeString

from tasks.history.rendering import render_marked
from tasks.visibility.extraction import Match

MARK_CLASSES = {"mention", "mention-ours", "mention-other"}


def highlight_answer(text: str, matches: list[Match], *, ours: set[int] = frozenset()) -> SafeString:
    """The answer rendered from its Markdown and sanitized, each of `matches` (the matcher's, over this
    text) in a <mark>, ours in a stronger colour."""
    spans = []
    for match in matches:
        kind = "mention-ours" if match.brand_id in ours else "mention-other"
        spans.append((match.start, match.end, f'<mark class="mention {kind}">', "</mark>"))
    return render_marked(text or "", spans, classes={"mark": MARK_CLASSES})
