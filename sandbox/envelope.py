"""The shapes the upstream answers with: DataForSEO's envelope (api-reference §3), AIsa's error body (§4)."""

import secrets
import time
from decimal import Decimal

from django.utils import timezone

VERSION = "0.1.20250526"
API = "ai_optimization"

# A fixed middle part per provider, like the upstream's ids ("07171158-1535-0612-0000-edcdefadd850").
_ID_MIDDLE = {
    "chat_gpt": "1535-0612-0000",
    "claude": "1535-0613-0000",
    "gemini": "1535-0614-0000",
    "perplexity": "1535-0615-0000",
}

STATUS_MESSAGES = {
    20000: "Ok.",
    20100: "Task Created.",
    40000: "Bad Request.",
    40006: "You can set only 100 tasks at a time.",
    40100: "You are not authorized to access this resource.",
    40202: "Rate limit per minute exceeded.",
    40401: "Task Not Found.",
    40405: "Method Not Allowed.",
    40400: "Not Found.",
    40601: "Task Handed.",
    40602: "Task In Queue.",
    50000: "Internal Error.",
}


def new_task_id(provider: str) -> str:
    """An id shaped like the upstream's: MMDDHHMM of creation, a fixed middle, 12 random hex digits."""
    middle = _ID_MIDDLE.get(provider, "1535-0600-0000")
    return f"{timezone.now():%m%d%H%M}-{middle}-{secrets.token_hex(6)}"


def seconds_since(started: float) -> str:
    return f"{time.monotonic() - started:.4f} sec."


def money(value: Decimal | float | int) -> float | int:
    """USD as the upstream writes it: a JSON number, 0 rather than 0.0."""
    value = float(value)
    return 0 if value == 0 else round(value, 6)


def task_path(provider: str, *tail: str) -> list[str]:
    return ["v3", API, provider, "llm_responses", *tail]


def echo(provider: str, function: str, fields: object = None) -> dict:
    """`data` of a task: api/function/se followed by what the caller sent."""
    data = {"api": API, "function": function, "se": provider}
    if isinstance(fields, dict):
        data |= fields
    return data


def task(
    *,
    task_id: str,
    status_code: int,
    path: list[str],
    data: dict,
    cost: Decimal | float = 0,
    result: list | None = None,
    status_message: str | None = None,
    started: float,
) -> dict:
    return {
        "id": task_id,
        "status_code": status_code,
        "status_message": status_message or STATUS_MESSAGES[status_code],
        "time": seconds_since(started),
        "cost": money(cost),
        "result_count": len(result) if result else 0,
        "path": path,
        "data": data,
        "result": result,
    }


def envelope(tasks: list[dict] | None, *, started: float, status_code: int = 20000, cost=None, message=None):
    """The top level around `tasks`; cost defaults to the sum of the tasks' costs."""
    tasks_list = tasks or []
    if cost is None:
        cost = sum(Decimal(str(t["cost"])) for t in tasks_list)
    return {
        "version": VERSION,
        "status_code": status_code,
        "status_message": message or STATUS_MESSAGES[status_code],
        "time": seconds_since(started),
        "cost": money(cost),
        "tasks_count": len(tasks_list),
        "tasks_error": sum(1 for t in tasks_list if t["status_code"] >= 40000),
        "tasks": tasks,
    }


def aisa_error(error_type: str, code: str, message: str) -> dict:
    """AIsa's own gateway error body."""
    return {
        "error": {
            "type": error_type,
            "code": code,
            "message": message,
            "request_id": f"req_{secrets.token_hex(12)}",
        }
    }


def finished_envelope(row, *, started: float) -> dict:
    """task_get's answer for a finished task; also the body of its postback."""
    answered = task(
        task_id=row.id,
        status_code=20000,
        path=task_path(row.provider, "task_get", row.id),
        data=row.data,
        cost=row.cost,
        result=[row.result],
        started=started,
    )
    return envelope([answered], started=started, cost=0)
