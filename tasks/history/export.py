"""The task list's CSV and JSON exports: columns and records."""

import json

from tasks.csv_export import money, optional_money
from tasks.models import Task

EXPORT_CHUNK = 2000


EXPORT_COLUMNS = [
    "id", "created_at", "submitted_by", "provider", "mode", "model_name", "resolved_model_name", "credential",
    "tag", "labels", "status", "status_code", "status_message", "charged", "cost", "money_spent", "spend",
    "spend_is_final", "input_tokens", "output_tokens", "reasoning_tokens", "upstream_task_id", "batch_id",
    "user_prompt", "answer_text",
]  # fmt: skip


def _export_record(task: Task) -> dict:
    return {
        "id": str(task.pk),
        "created_at": task.created_at.isoformat(),
        "submitted_by": task.submitted_by.get_username() if task.submitted_by else "",
        "provider": task.provider,
        "mode": task.mode,
        "model_name": task.model_name,
        "resolved_model_name": task.resolved_model_name,
        "credential": task.credential.name,
        "tag": task.tag,
        "labels": [label.name for label in task.label_list],
        "status": task.status,
        "status_code": task.status_code,
        "status_message": task.status_message,
        "charged": optional_money(task.charged),
        "cost": optional_money(task.cost),
        "money_spent": optional_money(task.money_spent),
        "spend": money(task.spend),
        "spend_is_final": task.spend_is_final,
        "input_tokens": task.input_tokens,
        "output_tokens": task.output_tokens,
        "reasoning_tokens": task.reasoning_tokens,
        "upstream_task_id": task.upstream_task_id or "",
        "batch_id": str(task.batch_id) if task.batch_id else "",
        "user_prompt": task.user_prompt,
        "answer_text": task.answer_text,
    }


def _json_rows(tasks):
    yield "["
    first = True
    for task in tasks:
        yield ("\n" if first else ",\n") + json.dumps(_export_record(task), ensure_ascii=False)
        first = False
    yield "\n]\n"
