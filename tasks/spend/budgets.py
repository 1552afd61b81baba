"""Monthly budgets: the check that reserves spend before anything is sent, and what each budget has used.

A submission's tasks are created (with their estimated charge in `Task.spend`) in the same transaction
that checks the budgets, so the reservation *is* the new rows; a batch across providers is checked at once
and writes every (provider, mode) group's rows in that same transaction. The budget rows are locked first
(SELECT … FOR UPDATE on PostgreSQL; on SQLite every write transaction starts with BEGIN IMMEDIATE and holds
the database's write lock), so concurrent submissions queue behind each other and each one sees the spend
the previous ones reserved. Reservations settle by themselves: services replace `Task.spend` with the
charge at post and then the final cost (zero when refused).
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from django.db import IntegrityError, transaction
from django.db.models import Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from tasks.models import Budget, Task
from tasks.templatetags.spend_format import budget_name, ratio_percent

ZERO = Decimal("0")
MONEY_QUANTUM = Decimal("0.000001")  # money is stored to 6 decimal places (tasks.models.MONEY)
# A submission still unfinished this long after it started was interrupted (the web server's own
# timeout is 2 minutes): resume_collection marks its unanswered rows unknown.
SUBMISSION_LIFETIME = timedelta(minutes=10)


class BudgetExceeded(Exception):
    """The submission would take a budget over its limit; nothing was sent."""


def month_start(now: datetime | None = None) -> datetime:
    """Midnight on the first day of the current month, in the site's time zone."""
    now = timezone.localtime(now or timezone.now())
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _budget_scope_q(budget: Budget) -> Q:
    """The tasks (any month) that count against `budget`."""
    if budget.scope == Budget.Scope.PERSON:
        return Q(submitted_by_id=budget.user_id)
    if budget.scope == Budget.Scope.TAG:
        return Q(tag=budget.tag)
    return Q()


def budget_spent(budget: Budget) -> Decimal:
    """What counts against `budget` this month: final costs, charges at post and reservations."""
    return _spent([budget])[budget.pk]


def _spent(budgets: list[Budget]) -> dict[int, Decimal]:
    """What counts against each budget this month, in one statement."""
    sums = {}
    for budget in budgets:
        spent = Sum("spend", filter=_budget_scope_q(budget) or Q(pk__isnull=False))
        sums[f"b{budget.pk}"] = Coalesce(spent, Value(ZERO))
    totals = Task.objects.filter(created_at__gte=month_start()).aggregate(**sums)
    # To the money's 6 places: SQLite adds decimals as floats.
    return {budget.pk: totals[f"b{budget.pk}"].quantize(MONEY_QUANTUM) for budget in budgets}


def budgets_reserve(*, user, charges: list[tuple[str, Decimal]]) -> None:
    """Refuse a submission whose charges would cross a limit; call inside the transaction that creates
    the tasks, before creating them.

    `charges` is one (tag, estimated charge) pair per task of the submission, every one of which the
    transaction creates.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("budgets_reserve must run inside the transaction that creates the tasks")
    by_tag = _by_tag(charges)
    total = sum(by_tag.values(), ZERO)
    scopes = _applying_to(user=user, tags=by_tag)
    # Locking in primary-key order: two submissions touching the same budgets cannot deadlock.
    budgets = list(Budget.objects.select_for_update().filter(scopes, is_active=True).order_by("pk"))
    # The sums run after the lock is held, so they see every reservation committed before it.
    for budget in budgets:
        adding = by_tag[budget.tag] if budget.scope == Budget.Scope.TAG else total
        spent = budget_spent(budget)
        if spent + adding > budget.monthly_limit:
            left = max(budget.monthly_limit - spent, ZERO)
            raise BudgetExceeded(
                f"{budget} would be exceeded: {exact_usd(spent)} of {exact_usd(budget.monthly_limit)} is "
                f"already spent or reserved this month, {exact_usd(left)} is left and this submission needs "
                f"{exact_usd(adding)}. Nothing was sent."
            )


def _applying_to(*, user, tags) -> Q:
    """The budgets a submission by `user` of tasks tagged `tags` counts against."""
    scopes = Q(scope=Budget.Scope.TEAM) | Q(scope=Budget.Scope.TAG, tag__in=[t for t in tags if t])
    if user is not None and user.pk:
        scopes |= Q(scope=Budget.Scope.PERSON, user=user)
    return scopes


def _by_tag(charges: list[tuple[str, Decimal]]) -> dict[str, Decimal]:
    by_tag: dict[str, Decimal] = defaultdict(Decimal)
    for tag, amount in charges:
        by_tag[tag] += amount
    return by_tag


# --- Reading ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetUsage:
    budget: Budget
    spent: Decimal

    @property
    def ratio(self) -> Decimal:
        if self.budget.monthly_limit <= 0:
            return Decimal("1")  # a zero limit is used up from the start: it refuses every submission
        return self.spent / self.budget.monthly_limit

    @property
    def percent(self) -> int:
        return int(min(self.ratio, Decimal("9.99")) * 100)

    @property
    def percent_text(self) -> str:
        """Use to the threshold's one decimal, rounded down ("82.6%"): a whole percent read 82% beside
        a warning at 82.5% that it had crossed, and never reads a threshold as crossed before it is.
        Some use under 0.1% reads "<0.1%", not "0%" beside the amount spent."""
        text = ratio_percent(min(self.ratio, Decimal("9.99")), rounding=ROUND_FLOOR)
        return "<0.1%" if text == "0%" and self.spent > 0 else text

    @property
    def warn_text(self) -> str:
        """The threshold as set, to its one decimal ("82.5%", "80%")."""
        return ratio_percent(self.budget.warn_ratio)

    @property
    def left(self) -> Decimal:
        return max(self.budget.monthly_limit - self.spent, ZERO)

    @property
    def is_over(self) -> bool:
        return self.spent >= self.budget.monthly_limit

    @property
    def is_warning(self) -> bool:
        return self.ratio >= self.budget.warn_ratio

    @property
    def level(self) -> str:
        return "over" if self.is_over else "warning" if self.is_warning else "ok"


def budgets_usage(*, active_only: bool = False) -> list[BudgetUsage]:
    """Every budget with what it has used this month, in two queries whatever the number of budgets."""
    budgets = Budget.objects.select_related("user").order_by("scope", "tag", "user__username")
    if active_only:
        budgets = budgets.filter(is_active=True)
    budgets = list(budgets)
    if not budgets:
        return []
    spent = _spent(budgets)
    return [BudgetUsage(budget=b, spent=spent[b.pk]) for b in budgets]


def exact_usd(amount: Decimal) -> str:
    """Money as stored, to 4–6 decimals: $0.0102, $0.010708; enough to see why a charge does not fit."""
    text = f"{abs(amount.quantize(MONEY_QUANTUM)):,.6f}"
    whole, _, fraction = text.partition(".")
    return f"{'-' if amount < 0 else ''}${whole}.{fraction.rstrip('0').ljust(4, '0')}"


@dataclass(frozen=True)
class BudgetFit:
    """A budget a submission counts against: what it has left this month and what the submission needs."""

    usage: BudgetUsage
    needs: Decimal

    @property
    def left(self) -> Decimal:
        return max(self.usage.budget.monthly_limit - self.usage.spent, ZERO)

    @property
    def fits(self) -> bool:
        return self.usage.spent + self.needs <= self.usage.budget.monthly_limit

    @property
    def name(self) -> str:
        budget = self.usage.budget
        return "your budget" if budget.scope == Budget.Scope.PERSON else budget_name(budget)

    def refusal(self, what: str) -> str:
        """Why `what` ("this task", "this batch of 12 tasks") would be refused; empty when it fits."""
        if self.fits:
            return ""
        return (
            f"{what[:1].upper()}{what[1:]} needs {exact_usd(self.needs)}, {self.name} has "
            f"{exact_usd(self.left)} left this month."
        )


_SCOPE_ORDER = {Budget.Scope.TEAM: 0, Budget.Scope.PERSON: 1, Budget.Scope.TAG: 2}


def budgets_for_submission(*, user, charges: list[tuple[str, Decimal]]) -> list[BudgetFit]:
    """Every active budget a submission of `charges` (tag, estimated charge) by `user` would count
    against, with what it has left (as `budgets_reserve` counts it) and whether
    the submission fits: what the builder and the batch confirmation show before submitting. Nothing is
    locked or reserved; the submit checks again. Two queries, one when no budget applies.
    """
    by_tag = _by_tag(charges)
    total = sum(by_tag.values(), ZERO)
    budgets = list(
        Budget.objects.filter(_applying_to(user=user, tags=by_tag), is_active=True)
        .select_related("user")
        .order_by("pk")
    )
    if not budgets:
        return []
    budgets.sort(key=lambda b: _SCOPE_ORDER[b.scope])
    spent = _spent(budgets)
    return [
        BudgetFit(
            usage=BudgetUsage(budget=budget, spent=spent[budget.pk]),
            needs=by_tag[budget.tag] if budget.scope == Budget.Scope.TAG else total,
        )
        for budget in budgets
    ]


def budget_warnings() -> list[str]:
    """One sentence per active budget at or over its warning threshold this month."""
    warnings = []
    for usage in budgets_usage(active_only=True):
        if not usage.is_warning:
            continue
        limit = usage.budget.monthly_limit
        if usage.is_over:
            warnings.append(
                f"{usage.budget} is used up: {exact_usd(usage.spent)} of {exact_usd(limit)} this month. "
                "New submissions that count against it are refused."
            )
        else:
            warnings.append(
                f"{usage.budget} is at {usage.percent_text}: {exact_usd(usage.spent)} of {exact_usd(limit)} "
                f"this month, {exact_usd(usage.left)} left."
            )
    return warnings


# --- Changing ---------------------------------------------------------------------------------------


def budget_snapshot(budget: Budget) -> dict:
    return {
        "scope": budget.scope,
        "person": budget.user.get_username() if budget.user_id else "",
        "tag": budget.tag,
        "monthly_limit": budget.monthly_limit,
        "warn_ratio": budget.warn_ratio,
        "is_active": budget.is_active,
    }


def budget_save(
    *,
    actor,
    budget: Budget | None = None,
    scope: str,
    monthly_limit: Decimal,
    warn_ratio: Decimal,
    user=None,
    tag: str = "",
    is_active: bool = True,
) -> Budget:
    """Create a budget (budget=None) or change one; audited when something changed. The caller has
    checked uniqueness; BudgetTaken when another save took the same team, person or tag since."""
    from tasks.team.audit import audit_changes, audit_record

    creating = budget is None
    budget = budget or Budget(created_by=actor if actor is not None and actor.pk else None)
    before = {} if creating else budget_snapshot(budget)
    budget.scope = scope
    budget.user = user if scope == Budget.Scope.PERSON else None
    budget.tag = tag if scope == Budget.Scope.TAG else ""
    budget.monthly_limit = monthly_limit
    budget.warn_ratio = warn_ratio
    budget.is_active = is_active
    with transaction.atomic():
        _save_unique(budget)
        after = budget_snapshot(budget)
        changes = after if creating else audit_changes(before, after)
        if changes:
            action = "budget.create" if creating else "budget.update"
            audit_record(actor=actor, action=action, obj=budget, changes=changes)
    return budget


class BudgetTaken(Exception):
    """A budget for the same team, person or tag was saved since the form checked (two saves at once)."""


def _save_unique(budget: Budget) -> None:
    try:
        with transaction.atomic():  # a savepoint, so the transaction survives a refused budget
            budget.save()
    except IntegrityError:
        same = {"scope": budget.scope, "user": budget.user, "tag": budget.tag}
        if budget.scope == Budget.Scope.TEAM:
            same = {"scope": budget.scope}
        if Budget.objects.filter(**same).exclude(pk=budget.pk).exists():
            raise BudgetTaken(str(budget)) from None
        raise


def budget_delete(*, actor, budget: Budget) -> None:
    from tasks.team.audit import audit_record

    with transaction.atomic():
        snapshot = budget_snapshot(budget)
        audit_record(actor=actor, action="budget.delete", obj=budget, changes=snapshot)
        budget.delete()
