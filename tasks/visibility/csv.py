"""The visibility page as CSV: the same figures, every row, full precision."""

from tasks.csv_export import csv_response, money

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


def _ratio(value) -> str:
    return "" if value is None else f"{value:.6f}"


def _line_row(section: str, group: str, line, *, show_cost: bool) -> list:
    sums = line.sums
    return [
        section,
        group,
        line.brand.name,
        "yes" if line.brand.is_ours else "no",
        line.answers,
        sums["mentioned"],
        _ratio(line.visibility),
        sums["mentions"],
        _ratio(line.share_of_voice),
        "" if line.average_position is None else f"{line.average_position}",
        sums["first_paragraph"],
        sums["cited"],
        sums["citations"],
        _ratio(line.citation_share),
        money(sums["spend"]) if show_cost else "",
        _ratio(line.previous.visibility) if line.previous is not None else "",
    ]


def report_rows(report, *, show_cost: bool):
    for line in report.lines:
        yield _line_row("total", report.period.label, line, show_cost=show_cost)
    for column in report.over_time:
        for line in column.lines:
            yield _line_row(report.granularity, column.key, line, show_cost=show_cost)
    for column in report.by_model:
        for line in column.lines:
            yield _line_row("model", column.key, line, show_cost=show_cost)
    for group in report.citation_groups:
        row = ["citations", group.key, "", "", report.answers, "", "", "", "", "", "", "", group.citations]
        yield [*row, _ratio(group.share), "", ""]


def report_response(report, *, show_cost: bool):
    period = report.period
    name = f"visibility-{report.brand_set.pk}-{period.start}-{period.end}.csv"
    return csv_response(filename=name, header=HEADER, rows=report_rows(report, show_cost=show_cost))
