"""The task list's CSV and JSON exports: columns, records, and the stream that reads them.

An export reads only the columns it writes (never the request body or the raw result) and reads them
inside one transaction: on PostgreSQL Django's server-side cursor is then a plain one that streams rows as
the client takes them, where outside a transaction it would be a `WITH HOLD` cursor that materialises the
whole result before the first row leaves (docs/performance.md, "Exports").

On PostgreSQL the CSV is written by the server: `COPY (the filtered list's SELECT) TO STDOUT WITH (FORMAT
csv)`, each cell formatted in SQL exactly as the Python writer (`export_csv_rows`, used on SQLite) formats
it (tests/history/test_export_copy.py compares the two byte for byte). Both end each row with `\r\n` (RFC
4180, Python's csv module); COPY ends its rows with `\n`, which `export_csv_copy` replaces row by row.

The status written is the one the task's row and page show (`selectors.status_shown`): a queued task whose
chunk a worker is sending is `sending` there, in both writers and the JSON export (docs/history.md).
"""

import json
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal

from django.db import connections, transaction
from django.db.models import (
    Case,
    F,
    Func,
    OuterRef,
    QuerySet,
    StringAgg,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast

from tasks.csv_export import (
    FORMULA_STARTS,
    LINES_PER_PIECE,
    MONEY_PLACES,
    csv_lines,
    money,
    optional_money,
)
from tasks.history.selectors import status_shown
from tasks.models import Task, TaskLabel

EXPORT_CHUNK = 2000

# The columns the records below read: never the request body or the raw result. The status is the one
# the rows and pages show (`_shown`: a queued task being sent reads "sending"), not the stored one.
EXPORT_FIELDS = [
    "id", "created_at", "submitted_by__username", "provider", "mode", "model_name", "resolved_model_name",
    "credential__name", "tag", "status_shown", "status_code", "status_message", "charged", "cost",
    "money_spent", "spend", "spend_is_final", "input_tokens", "output_tokens", "reasoning_tokens",
    "upstream_task_id", "batch_id", "user_prompt", "answer_text",
]  # fmt: skip


EXPORT_COLUMNS = [
    "id", "created_at", "submitted_by", "provider", "mode", "model_name", "resolved_model_name", "credential",
    "tag", "labels", "status", "status_code", "status_message", "charged", "cost", "money_spent", "spend",
    "spend_is_final", "input_tokens", "output_tokens", "reasoning_tokens", "upstream_task_id", "batch_id",
    "user_prompt", "answer_text",
]  # fmt: skip


def _shown(tasks: QuerySet[Task]) -> QuerySet[Task]:
    """`tasks` without its labels' prefetch (each chunk of rows reads its own), with the status its rows
    and pages show as `status_shown`."""
    return tasks.prefetch_related(None).annotate(status_shown=status_shown())


def _export_record(row: dict, labels: list[str]) -> dict:
    return {
        "id": str(row["id"]),
        "created_at": row["created_at"].isoformat(),
        "submitted_by": row["submitted_by__username"] or "",
        "provider": row["provider"],
        "mode": row["mode"],
        "model_name": row["model_name"],
        "resolved_model_name": row["resolved_model_name"],
        "credential": row["credential__name"],
        "tag": row["tag"],
        "labels": labels,
        "status": row["status_shown"],
        "status_code": row["status_code"],
        "status_message": row["status_message"],
        "charged": optional_money(row["charged"]),
        "cost": optional_money(row["cost"]),
        "money_spent": optional_money(row["money_spent"]),
        "spend": money(row["spend"]),
        "spend_is_final": row["spend_is_final"],
        "input_tokens": row["input_tokens"],
        "output_tokens": row["output_tokens"],
        "reasoning_tokens": row["reasoning_tokens"],
        "upstream_task_id": row["upstream_task_id"] or "",
        "batch_id": str(row["batch_id"]) if row["batch_id"] else "",
        "user_prompt": row["user_prompt"],
        "answer_text": row["answer_text"],
    }


def export_records(tasks: QuerySet[Task]) -> Iterator[dict]:
    """Each task of `tasks` as an export record: plain rows of only the exported columns, read in one
    transaction, with the labels of each chunk of rows in one more query."""
    rows = _shown(tasks).values(*EXPORT_FIELDS)
    with transaction.atomic():
        chunk = []
        for row in rows.iterator(chunk_size=EXPORT_CHUNK):
            chunk.append(row)
            if len(chunk) == EXPORT_CHUNK:
                yield from _with_labels(chunk)
                chunk = []
        yield from _with_labels(chunk)


def _with_labels(rows: list[dict]) -> Iterator[dict]:
    if not rows:
        return
    labels = defaultdict(list)
    names = TaskLabel.objects.filter(task_id__in=[row["id"] for row in rows]).order_by("name")
    for task_id, name in names.values_list("task_id", "name"):
        labels[task_id].append(name)
    for row in rows:
        yield _export_record(row, labels[row["id"]])


def csv_rows(records: Iterator[dict]) -> Iterator[list]:
    return ([record[column] for column in EXPORT_COLUMNS] for record in records)


def json_lines(records: Iterator[dict]) -> Iterator[str]:
    """A JSON array, one record per line, handed on in pieces of LINES_PER_PIECE records."""
    yield "["
    piece = []
    separator = "\n"
    for record in records:
        piece.append(separator + json.dumps(record, ensure_ascii=False))
        separator = ",\n"
        if len(piece) == LINES_PER_PIECE:
            yield "".join(piece)
            piece = []
    yield "".join(piece) + "\n]\n"


def export_csv_rows(tasks: QuerySet[Task]) -> Iterator[list[str]]:
    """The CSV rows of `tasks`: exactly `[cell(v) for v in row] for row in csv_rows(export_records(tasks))`
    (tests/history/test_export_fast.py compares them on hostile values), built from plain tuples without
    the record dicts and with the cell rules inlined: a 1 M-row export formats 25 M cells."""
    rows = _shown(tasks).values_list(*EXPORT_FIELDS)
    with transaction.atomic():
        chunk = []
        for row in rows.iterator(chunk_size=EXPORT_CHUNK):
            chunk.append(row)
            if len(chunk) == EXPORT_CHUNK:
                yield from _csv_chunk(chunk)
                chunk = []
        yield from _csv_chunk(chunk)


def _csv_chunk(rows: list[tuple]) -> Iterator[list[str]]:
    if not rows:
        return
    labels = defaultdict(list)
    names = TaskLabel.objects.filter(task_id__in=[row[0] for row in rows]).order_by("name")
    for task_id, name in names.values_list("task_id", "name"):
        labels[task_id].append(name)
    starts, places = FORMULA_STARTS, MONEY_PLACES

    def text(value) -> str:  # cell() of a text value
        return "'" + value if value.startswith(starts) else value

    def cash(value) -> str:  # cell(optional_money(value)) and cell(money(value))
        return "" if value is None else text(f"{Decimal(value).quantize(places):f}")

    def number(value) -> str:  # cell() of an int, a bool or None
        return "" if value is None else str(value)

    for (
        pk, created_at, username, provider, mode, model_name, resolved_model_name, credential, tag, status,
        status_code, status_message, charged, cost, money_spent, spend, spend_is_final, input_tokens,
        output_tokens, reasoning_tokens, upstream_task_id, batch_id, user_prompt, answer_text,
    ) in rows:  # fmt: skip
        names = labels.get(pk)
        yield [
            text(str(pk)),
            text(created_at.isoformat()),
            text(username or ""),
            text(provider),
            text(mode),
            text(model_name),
            text(resolved_model_name),
            "" if credential is None else text(credential),
            text(tag),
            text(", ".join(names)) if names else "",
            text(status),
            number(status_code),
            text(status_message),
            cash(charged),
            cash(cost),
            cash(money_spent),
            cash(spend),
            number(spend_is_final),
            number(input_tokens),
            number(output_tokens),
            number(reasoning_tokens),
            text(upstream_task_id or ""),
            text(str(batch_id)) if batch_id else "",
            text(user_prompt),
            text(answer_text),
        ]


# COPY: every cell formatted by PostgreSQL ------------------------------------------------------------------


class _Repeated(Func):
    """A function whose template names its expression more than once: the parameters repeat with it."""

    output_field = TextField()

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = super().as_sql(compiler, connection, **extra_context)
        return sql, tuple(params) * self.template.count("%(expressions)s")


class _Text(_Repeated):
    """`cell()` of a text value, in SQL: a formula start gets a leading apostrophe; an empty text becomes
    NULL, which COPY writes as an empty unquoted cell (it writes an empty string as `""`; Python's csv
    writes an empty cell)."""

    template = (
        "NULLIF(CASE WHEN left(%(expressions)s, 1) IN ("
        + ", ".join(f"chr({ord(start)})" for start in FORMULA_STARTS)
        + ") THEN '''' || %(expressions)s ELSE %(expressions)s END, '')"
    )


class _Timestamp(_Repeated):
    """`datetime.isoformat()` of an aware UTC timestamp: microseconds only when there are some."""

    template = (
        "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || "
        "CASE WHEN to_char(%(expressions)s, 'US') = '000000' THEN '' "
        "ELSE to_char(%(expressions)s, '.US') END || '+00:00'"
    )


def _plain(name: str) -> Cast:
    """`str()` of a number or a UUID (neither can start a formula); NULL stays an empty cell."""
    return Cast(F(name), TextField())


def _money(name: str) -> _Text:
    # The columns hold exactly 6 places (MONEY), so numeric's text is `money()`'s `quantize` and `:f`.
    return _Text(Cast(F(name), TextField()))


def _copy_cells(tasks: QuerySet[Task]) -> QuerySet:
    """`tasks` (its filters and order) selecting the 25 CSV cells of each row, formatted in SQL."""
    # Guarded inside the subquery: around it, the template's three mentions would run it three times.
    labels = (
        TaskLabel.objects.filter(task=OuterRef("pk"))
        .order_by()
        .values("task")
        .annotate(names=_Text(StringAgg("name", Value(", "), order_by="name")))
        .values("names")
    )
    cells = {
        "c_id": _plain("id"),
        "c_created_at": _Timestamp(F("created_at")),
        "c_submitted_by": _Text(F("submitted_by__username")),
        "c_provider": _Text(F("provider")),
        "c_mode": _Text(F("mode")),
        "c_model_name": _Text(F("model_name")),
        "c_resolved_model_name": _Text(F("resolved_model_name")),
        "c_credential": _Text(F("credential__name")),
        "c_tag": _Text(F("tag")),
        "c_labels": Subquery(labels, output_field=TextField()),
        # The guard around the stored status alone ("sending" needs none): the subquery is written once.
        "c_status": status_shown(_Text(F("status"))),
        "c_status_code": _plain("status_code"),
        "c_status_message": _Text(F("status_message")),
        "c_charged": _money("charged"),
        "c_cost": _money("cost"),
        "c_money_spent": _money("money_spent"),
        "c_spend": _money("spend"),
        "c_spend_is_final": Case(
            When(spend_is_final=True, then=Value("True")),
            When(spend_is_final=False, then=Value("False")),
            output_field=TextField(),
        ),
        "c_input_tokens": _plain("input_tokens"),
        "c_output_tokens": _plain("output_tokens"),
        "c_reasoning_tokens": _plain("reasoning_tokens"),
        "c_upstream_task_id": _Text(F("upstream_task_id")),
        "c_batch_id": _plain("batch_id"),
        "c_user_prompt": _Text(F("user_prompt")),
        "c_answer_text": _Text(F("answer_text")),
    }
    return tasks.prefetch_related(None).values_list(*cells.values())


COPY_ROWS_PER_PIECE = 500


def export_csv_copy(tasks: QuerySet[Task]) -> Iterator[bytes]:
    """The CSV rows of `tasks` (no header), written by PostgreSQL: the same bytes as `csv_lines` of
    `export_csv_rows(tasks)` without its header line, handed on COPY_ROWS_PER_PIECE rows at a time."""
    connection = connections[tasks.db]
    sql, params = _copy_cells(tasks).query.sql_with_params()
    copy_sql = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)"
    with transaction.atomic(using=tasks.db), connection.cursor() as cursor:
        # COPY is planned for its whole result, where a cursor is planned for its first rows: on a large
        # set the planner would sort every row (temporary files, the first row after the sort) rather
        # than walk the index of the list's order. Without JIT: its compile time buys nothing here.
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL jit = off")
        with cursor.cursor.copy(copy_sql, params) as copy:
            # PostgreSQL sends one CopyData message per row (its protocol says so for copy-out), each
            # ending with the `\n` that ends the row: line breaks inside a quoted cell stay as they are.
            piece = []
            for row in copy:
                piece.append(row[:-1])
                if len(piece) == COPY_ROWS_PER_PIECE:
                    piece.append(b"")
                    yield b"\r\n".join(piece)
                    piece = []
            if piece:
                piece.append(b"")
                yield b"\r\n".join(piece)


def export_csv(tasks: QuerySet[Task]) -> Iterator[str | bytes]:
    """The whole CSV download of `tasks`, header first: the rows written by PostgreSQL's COPY there, by
    Python's csv module (`export_csv_rows`) on any other database. Both give the same bytes."""
    if connections[tasks.db].vendor != "postgresql":
        yield from csv_lines(EXPORT_COLUMNS, export_csv_rows(tasks), cells=True)
        return
    yield from csv_lines(EXPORT_COLUMNS, ())
    yield from export_csv_copy(tasks)
