"""The visibility report's tables (brands, over time, by provider and model), built as strings with the HTML
their template wrote.

Over 90 days by day the over-time table alone has ~1,000 linked cells: through the template (a `BrandLine`
lookup, two `|pct` and a URL per cell) rendering took longer than the page's queries (issue 16,
docs/performance.md). Here each slice's link is escaped once and each cell is one f-string.
tests/visibility/test_tables.py compares the output with the template it replaces.
"""

from html import escape

from django.utils.formats import localize
from django.utils.safestring import SafeString

from tasks.templatetags.spend_format import money
from tasks.visibility.charts import percent_text
from tasks.visibility.selectors import SliceLinks, VisibilityReport

_ROW_END = "</tr>\n      "
_TABLE_END = "\n      </tbody>\n    </table>"


def _n(value) -> str:
    """`{{ number }}` in a template: localized (a number's text needs no escaping)."""
    return escape(localize(value))


def _url(value) -> str:
    """`{{ url }}`: escaped; a report of a queryset scope has none, which a template showed as "None"."""
    return "None" if value is None else escape(value)


def _brand_links(links: SliceLinks | None) -> str:
    """The escaped start of a slice's "mentioned" URL, its brand's id to be appended."""
    if links is None or links.base is None:
        return ""
    return escape(f"{links.head}mentioned{links.tail}&brand=")


def _brand_url(prefix: str, brand_id: int) -> str:
    return f"{prefix}{brand_id}" if prefix else "None"


def _percent(part: int, whole: int) -> str:
    """`|pct` of BrandLine's ratio part / whole, in integers: tenths of a percent rounded half to even,
    as Decimal's format rounds (its 28-digit quotient cannot move a count's ratio across a half)."""
    if not whole:
        return "–"
    tenths, rest = divmod(part * 1000, whole)
    if rest * 2 > whole or (rest * 2 == whole and tenths % 2):
        tenths += 1
    return f"{tenths // 10}.{tenths % 10}%"


def brands_table(report: VisibilityReport, *, show_cost: bool) -> SafeString:
    cost_head = '<th scope="col" class="num">Cost per answer</th>' if show_cost else ""
    out = [
        '<table class="spend-table" data-table="brands">\n'
        '      <thead><tr><th scope="col">Brand</th><th scope="col" class="num">Visibility</th>'
        '<th scope="col" class="num">Mentioned in</th><th scope="col" class="num">Share of voice</th>'
        '<th scope="col" class="num">Avg. position</th><th scope="col" class="num">First paragraph</th>'
        '<th scope="col" class="num">Cited in</th><th scope="col" class="num">Citation share</th>'
        f'{cost_head}<th scope="col" class="num">Previous</th></tr></thead>\n'
        "      <tbody>\n"
        "      "
    ]
    for line in report.lines:
        name = escape(line.brand.name)
        badge = ' <span class="badge">ours</span>' if line.brand.is_ours else ""
        url = _url(line.url)
        position = line.average_position
        position_cell = "–" if position is None else f'<a href="{url}">{_n(position)}</a>'
        cost = f'<td class="num">{money(line.cost_per_answer)}</td>' if show_cost else ""
        previous = line.previous
        out.append(
            "\n"
            f'      <tr data-brand="{name}">\n'
            f'        <th scope="row">{name}{badge}</th>\n'
            f'        <td class="num"><a href="{url}" data-figure="visibility">'
            f"{percent_text(line.visibility)}</a></td>\n"
            f'        <td class="num"><a href="{url}" data-figure="mentioned">{_n(line.mentioned)}</a></td>\n'
            f'        <td class="num">{percent_text(line.share_of_voice)}</td>\n'
            f'        <td class="num">{position_cell}</td>\n'
            f'        <td class="num"><a href="{_url(line.first_paragraph_url)}" '
            f'data-figure="first_paragraph">{_n(line.sums["first_paragraph"])}</a></td>\n'
            f'        <td class="num"><a href="{_url(line.cited_url)}" data-figure="cited">'
            f"{_n(line.sums['cited'])}</a></td>\n"
            f'        <td class="num">{percent_text(line.citation_share)}</td>\n'
            f"        {cost}\n"
            f'        <td class="num muted"><a href="{_url(previous.url)}">'
            f"{percent_text(previous.visibility)}</a></td>\n"
            "      </tr>\n"
            "      "
        )
    out.append(_TABLE_END)
    return SafeString("".join(out))


def over_time_table(report: VisibilityReport) -> SafeString:
    """A row per time bucket: its answers, then each brand's visibility (its share of voice on hover)."""
    brand_heads = "".join(f'<th scope="col" class="num">{escape(b.name)}</th>' for b in report.brands)
    brand_ids = [brand.pk for brand in report.brands]
    out = [
        '<table class="spend-table" data-table="over-time">\n'
        '      <thead><tr><th scope="col">Period</th><th scope="col" class="num">Answers</th>'
        f"{brand_heads}</tr></thead>\n"
        "      <tbody>\n"
        "      "
    ]
    for column in report.over_time:
        answers = column.answers
        prefix = _brand_links(column.links)
        cells = []
        for brand_id, line in zip(brand_ids, column.lines, strict=True):
            sums = line.sums
            cells.append(
                f'<td class="num"><a href="{_brand_url(prefix, brand_id)}" title="share of voice '
                f'{_percent(sums["mentions"], line.mentions_all)}">{_percent(sums["mentioned"], answers)}'
                "</a></td>"
            )
        out.append(
            "\n"
            f'      <tr><th scope="row">{escape(column.label)}</th>'
            f'<td class="num"><a href="{_url(column.url)}">{_n(answers)}</a></td>\n'
            f"        {''.join(cells)}{_ROW_END}"
        )
    out.append(_TABLE_END)
    return SafeString("".join(out))


def by_model_table(report: VisibilityReport) -> SafeString:
    """A row per brand, a column per provider and model: visibility and share of voice."""
    heads = "".join(
        f'<th scope="col" class="num"><a href="{_url(column.url)}">{escape(column.label)}</a><br>'
        f'<span class="muted small">{_n(column.answers)} answers</span></th>'
        for column in report.by_model
    )
    prefixes = [_brand_links(column.links) for column in report.by_model]
    out = [
        '<table class="spend-table" data-table="by-model">\n'
        f'      <thead><tr><th scope="col">Brand</th>{heads}</tr></thead>\n'
        "      <tbody>\n"
        "      "
    ]
    for index, brand in enumerate(report.brands):
        cells = []
        for prefix, column in zip(prefixes, report.by_model, strict=True):
            line = column.lines[index]
            sums = line.sums
            cells.append(
                f'<td class="num"><a href="{_brand_url(prefix, brand.pk)}">'
                f"{_percent(sums['mentioned'], line.answers)}</a><br>"
                f'<span class="muted small">SoV {_percent(sums["mentions"], line.mentions_all)}</span></td>'
            )
        out.append(
            "\n"
            f'      <tr><th scope="row">{escape(brand.name)}</th>\n'
            f"        {''.join(cells)}\n"
            f"      {_ROW_END}"
        )
    out.append(_TABLE_END)
    return SafeString("".join(out))


def report_tables(report: VisibilityReport, *, show_cost: bool) -> dict[str, SafeString]:
    return {
        "brands": brands_table(report, show_cost=show_cost),
        "over_time": over_time_table(report),
        "by_model": by_model_table(report),
    }
