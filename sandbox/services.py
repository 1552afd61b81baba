"""What the stand-in does with tasks: accept them, answer them, list and hand back the finished ones.

Each function returns the whole JSON envelope for its endpoint; the views only deal with HTTP around it.
Prices (api-reference §6): a queued task is charged a $0.01 prepayment plus a $0.0002 base fee when accepted;
once finished its cost is the base fee plus `money_spent` (the rest of the prepayment is refunded). A live
task costs $0.0006 plus `money_spent`. `models`, `tasks_ready` and `task_get` are free.
"""

from datetime import UTC, timedelta
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from sandbox import answers, catalog, delivery, envelope, rules
from sandbox.models import SandboxTask

MAX_TASKS_PER_POST = 100
MAX_TASKS_READY = 1000
PREPAYMENT = Decimal("0.01")
BASE_FEE = Decimal("0.0002")
CHARGE_AT_POST = PREPAYMENT + BASE_FEE
LIVE_BASE_PRICE = Decimal("0.0006")
DATE_FORMAT = "%Y-%m-%d %H:%M:%S +00:00"


def _rejected(
    provider: str, function: str, fields: object, *, status_code: int, message: str, started: float
):
    return envelope.task(
        task_id=envelope.new_task_id(provider),
        status_code=status_code,
        status_message=message,
        path=envelope.task_path(provider, function),
        data=envelope.echo(provider, "llm_responses", fields),
        started=started,
    )


def _refused(provider: str, function: str, fields: object, *, status_code: int, started: float):
    """A task the `task_refused` fault refuses: its code, cost 0, not processed."""
    message = envelope.STATUS_MESSAGES.get(status_code) or (
        "Internal Error." if status_code >= 50000 else f"Task refused ({status_code})."
    )
    return _rejected(provider, function, fields, status_code=status_code, message=message, started=started)


def _finish(provider: str, fields: dict, finished_at) -> tuple[dict, Decimal]:
    """result[0] for a valid task, and its money_spent."""
    sent = {k: v for k, v in fields.items() if v is not None}
    model = catalog.find_model(provider, sent["model_name"])
    result = answers.compose_result(provider=provider, model=model, fields=sent, finished_at=finished_at)
    return result, Decimal(str(result["money_spent"]))


def tasks_post(
    *, provider: str, account: str, tasks: list, started: float, refused: dict[int, int] | None = None
) -> dict:
    """task_post: accept up to 100 valid tasks (20100), reject the rest per task (40501, 40006).
    `refused` ({index: code}, the `task_refused` fault): those tasks get that code, cost 0, unprocessed."""
    now = timezone.now()
    ready_at = now + timedelta(seconds=settings.SANDBOX_TASK_DELAY)
    answered, accepted = [], []
    refused = refused or {}
    for index, fields in enumerate(tasks):
        if index in refused:
            answered.append(
                _refused(provider, "task_post", fields, status_code=refused[index], started=started)
            )
            continue
        if index >= MAX_TASKS_PER_POST:
            message = envelope.STATUS_MESSAGES[40006]
            answered.append(
                _rejected(provider, "task_post", fields, status_code=40006, message=message, started=started)
            )
            continue
        violation = rules.check_task(provider, "task_post", fields)
        if violation:
            message = violation.status_message
            answered.append(
                _rejected(provider, "task_post", fields, status_code=40501, message=message, started=started)
            )
            continue
        result, spent = _finish(provider, fields, ready_at)
        row = SandboxTask(
            id=envelope.new_task_id(provider),
            provider=provider,
            mode=SandboxTask.Mode.TASK_POST,
            account=account,
            data=envelope.echo(provider, "llm_responses", fields),
            result=result,
            charged=CHARGE_AT_POST,
            cost=BASE_FEE + spent,
            created_at=now,
            ready_at=ready_at,
        )
        accepted.append(row)
        answered.append(
            envelope.task(
                task_id=row.id,
                status_code=20100,
                path=envelope.task_path(provider, "task_post"),
                data=row.data,
                cost=CHARGE_AT_POST,
                started=started,
            )
        )
    with transaction.atomic():
        SandboxTask.objects.bulk_create(accepted)
        for row in accepted:
            if row.data.get("pingback_url") or row.data.get("postback_url"):
                # on_commit: the delivery thread must find the row (and never runs for a rolled-back one).
                transaction.on_commit(partial(delivery.schedule, row.id, settings.SANDBOX_TASK_DELAY))
    return envelope.envelope(answered, started=started)


def live(
    *, provider: str, account: str, tasks: list, started: float, refused: dict[int, int] | None = None
) -> dict:
    """live: answer exactly one task at once; more than one is a 40000 for the whole request. `refused`
    ({0: code}, the `task_refused` fault): the task gets that code, cost 0, and is not run."""
    if len(tasks) > 1:
        message = "You can set only one task at a time."
        answered = [
            _rejected(provider, "live", fields, status_code=40000, message=message, started=started)
            for fields in tasks
        ]
        return envelope.envelope(answered, started=started, status_code=40000, message=message)
    fields = tasks[0]
    if refused and 0 in refused:
        return envelope.envelope(
            [_refused(provider, "live", fields, status_code=refused[0], started=started)], started=started
        )
    violation = rules.check_task(provider, "live", fields)
    if violation:
        rejected = _rejected(
            provider, "live", fields, status_code=40501, message=violation.status_message, started=started
        )
        return envelope.envelope([rejected], started=started)
    now = timezone.now()
    result, spent = _finish(provider, fields, now)
    row = SandboxTask.objects.create(
        id=envelope.new_task_id(provider),
        provider=provider,
        mode=SandboxTask.Mode.LIVE,
        account=account,
        data=envelope.echo(provider, "llm_responses", fields),
        result=result,
        charged=LIVE_BASE_PRICE + spent,
        cost=LIVE_BASE_PRICE + spent,
        created_at=now,
        ready_at=now,
        fetched_at=now,
    )
    answered = envelope.task(
        task_id=row.id,
        status_code=20000,
        path=envelope.task_path(provider, "live"),
        data=row.data,
        cost=row.cost,
        result=[result],
        started=started,
    )
    return envelope.envelope([answered], started=started)


def task_get(*, provider: str, account: str, task_id: str, started: float, collect: bool = True) -> dict:
    """task_get: 40401 for someone else's or an unknown id, 40601/40602 until ready, then 20000.

    A finished task counts as collected (it leaves tasks_ready) unless `collect` is False, which the views
    use when the reply is about to be broken by a fault.
    """
    path = envelope.task_path(provider, "task_get", task_id)
    row = SandboxTask.objects.filter(
        pk=task_id, account=account, provider=provider, mode=SandboxTask.Mode.TASK_POST
    ).first()
    if row is None:
        missing = envelope.task(
            task_id=task_id,
            status_code=40401,
            path=path,
            data=envelope.echo(provider, "llm_responses"),
            started=started,
        )
        return envelope.envelope([missing], started=started, cost=0)
    now = timezone.now()
    if now < row.ready_at:
        # "Handed" for the first third of the wait, then "In Queue", as the upstream tends to answer.
        handed_until = row.created_at + (row.ready_at - row.created_at) / 3
        waiting = envelope.task(
            task_id=row.id,
            status_code=40601 if now < handed_until else 40602,
            path=path,
            data=row.data,
            cost=row.charged,
            started=started,
        )
        return envelope.envelope([waiting], started=started, cost=0)
    if collect and row.fetched_at is None:
        SandboxTask.objects.filter(pk=row.pk, fetched_at__isnull=True).update(fetched_at=now)
    return envelope.finished_envelope(row, started=started)


def tasks_ready(*, provider: str, account: str, started: float) -> dict:
    """tasks_ready: the account's finished queued tasks not yet collected, oldest first (at most 1000)."""
    rows = SandboxTask.objects.filter(
        account=account,
        provider=provider,
        mode=SandboxTask.Mode.TASK_POST,
        ready_at__lte=timezone.now(),
        fetched_at__isnull=True,
    ).order_by("ready_at", "id")[:MAX_TASKS_READY]
    result = [
        {
            "id": row.id,
            "se": provider,
            "function": "llm_responses",
            "date_posted": row.created_at.astimezone(UTC).strftime(DATE_FORMAT),
            "tag": row.data.get("tag"),
            "endpoint_regular": "/" + "/".join(envelope.task_path(provider, "task_get", row.id)),
            "endpoint_advanced": None,
            "endpoint_html": None,
        }
        for row in rows
    ]
    ready = envelope.task(
        task_id=envelope.new_task_id(provider),
        status_code=20000,
        path=envelope.task_path(provider, "tasks_ready"),
        data=envelope.echo(provider, "tasks_ready"),
        result=result,
        started=started,
    )
    return envelope.envelope([ready], started=started)


def models(*, provider: str, started: float) -> dict:
    listed = envelope.task(
        task_id=envelope.new_task_id(provider),
        status_code=20000,
        path=envelope.task_path(provider, "models"),
        data=envelope.echo(provider, "models"),
        result=catalog.listing(provider),
        started=started,
    )
    return envelope.envelope([listed], started=started)


def balance(account: str) -> Decimal:
    """The made-up starting balance minus what the account has been charged (final costs once known)."""
    now = timezone.now()
    charges = SandboxTask.objects.filter(account=account).aggregate(
        final=Sum("cost", filter=Q(ready_at__lte=now)),
        prepaid=Sum("charged", filter=Q(ready_at__gt=now)),
    )
    spent = (charges["final"] or Decimal(0)) + (charges["prepaid"] or Decimal(0))
    return Decimal(str(settings.SANDBOX_BALANCE)) - spent


def user_data(*, account: str, login: str, started: float) -> dict:
    total = Decimal(str(settings.SANDBOX_BALANCE))
    result = {
        "login": login,
        "timezone": "UTC",
        "money": {"total": envelope.money(total), "balance": envelope.money(balance(account))},
        "price": {},
    }
    answered = envelope.task(
        task_id=envelope.new_task_id("appendix"),
        status_code=20000,
        path=["v3", "appendix", "user_data"],
        data={"api": "appendix", "function": "user_data"},
        result=[result],
        started=started,
    )
    return envelope.envelope([answered], started=started)


def internal_error(*, provider: str, function: str, tasks: list | None, started: float) -> dict:
    """The `internal_error` fault: every task 50000, nothing processed, nothing charged."""
    failed = [
        envelope.task(
            task_id=envelope.new_task_id(provider),
            status_code=50000,
            path=envelope.task_path(provider, function),
            data=envelope.echo(provider, "llm_responses", fields),
            started=started,
        )
        for fields in (tasks or [None])
    ]
    return envelope.envelope(failed, started=started)
