"""The visibility page as CSV: the same figures, every row, full precision."""

from decimal import Decimal

from tasks.csv_export import cell, csv_response, money

HEADER = [
    "section",
    "group",
    "brand",
    "ours",
    "answers",
    "mentioned",
    "visibility",
    "mentions",
    "share_of_voice",
    "average_position",
    "in_first_paragraph",
    "cited",
    "citations",
    "citation_share",
    "cost_of_mentioning_answers_usd",
    "previous_visibility",
]


POSITION_PLACES = Decimal("0.01")


def _share(part, whole) -> str:
    """A ratio to 6 places, as BrandLine computes it; empty without a whole."""
    return f"{Decimal(part) / Decimal(whole):.6f}" if whole else ""


def _line_cells(head: list[str], brand: list[str], line, *, show_cost: bool) -> list[str]:
    """One brand's figures as CSV cells (`cell`'s text: the figures are numbers, the names guarded once by
    the caller): each ratio from the sums, not through BrandLine's properties."""
    sums = line.sums
    mentioned = sums["mentioned"]
    position = (
        f"{(Decimal(sums['position_sum']) / Decimal(mentioned)).quantize(POSITION_PLACES)}"
        if mentioned
        else ""
    )
    previous = line.previous
    return [
        *head,
        *brand,
        str(line.answers),
        str(mentioned),
        _share(mentioned, line.answers),
        str(sums["mentions"]),
        _share(sums["mentions"], line.mentions_all),
        position,
        str(sums["first_paragraph"]),
        str(sums["cited"]),
        str(sums["citations"]),
        _share(sums["citations"], line.citations_all),
        cell(money(sums["spend"])) if show_cost else "",
        _share(previous.sums["mentioned"], previous.answers) if previous is not None else "",
    ]


def report_rows(report, *, show_cost: bool):
    """The CSV's rows as cells: the totals, each time bucket and each provider and model per brand, then
    the citation groups."""
    brands = [[cell(brand.name), "yes" if brand.is_ours else "no"] for brand in report.brands]
    slices = [(["total", cell(report.period.label)], report.lines)]
    slices += [([report.granularity, cell(column.key)], column.lines) for column in report.over_time]
    slices += [(["model", cell(column.key)], column.lines) for column in report.by_model]
    for head, lines in slices:
        for brand, line in zip(brands, lines, strict=True):
            yield _line_cells(head, brand, line, show_cost=show_cost)
    for group in report.citation_groups:
        share = "" if group.share is None else f"{group.share:.6f}"
        empty = [""] * 7
        yield [
            "citations",
            group.key,
            "",
            "",
            str(report.answers),
            *empty,
            str(group.citations),
            share,
            "",
            "",
        ]


def report_response(report, *, show_cost: bool):
    period = report.period
    name = f"visibility-{report.brand_set.pk}-{period.start}-{period.end}.csv"
    return csv_response(
        filename=name, header=HEADER, rows=report_rows(report, show_cost=show_cost), cells=True
    )
