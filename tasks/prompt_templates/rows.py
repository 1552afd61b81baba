"""Batch rows: pasted or uploaded CSV read into one dict of variables per row (the header row names the
variables, in any case and with spaces around), with every problem said by its line number, before
`batches.batch_plan` builds a task of each row."""

import csv
import io
import re
from dataclasses import dataclass, field

from django.template.defaultfilters import pluralize

MAX_BATCH_TASKS = 10_000

SEP_LINE = re.compile(r"sep=([,;\t|])", re.IGNORECASE)


def rows_delimiter(text: str) -> str:
    """The delimiter of CSV rows, read from the header line: a comma, unless the header has none and has
    semicolons (Excel's CSV in many European locales) or tabs (Excel's "Unicode text", cells pasted from a
    spreadsheet), whichever it has more of. A value's own semicolons or commas never change it. A first line
    "sep=;" (Excel's hint) names it."""
    header = next((line for line in io.StringIO(text) if line.strip()), "")  # read lazily: a 5 MB paste
    if sep := SEP_LINE.fullmatch(header.strip()):
        return sep[1]
    if "," in header:
        return ","
    semicolons, tabs = header.count(";"), header.count("\t")
    if not semicolons and not tabs:
        return ","
    return ";" if semicolons >= tabs else "\t"


@dataclass
class RowsRead:
    rows: list[dict[str, str]]
    errors: list[str]
    # (header as written, variable) for each column that names its variable other than exactly.
    renamed: list[tuple[str, str]] = field(default_factory=list)
    # (line, earlier line) for each row whose values repeat an earlier row's: sent and charged again.
    repeated: list[tuple[str, str]] = field(default_factory=list)


def parse_rows(
    text: str, variables: list[str], *, max_rows: int = MAX_BATCH_TASKS
) -> tuple[list[dict[str, str]], list[str]]:
    """`rows_read`'s rows and errors."""
    read = rows_read(text, variables, max_rows=max_rows)
    return read.rows, read.errors


def rows_read(text: str, variables: list[str], *, max_rows: int = MAX_BATCH_TASKS) -> RowsRead:
    """CSV rows as {variable: value}, separated by commas, semicolons or tabs (`rows_delimiter`); errors name
    the line they are on (the header is line 1, or the first line not blank). A column fills the variable
    its header names, case and surrounding spaces aside (`header_columns`).

    Without variables, no CSV is needed: one row with no values. Reading stops past `max_rows` rows
    (the batch could not run anyway), so a huge paste or upload costs no more than the limit.
    """
    if not text.strip():
        if variables:
            return RowsRead([], [f"Paste or upload rows with a header line naming: {', '.join(variables)}."])
        return RowsRead([{}], [])
    text = text.lstrip("\ufeff")
    # skipinitialspace: "pho, Hanoi" as people type it is "Hanoi", and a quoted value after ", " is quoted.
    delimiter = rows_delimiter(text)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, skipinitialspace=True)
    try:
        cells = []
        # Blank lines before the header are skipped, and Excel's "sep=;" line (rows_delimiter read it).
        while not any(cell.strip() for cell in cells) or SEP_LINE.fullmatch(delimiter.join(cells).strip()):
            cells = next(reader)
    except (StopIteration, csv.Error) as exc:
        return RowsRead([], [f"Line {reader.line_num or 1}: cannot read the header ({exc})."])
    at = f"Line {reader.line_num}"
    header = [_column_name(cell) for cell in cells]
    columns, errors = header_columns(header, variables)
    if errors:  # which of its columns fills a variable would be a guess
        return RowsRead([], [f"{at}: {error}" for error in errors])
    written = {name: cells[i].replace("\ufeff", "") for name, i in columns.items()}
    renamed = [(column, name) for name, column in written.items() if column != name]
    missing = [name for name in variables if name not in columns]
    if missing:
        errors.append(
            f"{at}: the header lacks {', '.join(missing)} (it has: {', '.join(header)})."
            + (" Columns are read as separated by commas, semicolons or tabs." if len(header) == 1 else "")
        )
    rows = []
    seen = 0
    end = reader.line_num
    try:
        for row in reader:
            # A row is named by the line it starts on: a quoted value may hold line breaks.
            line, end = end + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # blank lines are not rows
            seen += 1
            if seen > max_rows:
                errors.append(
                    f"Line {line}: more than {max_rows} rows; reading stopped here "
                    f"(a batch runs at most {MAX_BATCH_TASKS} tasks)."
                )
                break
            if len(row) != len(header):
                counts = (
                    f"{len(row)} value{pluralize(len(row))} for {len(header)} column{pluralize(len(header))}"
                )
                if end > line and any("\n" in cell for cell in row):  # most likely a quote left open
                    errors.append(
                        f'Line {line}: a quote (") opens a value that runs to line {end}, so lines {line} to '
                        f'{end} read as {counts}. Close the quote, or double it ("") to keep it in the value.'
                    )
                else:
                    errors.append(f"Line {line}: {counts}.")
                continue
            values = {name: row[i] for name, i in columns.items()}
            empty = [name for name in values if not values[name].strip()]  # a missing column is said once
            if empty:
                errors.append(f"Line {line}: no value for {', '.join(empty)}.")
                continue
            if not missing:
                rows.append({"_line": str(line), **values})
    except csv.Error as exc:
        errors.append(f"Line {reader.line_num}: {exc}.")
    if not rows and not errors:
        errors.append("No rows below the header.")
    return RowsRead(rows, errors, renamed, _repeated_rows(rows, variables))


def _repeated_rows(rows: list[dict[str, str]], variables: list[str]) -> list[tuple[str, str]]:
    first: dict[tuple[str, ...], str] = {}
    repeated = []
    for row in rows:
        values = tuple(row[name] for name in variables)
        if values in first:
            repeated.append((row["_line"], first[values]))
        else:
            first[values] = row["_line"]
    return repeated


def _column_name(cell: str) -> str:
    """A header cell as the variable it names: without surrounding spaces or a byte-order mark."""
    return cell.strip().lstrip("\ufeff").strip()


def header_columns(header: list[str], variables: list[str]) -> tuple[dict[str, int], list[str]]:
    """The column of each variable its header names, and an error for each variable that two columns
    name. Case does not count, as spreadsheets write "Country" for {{country}}, unless the template has
    two variables that differ only in case: those are named exactly."""
    folded = [name.casefold() for name in variables]
    columns, errors = {}, []
    for name in variables:
        exact = folded.count(name.casefold()) > 1
        key = name if exact else name.casefold()
        found = [i for i, column in enumerate(header) if (column if exact else column.casefold()) == key]
        if len(found) == 1:
            columns[name] = found[0]
        elif found and len({header[i] for i in found}) == 1:
            errors.append(f"the header names {name} twice; keep one column for it.")
        elif found:
            names = [f"“{header[i]}”" for i in found]
            errors.append(
                f"the columns {', '.join(names[:-1])} and {names[-1]} both name {name} (case aside); "
                "keep one of them."
            )
    return columns, errors
