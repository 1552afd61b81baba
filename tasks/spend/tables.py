"""The spend page's breakdown tables, built as strings with the HTML the template wrote.

Seven tables of up to 20 rows, each row with six filtered figures: through the template they took more time
than the page's queries (issue 18, docs/performance.md). tests/spend/test_tables.py compares the output with
the template it replaces.
"""

from django.utils.formats import localize
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString
from django.utils.text import capfirst

from tasks.spend.reports import Breakdown
from tasks.templatetags.spend_format import money, percent_of


def _e(value) -> str:
    """`{{ value }}` in a template: localized, then escaped unless safe."""
    return conditional_escape(value if isinstance(value, str) else localize(value))


def breakdown_table(breakdown: Breakdown, *, timeline: bool = False) -> SafeString:
    key = _e(breakdown.key)
    title = "Period" if timeline else _e(capfirst(breakdown.title[3:]))
    previous_heads = (
        "" if timeline else '<th scope="col" class="num">Previous</th><th scope="col" class="num">Change</th>'
    )
    out = [
        '\n<div class="table-wrap bare">\n'  # the newline the template's {% load %} line left
        f'<table class="spend-table" data-breakdown="{key}">\n'
        "  <thead>\n"
        "    <tr>\n"
        f'      <th scope="col">{title}</th>\n'
        '      <th scope="col" class="num">Spend</th>\n'
        '      <th scope="col" class="num">Share</th>\n'
        '      <th scope="col" class="num">Tasks</th>\n'
        '      <th scope="col" class="num">Provisional</th>\n'
        f"      {previous_heads}\n"
        "    </tr>\n"
        "  </thead>\n"
        "  <tbody>\n"
        "    "
    ]
    for row in breakdown.rows:
        label = _e(row.label)
        spend = money(row.spend)
        if row.url:
            url = _e(row.url)
            group = f'<a href="{url}">{label}</a>'
            figure = f'<a href="{url}" data-figure="{key}">{spend}</a>'
        else:
            group = label
            figure = f'<span data-figure="{key}">{spend}</span>'
        previous = ""
        if not timeline:
            change = row.change
            direction = "up" if change is not None and change > 0 else ""
            direction = "down" if change is not None and change < 0 else direction
            previous = (
                f'<td class="num muted">{money(row.previous_spend)}</td>\n'
                f'      <td class="num {direction}">{money(change, "signed")}</td>'
            )
        out.append(
            "\n    <tr>\n"
            f'      <th scope="row" class="group">{group}</th>\n'
            f'      <td class="num">{figure}</td>\n'
            f'      <td class="num muted">{_e(percent_of(row.spend, breakdown.total))}</td>\n'
            f'      <td class="num">{_e(row.tasks)}</td>\n'
            f'      <td class="num muted">{money(row.provisional)}</td>\n'
            f"      {previous}\n"
            "    </tr>\n"
            "    "
        )
    out.append("\n    ")
    hidden_count = getattr(breakdown, "hidden_count", 0)
    if hidden_count:
        hidden_spend = breakdown.hidden_spend
        out.append(
            "\n"
            '    <tr class="more-rows">\n'
            f'      <th scope="row" class="group muted">{_e(hidden_count)} more</th>\n'
            f'      <td class="num muted">{money(hidden_spend)}</td>\n'
            f'      <td class="num muted">{_e(percent_of(hidden_spend, breakdown.total))}</td>\n'
            f'      <td colspan="{2 if timeline else 4}">'
            f'<a href="{_e(breakdown.show_all_url)}">Show all</a></td>\n'
            "    </tr>\n"
            "    "
        )
    empty_cells = "" if timeline else "<td></td><td></td>"
    out.append(
        "\n"
        "  </tbody>\n"
        "  <tfoot>\n"
        f'    <tr><td>Total</td><td class="num">{money(breakdown.total)}</td><td></td><td></td><td></td>'
        f"{empty_cells}</tr>\n"
        "  </tfoot>\n"
        "</table>\n"
        "</div>\n"
    )
    return SafeString("".join(out))
