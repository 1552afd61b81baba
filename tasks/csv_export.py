"""The one CSV writer every export uses (task list, spend, the Django admin's action).

Every value goes through `cell`: text that a spreadsheet would run as a formula (it begins with =, +, -,
@, a tab, a carriage return or a line feed) gets a leading apostrophe; lists (labels) are joined first
and guarded as one cell; money is the exact figure as a plain decimal with 6 places (`money`).
"""

import csv
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal

from django.http import StreamingHttpResponse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
MONEY_PLACES = Decimal("0.000001")


def money(value) -> str:
    """A money figure as a plain decimal with 6 places (no exponent, no rounding beyond the stored
    6 places); empty when there is none."""
    if value is None or value == "":
        return ""
    return f"{Decimal(value).quantize(MONEY_PLACES):f}"


def optional_money(value) -> str | None:
    """`money`, or None when there is no figure (JSON exports write null)."""
    return None if value is None else money(value)


def cell(value) -> str:
    """One value as a safe CSV cell: numbers as they are, text guarded against formulas."""
    if type(value) is str:  # most cells: checked first, as a 1 M-row export calls this 25 M times
        return "'" + value if value.startswith(FORMULA_STARTS) else value
    if value is None:
        return ""
    if isinstance(value, int | Decimal | float):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        value = ", ".join("" if item is None else str(item) for item in value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Echo:
    """A file-like object whose write returns the line, so csv.writer can feed a streamed response."""

    def write(self, value):
        return value


LINES_PER_PIECE = 200


def csv_lines(header: list[str], rows: Iterable[Iterable], *, cells: bool = False) -> Iterator[str]:
    """The header, then the rows, as CSV text with every value through `cell`, handed on in pieces of
    `LINES_PER_PIECE` lines (a server writes each piece with one call, not one per line). `cells`: the
    rows are lists of cells already (each value what `cell` gives), written as they are."""
    writer = csv.writer(_Echo())
    yield writer.writerow([cell(name) for name in header])
    piece = []
    for row in rows:
        piece.append(writer.writerow(row if cells else [cell(value) for value in row]))
        if len(piece) == LINES_PER_PIECE:
            yield "".join(piece)
            piece = []
    if piece:
        yield "".join(piece)


def csv_response(
    *, filename: str, header: list[str], rows: Iterable[Iterable], cells: bool = False
) -> StreamingHttpResponse:
    """A streamed CSV download: rows are written as they are read, never held whole in memory."""
    response = StreamingHttpResponse(
        csv_lines(header, rows, cells=cells), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
