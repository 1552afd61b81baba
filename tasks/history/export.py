"""The task list's CSV and JSON exports: columns, records, and the stream that reads them.

An export reads only the columns it writes (never the request body or the raw result) and reads them
inside one transaction: on PostgreSQL Django's server-side cursor is then a plain one that streams rows as
the client takes them, where outside a transaction it would be a `WITH HOLD` cursor that materialises the
whole result before the first row leaves (docs/performance.md, "Exports").
"""

import json
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal

from django.db import transaction
from django.db.models import QuerySet

from tasks.csv_export import FORMULA_STARTS, LINES_PER_PIECE, MONEY_PLACES, money, optional_money
from tasks.models import Task, TaskLabel

EXPORT_CHUNK = 2000

# The columns the records below read: never the request body or the raw result.
EXPORT_FIELDS = [
    "id", "created_at", "submitted_by__username", "provider", "mode", "model_name", "resolved_model_name",
    "credential__name", "tag", "status", "status_code", "status_message", "charged", "cost", "money_spent",
    "spend", "spend_is_final", "input_tokens", "output_tokens", "reasoning_tokens", "upstream_task_id",
    "batch_id", "user_prompt", "answer_text",
]  # fmt: skip


EXPORT_COLUMNS = [
    "id", "created_at", "submitted_by", "provider", "mode", "model_name", "resolved_model_name", "credential",
    "tag", "labels", "status", "status_code", "status_message", "charged", "cost", "money_spent", "spend",
    "spend_is_final", "input_tokens", "output_tokens", "reasoning_tokens", "upstream_task_id", "batch_id",
    "user_prompt", "answer_text",
]  # fmt: skip


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
        "status": row["status"],
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
    rows = tasks.prefetch_related(None).values(*EXPORT_FIELDS)
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
    rows = tasks.prefetch_related(None).values_list(*EXPORT_FIELDS)
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
