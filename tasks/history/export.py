"""The task list's CSV and JSON exports: columns, records, and the stream that reads them.

An export reads only the columns it writes (never the request body or the raw result) and reads them
inside one transaction: on PostgreSQL Django's server-side cursor is then a plain one that streams rows as
the client takes them, where outside a transaction it would be a `WITH HOLD` cursor that materialises the
whole result before the first row leaves (docs/performance.md, "Exports").
"""

import json
from collections import defaultdict
from collections.abc import Iterator

from django.db import transaction
from django.db.models import QuerySet

from tasks.csv_export import money, optional_money
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
    yield "["
    first = True
    for record in records:
        yield ("\n" if first else ",\n") + json.dumps(record, ensure_ascii=False)
        first = False
    yield "\n]\n"
