"""Monthly budgets: the check that reserves spend before anything is sent.

A submission's tasks are created (with their estimated charge in `Task.spend`) in the same
transaction that checks the budgets, so the reservation *is* the new rows. The budget rows are
locked first (SELECT … FOR UPDATE on PostgreSQL; on SQLite every write transaction starts with
BEGIN IMMEDIATE and holds the database's write lock), so concurrent submissions queue behind each
other and each one sees the spend the previous ones reserved. Reservations settle by themselves:
services replace `Task.spend` with the charge at post and then the final cost.
"""

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from tasks.models import Budget, Task


class BudgetExceeded(Exception):
    """The submission would take a budget over its limit; nothing was sent."""


def month_start(now: datetime | None = None) -> datetime:
    now = timezone.localtime(now or timezone.now())
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _spent_this_month(budget: Budget) -> Decimal:
    tasks = Task.objects.filter(created_at__gte=month_start())
    if budget.scope == Budget.Scope.PERSON:
        tasks = tasks.filter(submitted_by_id=budget.user_id)
    elif budget.scope == Budget.Scope.TAG:
        tasks = tasks.filter(tag=budget.tag)
    return tasks.aggregate(total=Sum("spend"))["total"] or Decimal("0")


def budget_spent(budget: Budget) -> Decimal:
    """What counts against `budget` this month: final costs, charges at post and reservations."""
    return _spent_this_month(budget)


def budgets_reserve(*, user, charges: list[tuple[str, Decimal]]) -> None:
    """Refuse a submission whose charges would cross a limit; call inside the transaction that creates
    the tasks, before creating them.

    `charges` is one (tag, estimated charge) pair per task about to be created.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("budgets_reserve must run inside the transaction that creates the tasks")
    total = sum((amount for _, amount in charges), Decimal("0"))
    by_tag: dict[str, Decimal] = defaultdict(Decimal)
    for tag, amount in charges:
        by_tag[tag] += amount
    scopes = Q(scope=Budget.Scope.TEAM) | Q(scope=Budget.Scope.TAG, tag__in=[t for t in by_tag if t])
    if user is not None and user.pk:
        scopes |= Q(scope=Budget.Scope.PERSON, user=user)
    budgets = Budget.objects.select_for_update().filter(scopes, is_active=True).order_by("pk")
    for budget in budgets:
        adding = by_tag[budget.tag] if budget.scope == Budget.Scope.TAG else total
        spent = _spent_this_month(budget)
        if spent + adding > budget.monthly_limit:
            left = max(budget.monthly_limit - spent, Decimal("0"))
            raise BudgetExceeded(
                f"{budget} would be exceeded: ${spent:.4f} of ${budget.monthly_limit:.2f} is already "
                f"spent or reserved this month, ${left:.4f} is left and this submission needs "
                f"${adding:.4f}. Nothing was sent."
            )
