"""The tags index's per-row links and times, built once per page instead of per cell in the template.

At 1 M tasks the index lists ~400 tags; `{% url %}` twice and `|date` four times per row cost more than
its queries (docs/performance.md, Visibility pages). `tag_page_url` gives exactly what
`reverse("history:tag_detail", kwargs={"tag": tag})` gives (tests/history/test_tag_month.py checks it on
odd tags) with one reverse() per page.
"""

from urllib.parse import quote

from django.urls import reverse
from django.utils import timezone
from django.utils.http import RFC3986_SUBDELIMS

from tasks.history.converters import TagConverter
from tasks.history.selectors import IN_PROGRESS

_PLACEHOLDER = "tag"
_SAFE = RFC3986_SUBDELIMS + "/~:@"  # what reverse() leaves unquoted


def tag_page_urls():
    """A function tag → its page's URL, from one reverse()."""
    sample = reverse("history:tag_detail", kwargs={"tag": _PLACEHOLDER})
    prefix, suffix = sample.rsplit(_PLACEHOLDER, 1)
    converter = TagConverter()

    def url(tag: str) -> str:
        return prefix + quote(converter.to_url(tag), safe=_SAFE) + suffix

    return url


def _when(value) -> dict:
    local = timezone.localtime(value)
    return {"iso": local.isoformat(), "text": local.strftime("%Y-%m-%d %H:%M")}


def with_links(rows: list[dict]) -> list[dict]:
    """Each tags-index row with `url`, `tasks_url`, `active_url` (its tasks in progress), `first` and
    `last` ({"iso", "text"}) added."""
    page_url = tag_page_urls()
    task_list = reverse("history:task_list")
    for row in rows:
        row["url"] = page_url(row["tag"])
        row["tasks_url"] = f"{task_list}?tag={quote(row['tag'], safe='/')}"  # as |urlencode quotes it
        row["active_url"] = f"{row['tasks_url']}&status={IN_PROGRESS}"
        row["first"], row["last"] = _when(row["first_run"]), _when(row["last_run"])
    return rows
