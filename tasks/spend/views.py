"""Admin pages: spend review (+ CSV and balance), budgets, credentials, people and the audit log.

Every view checks its permission itself (a Member gets 403, for a fragment too). htmx requests get
the page's fragment, other requests the whole page; plain POSTs redirect after success.
"""

from decimal import Decimal
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from tasks.csv_export import csv_response, money
from tasks.fragments import wants_fragment
from tasks.models import Budget
from tasks.spend import charts, periods, reports
from tasks.spend.budgets import BudgetTaken, budget_delete, budget_name, budget_save, budgets_usage
from tasks.spend.forms import BudgetForm, SpendFilterForm
from tasks.spend.provisional import provisional_summary
from tasks.team.credentials import (
    credential_balances,
)

# A breakdown with hundreds of groups (tags) shows its largest ones and a "Show all" link on the page;
# the CSV export always has every row.
PAGE_ROWS = 20


def _spend_report(request, *, for_page: bool = False) -> dict:
    form = SpendFilterForm(request.GET or None)
    period = form.chosen_period()
    granularity = form.chosen_granularity()
    total, breakdowns = reports.spend_report(period=period, granularity=granularity)
    if for_page:
        expanded = set(request.GET.getlist("all"))
        for breakdown in breakdowns:
            if breakdown.key in ("day", "week", "month"):
                breakdown.chart = charts.column_chart(
                    breakdown.rows,
                    title=f"Spend {breakdown.title.lower()}",
                    tick=(lambda row: row.label) if breakdown.key == "month" else None,  # "Nov 2026"
                )
                continue
            if breakdown.key not in expanded:
                _fold_long_breakdown(breakdown, request=request)
            breakdown.chart = charts.bar_chart(breakdown.rows, title=f"Spend {breakdown.title.lower()}")
    query = request.GET.urlencode()
    return {
        "form": form,
        "period": period,
        "granularity": granularity,
        "total": total,
        "breakdowns": breakdowns,
        "over_time": breakdowns[0],
        "dimensions": breakdowns[1:],
        "presets": [(key, label) for key, label in periods.PERIOD_CHOICES if key != "custom"],
        "export_url": reverse("spend:export") + (f"?{query}" if query else ""),
    }


def _fold_long_breakdown(breakdown, *, request) -> None:
    """Keep the PAGE_ROWS largest groups; the rest become a "N more" line linking to the whole table."""
    if len(breakdown.rows) <= PAGE_ROWS:
        return
    hidden = breakdown.rows[PAGE_ROWS:]
    breakdown.rows = breakdown.rows[:PAGE_ROWS]
    breakdown.hidden_count = len(hidden)
    breakdown.hidden_spend = sum((row.spend for row in hidden), Decimal("0"))
    query = request.GET.copy()
    query.appendlist("all", breakdown.key)
    breakdown.show_all_url = f"?{query.urlencode()}#by-{breakdown.key}"


@permission_required("tasks.view_spend", raise_exception=True)
@require_GET
def spend_page(request):
    context = _spend_report(request, for_page=True)
    if wants_fragment(request):
        return render(request, "tasks/spend/page.html#report", {**context, "oob": True})
    context["provisional"] = _provisional_panel()
    return render(request, "tasks/spend/page.html", context)


def _provisional_panel():
    """What is still provisional across all time and why, each reason linking to its tasks."""
    summary = provisional_summary()
    for group in summary.groups:
        group.url = (
            reverse("history:task_list") + "?" + urlencode({"status": group.status, "provisional": "1"})
        )
    summary.url = reverse("history:task_list") + "?provisional=1"
    return summary


CSV_HEADER = ["breakdown", "group", "filter", "spend_usd", "provisional_usd", "tasks", "previous_period_usd"]


@permission_required("tasks.view_spend", raise_exception=True)
@require_GET
def spend_export(request):
    """The spend page as CSV: the totals, then every row of every breakdown, full precision."""
    context = _spend_report(request)
    period, total = context["period"], context["total"]
    total_row = [
        "total",
        period.label,
        "",
        money(total.spend),
        money(total.provisional),
        total.tasks,
        money(total.previous_spend),
    ]
    rows = [total_row]
    for breakdown in context["breakdowns"]:
        for row in breakdown.rows:
            rows.append(
                [
                    breakdown.key,
                    row.label,
                    row.key,
                    money(row.spend),
                    money(row.provisional),
                    row.tasks,
                    money(row.previous_spend),
                ]
            )
    return csv_response(filename=f"spend-{period.start}-{period.end}.csv", header=CSV_HEADER, rows=rows)


@permission_required("tasks.view_spend", raise_exception=True)
@require_GET
def balance(request):
    """Account balances of DataForSEO-direct credentials, loaded after the page (the upstream may be slow)."""
    context = {"balances": credential_balances()}
    template = "tasks/spend/balance.html#balance" if wants_fragment(request) else "tasks/spend/balance.html"
    return render(request, template, context)


@permission_required("tasks.manage_budgets", raise_exception=True)
@require_GET
def budget_list(request):
    usages = budgets_usage()
    context = {"usages": usages, "has_team_budget": any(u.budget.scope == Budget.Scope.TEAM for u in usages)}
    template = "tasks/spend/budgets.html#table" if wants_fragment(request) else "tasks/spend/budgets.html"
    return render(request, template, context)


@permission_required("tasks.manage_budgets", raise_exception=True)
@require_http_methods(["GET", "POST"])
def budget_edit(request, pk: int | None = None):
    budget = get_object_or_404(Budget, pk=pk) if pk is not None else None
    if request.method == "POST":
        form = BudgetForm(request.POST, instance=budget)
        if form.is_valid():
            data = form.cleaned_data
            try:
                saved = budget_save(
                    actor=request.user,
                    budget=budget,
                    scope=data["scope"],
                    user=data["user"],
                    tag=data["tag"],
                    monthly_limit=data["monthly_limit"],
                    warn_ratio=Decimal(data["warn_percent"]) / 100,
                    is_active=data["is_active"],
                )
            except BudgetTaken:  # saved by someone else since the form checked: its check now says so
                if budget is not None:
                    budget.refresh_from_db()
                form = BudgetForm(request.POST, instance=budget)
                form.is_valid()
            else:
                messages.success(request, f"Saved {budget_name(saved)}.")
                if request.htmx:
                    return HttpResponseClientRedirect(reverse("spend:budget_list"))
                return redirect("spend:budget_list")
    else:
        form = BudgetForm(instance=budget, initial=None if budget else {"scope": _free_scope()})
    template = "tasks/spend/budget_form.html"
    return render(
        request, template + ("#form" if wants_fragment(request) else ""), {"form": form, "budget": budget}
    )


def _free_scope() -> str:
    return (
        Budget.Scope.PERSON if Budget.objects.filter(scope=Budget.Scope.TEAM).exists() else Budget.Scope.TEAM
    )


@permission_required("tasks.manage_budgets", raise_exception=True)
@require_http_methods(["GET", "POST"])
def budget_remove(request, pk: int):
    budget = get_object_or_404(Budget, pk=pk)
    if request.method == "POST":
        name = budget_name(budget)
        budget_delete(actor=request.user, budget=budget)
        messages.success(request, f"Deleted {name}.")
        if request.htmx:
            return HttpResponseClientRedirect(reverse("spend:budget_list"))
        return redirect("spend:budget_list")
    template = "tasks/spend/budget_delete.html"
    return render(request, template + ("#confirm" if wants_fragment(request) else ""), {"budget": budget})
