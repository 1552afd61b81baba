"""Admin pages: spend review (+ CSV and balance), budgets, credentials, people and the audit log.

Every view checks its permission itself (a Member gets 403, for a fragment too). htmx requests get
the page's fragment, other requests the whole page; plain POSTs redirect after success.
"""

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from tasks import charts, people, spend
from tasks.accounts import locked_out_usernames
from tasks.audit import audit_change_lines, audit_choices, audit_entries
from tasks.budgets import budget_delete, budget_save, budgets_usage
from tasks.credentials import (
    credential_balances,
    credential_create,
    credential_disable,
    credential_enable,
    credential_replace_secret,
    credential_secret_check,
    credential_set_default,
    credential_update,
    credential_verify_audited,
)
from tasks.csv_export import csv_response, money
from tasks.models import Budget, Credential
from tasks.providers import tag_problem
from tasks.roles import ADMINS, MEMBERS

# --- Forms ------------------------------------------------------------------------------------------


class SpendFilterForm(forms.Form):
    period = forms.ChoiceField(choices=spend.PERIOD_CHOICES, required=False, initial="this_month")
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    by = forms.ChoiceField(
        choices=spend.GRANULARITY_CHOICES, required=False, initial="day", label="Over time by"
    )

    def clean(self):
        data = super().clean()
        if data.get("period") == "custom" and not (data.get("date_from") or data.get("date_to")):
            raise forms.ValidationError("Give a start or an end date for a custom period.")
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            # Reversed dates mean the period between them: swap them, in the inputs shown too.
            data["date_from"], data["date_to"] = end, start
            self.data = self.data.copy()
            self.data[self.add_prefix("date_from")] = end.isoformat()
            self.data[self.add_prefix("date_to")] = start.isoformat()
        return data

    def chosen_period(self) -> spend.Period:
        """The chosen period; this month when the input is missing or wrong."""
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        key = data.get("period") or ""
        start, end = data.get("date_from"), data.get("date_to")
        if key == "custom" or (not key and (start or end)):
            today = spend.local_today()
            return spend.period_custom(start=start or end or today, end=end or start or today)
        return spend.period_preset(key or "this_month")

    def chosen_granularity(self) -> str:
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        return data.get("by") or "day"


class BudgetForm(forms.Form):
    scope = forms.ChoiceField(
        choices=Budget.Scope.choices, widget=forms.RadioSelect, initial=Budget.Scope.TEAM
    )
    user = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        required=False,
        label="Person",
        help_text="For a person's budget.",
    )
    tag = forms.CharField(max_length=255, required=False, help_text="For a tag's budget: the exact tag.")
    monthly_limit = forms.DecimalField(
        min_value=Decimal("0"), max_digits=12, decimal_places=2, label="Monthly limit (USD)"
    )
    warn_percent = forms.IntegerField(
        min_value=1, max_value=100, initial=80, label="Warn at (% of the limit)"
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active (enforced)")

    def __init__(self, *args, instance: Budget | None = None, **kwargs):
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "scope": instance.scope,
                "user": instance.user_id,
                "tag": instance.tag,
                "monthly_limit": instance.monthly_limit.quantize(Decimal("0.01")),
                "warn_percent": int(instance.warn_ratio * 100),
                "is_active": instance.is_active,
            }
        super().__init__(*args, **kwargs)

    def clean(self):
        data = super().clean()
        scope, user, tag = data.get("scope"), data.get("user"), (data.get("tag") or "").strip()
        data["tag"] = tag
        others = Budget.objects.exclude(pk=self.instance.pk) if self.instance else Budget.objects.all()
        if scope == Budget.Scope.PERSON:
            if user is None:
                self.add_error("user", "Choose the person this budget is for.")
            elif others.filter(scope=scope, user=user).exists():
                self.add_error("user", f"{user} already has a budget; edit that one.")
        elif scope == Budget.Scope.TAG:
            if not tag:
                self.add_error("tag", "Give the tag this budget is for.")
            elif tag_problem(tag):
                self.add_error("tag", tag_problem(tag))
            elif others.filter(scope=scope, tag=tag).exists():
                self.add_error("tag", f"The tag “{tag}” already has a budget; edit that one.")
        elif scope == Budget.Scope.TEAM and others.filter(scope=scope).exists():
            self.add_error("scope", "There is already a team budget; edit that one.")
        return data


class CredentialForm(forms.Form):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=Credential.Kind.choices, widget=forms.RadioSelect, initial="aisa")
    login = forms.CharField(
        max_length=200, required=False, help_text="DataForSEO direct only: the API login."
    )
    secret = forms.CharField(
        label="Secret",
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="The AIsa API key, or the DataForSEO API password. Stored encrypted; never shown again.",
    )
    base_url = forms.URLField(
        max_length=300,
        required=False,
        label="Base URL",
        help_text="Leave empty for the provider's public URL.",
    )
    price_multiplier = forms.DecimalField(
        initial=Decimal("1"),
        min_value=Decimal("0.001"),
        max_digits=6,
        decimal_places=3,
        help_text="What this route charges relative to DataForSEO's list price (AIsa may bill 2×).",
    )
    calls_per_minute = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=100_000,
        label="Calls per minute",
        help_text="The most task_post calls a minute with this key, shared by every worker. Empty: 2,000 "
        "for DataForSEO direct; for AIsa, set the key's own limit if it has one.",
    )
    is_default = forms.BooleanField(required=False, label="Make this the default credential")
    save_unverified = forms.BooleanField(
        required=False,
        label="Save without verifying",
        help_text="The upstream did not answer, so the secret could not be checked. Tick this, type the "
        "secret again and save; verify it from the list once the upstream is back.",
    )

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if Credential.objects.filter(name__iexact=name).exists():
            raise forms.ValidationError("A credential with this name exists.")
        return name

    def clean(self):
        data = super().clean()
        if data.get("kind") == Credential.Kind.DATAFORSEO and not (data.get("login") or "").strip():
            self.add_error("login", "DataForSEO direct needs the API login.")
        return data


class CredentialSettingsForm(forms.Form):
    name = forms.CharField(max_length=100)
    base_url = CredentialForm.base_fields["base_url"]
    price_multiplier = CredentialForm.base_fields["price_multiplier"]
    calls_per_minute = CredentialForm.base_fields["calls_per_minute"]

    def __init__(self, *args, credential: Credential, **kwargs):
        self.credential = credential
        kwargs.setdefault(
            "initial",
            {
                "name": credential.name,
                "base_url": credential.base_url,
                "price_multiplier": credential.price_multiplier,
                "calls_per_minute": credential.calls_per_minute,
            },
        )
        super().__init__(*args, **kwargs)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if Credential.objects.filter(name__iexact=name).exclude(pk=self.credential.pk).exists():
            raise forms.ValidationError("A credential with this name exists.")
        return name


class CredentialSecretForm(forms.Form):
    login = forms.CharField(
        max_length=200, required=False, help_text="DataForSEO direct only: the API login."
    )
    secret = forms.CharField(
        label="New secret",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    save_unverified = CredentialForm.base_fields["save_unverified"]

    def __init__(self, *args, credential: Credential, **kwargs):
        self.credential = credential
        kwargs.setdefault("initial", {"login": credential.login})
        super().__init__(*args, **kwargs)
        if credential.kind != Credential.Kind.DATAFORSEO:
            del self.fields["login"]

    def clean(self):
        data = super().clean()
        if "login" in self.fields and not (data.get("login") or "").strip():
            self.add_error("login", "DataForSEO direct needs the API login.")
        return data


class PersonForm(forms.Form):
    username = forms.RegexField(
        regex=r"^[\w.@+-]+\Z",
        max_length=150,
        error_messages={"invalid": "Letters, digits and @ . + - _ only."},
    )
    email = forms.EmailField(required=False)
    role = forms.ChoiceField(choices=people.ROLE_CHOICES, widget=forms.RadioSelect, initial=MEMBERS)

    def clean_username(self):
        username = self.cleaned_data["username"]
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("Someone with this username exists.")
        return username


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=[(MEMBERS, "Member"), (ADMINS, "Admin")])


class AuditFilterForm(forms.Form):
    actor = forms.ModelChoiceField(
        queryset=get_user_model().objects.order_by("username"), required=False, empty_label="Anyone"
    )
    action = forms.ChoiceField(required=False)
    object_type = forms.ChoiceField(required=False, label="Object")
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    q = forms.CharField(required=False, label="Search", max_length=100)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        actions, types = audit_choices()
        self.fields["action"].choices = [("", "Any action"), *((a, a) for a in actions)]
        self.fields["object_type"].choices = [("", "Any object"), *((t, t) for t in types)]


# --- Spend ------------------------------------------------------------------------------------------


# A breakdown with hundreds of groups (tags) shows its largest ones and a "Show all" link on the page;
# the CSV export always has every row.
PAGE_ROWS = 20


def _spend_report(request, *, for_page: bool = False) -> dict:
    form = SpendFilterForm(request.GET or None)
    period = form.chosen_period()
    granularity = form.chosen_granularity()
    total, breakdowns = spend.spend_report(period=period, granularity=granularity)
    if for_page:
        expanded = set(request.GET.getlist("all"))
        for breakdown in breakdowns:
            if breakdown.key in ("day", "week", "month"):
                breakdown.chart = charts.column_chart(
                    breakdown.rows, title=f"Spend {breakdown.title.lower()}"
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
        "presets": [(key, label) for key, label in spend.PERIOD_CHOICES if key != "custom"],
        "export_url": reverse("spend_export") + (f"?{query}" if query else ""),
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
    template = "tasks/spend/page.html#report" if request.htmx else "tasks/spend/page.html"
    return render(request, template, context)


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
    template = "tasks/spend/balance.html#balance" if request.htmx else "tasks/spend/balance.html"
    return render(request, template, context)


# --- Budgets ----------------------------------------------------------------------------------------


@permission_required("tasks.manage_budgets", raise_exception=True)
@require_GET
def budget_list(request):
    usages = budgets_usage()
    context = {"usages": usages, "has_team_budget": any(u.budget.scope == Budget.Scope.TEAM for u in usages)}
    template = "tasks/admin_pages/budgets.html#table" if request.htmx else "tasks/admin_pages/budgets.html"
    return render(request, template, context)


@permission_required("tasks.manage_budgets", raise_exception=True)
@require_http_methods(["GET", "POST"])
def budget_edit(request, pk: int | None = None):
    budget = get_object_or_404(Budget, pk=pk) if pk is not None else None
    if request.method == "POST":
        form = BudgetForm(request.POST, instance=budget)
        if form.is_valid():
            data = form.cleaned_data
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
            messages.success(request, f"{saved} saved.")
            if request.htmx:
                return HttpResponseClientRedirect(reverse("budget_list"))
            return redirect("budget_list")
    else:
        form = BudgetForm(instance=budget, initial=None if budget else {"scope": _free_scope()})
    template = "tasks/admin_pages/budget_form.html"
    return render(request, template + ("#form" if request.htmx else ""), {"form": form, "budget": budget})


def _free_scope() -> str:
    return (
        Budget.Scope.PERSON if Budget.objects.filter(scope=Budget.Scope.TEAM).exists() else Budget.Scope.TEAM
    )


@permission_required("tasks.manage_budgets", raise_exception=True)
@require_http_methods(["GET", "POST"])
def budget_remove(request, pk: int):
    budget = get_object_or_404(Budget, pk=pk)
    if request.method == "POST":
        name = str(budget)
        budget_delete(actor=request.user, budget=budget)
        messages.success(request, f"{name} deleted.")
        if request.htmx:
            return HttpResponseClientRedirect(reverse("budget_list"))
        return redirect("budget_list")
    template = "tasks/admin_pages/budget_delete.html"
    return render(request, template + ("#confirm" if request.htmx else ""), {"budget": budget})


# --- Credentials ------------------------------------------------------------------------------------


def _credentials_context() -> dict:
    return {"credentials": Credential.objects.order_by("-is_active", "-is_default", "name")}


@permission_required("tasks.manage_credentials", raise_exception=True)
@require_GET
def credential_list(request):
    template = (
        "tasks/admin_pages/credentials.html#table" if request.htmx else "tasks/admin_pages/credentials.html"
    )
    return render(request, template, _credentials_context())


@permission_required("tasks.manage_credentials", raise_exception=True)
@require_http_methods(["GET", "POST"])
def credential_add(request):
    offer_unverified = False
    if request.method == "POST":
        form = CredentialForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            check = None
            if not data["save_unverified"]:
                check = credential_secret_check(
                    kind=data["kind"],
                    secret=data["secret"],
                    login=data["login"].strip(),
                    base_url=data["base_url"],
                )
                offer_unverified = _refuse_unless_accepted(form, check)
            if not form.errors:
                credential = credential_create(
                    actor=request.user,
                    name=data["name"],
                    kind=data["kind"],
                    secret=data["secret"],
                    base_url=data["base_url"],
                    login=data["login"].strip(),
                    price_multiplier=data["price_multiplier"],
                    calls_per_minute=data["calls_per_minute"],
                    is_default=data["is_default"],
                    check=check,
                )
                messages.success(
                    request,
                    f"Credential “{credential.name}” saved{_ends_in(credential, 'its secret ends in')}. "
                    + _check_outcome(check),
                )
                if request.htmx:
                    return HttpResponseClientRedirect(reverse("credential_list"))
                return redirect("credential_list")
    else:
        form = CredentialForm()
    template = "tasks/admin_pages/credential_form.html"
    context = {"form": form, "offer_unverified": offer_unverified or form["save_unverified"].value()}
    return render(request, template + ("#form" if request.htmx else ""), context)


def _refuse_unless_accepted(form, check) -> bool:
    """Put a refused secret check on the form; return whether to offer saving without verifying."""
    if check.ok:
        return False
    if check.upstream_down:
        form.add_error(None, f"Not saved: the secret could not be checked. {check.message}")
        return True
    form.add_error("secret", f"Not saved: the upstream did not accept it. {check.message}")
    return False


def _ends_in(credential, words: str) -> str:
    """ "; <words> …WXYZ" for a long secret; nothing for one of 8 characters or fewer (never shown)."""
    return f"; {words} {credential.secret_ending}" if credential.secret_hint else ""


def _check_outcome(check) -> str:
    if check is None:
        return "It was saved without verifying: verify it once the upstream answers."
    return "The upstream accepted it."


@permission_required("tasks.manage_credentials", raise_exception=True)
@require_http_methods(["GET", "POST"])
def credential_edit(request, pk: int):
    credential = get_object_or_404(Credential, pk=pk)
    settings_form = CredentialSettingsForm(credential=credential)
    secret_form = CredentialSecretForm(credential=credential)
    offer_unverified = False
    if request.method == "POST":
        if request.POST.get("form") == "secret":
            secret_form = CredentialSecretForm(request.POST, credential=credential)
            if secret_form.is_valid():
                data = secret_form.cleaned_data
                login = (data.get("login") or "").strip() or None
                check = None
                if not data["save_unverified"]:
                    check = credential_secret_check(
                        kind=credential.kind,
                        secret=data["secret"],
                        login=login or credential.login,
                        base_url=credential.base_url,
                    )
                    offer_unverified = _refuse_unless_accepted(secret_form, check)
                if not secret_form.errors:
                    credential_replace_secret(
                        actor=request.user,
                        credential=credential,
                        secret=data["secret"],
                        login=login,
                        check=check,
                    )
                    messages.success(
                        request,
                        f"The secret of “{credential.name}” was replaced"
                        + _ends_in(credential, "it now ends in")
                        + ". "
                        + _check_outcome(check),
                    )
                    return _back_to_credentials(request)
        else:
            settings_form = CredentialSettingsForm(request.POST, credential=credential)
            if settings_form.is_valid():
                data = settings_form.cleaned_data
                credential_update(
                    actor=request.user,
                    credential=credential,
                    name=data["name"],
                    base_url=data["base_url"],
                    login=credential.login,
                    price_multiplier=data["price_multiplier"],
                    calls_per_minute=data["calls_per_minute"],
                )
                messages.success(request, f"“{credential.name}” saved.")
                return _back_to_credentials(request)
    context = {
        "credential": credential,
        "settings_form": settings_form,
        "secret_form": secret_form,
        "offer_unverified": offer_unverified or secret_form["save_unverified"].value(),
    }
    template = "tasks/admin_pages/credential_edit.html"
    return render(request, template + ("#forms" if request.htmx else ""), context)


def _back_to_credentials(request):
    if request.htmx:
        return HttpResponseClientRedirect(reverse("credential_list"))
    return redirect("credential_list")


def _credential_row(request, credential: Credential):
    """htmx: the credential's updated row; otherwise back to the list (PRG)."""
    if request.htmx:
        credential.refresh_from_db()
        return render(request, "tasks/admin_pages/credentials.html#row", {"credential": credential})
    return redirect("credential_list")


@permission_required("tasks.manage_credentials", raise_exception=True)
@require_POST
def credential_verify(request, pk: int):
    credential = get_object_or_404(Credential, pk=pk)
    ok, message = credential_verify_audited(actor=request.user, credential=credential)
    if not request.htmx:
        (messages.success if ok else messages.error)(request, f"{credential.name}: {message}")
    return _credential_row(request, credential)


@permission_required("tasks.manage_credentials", raise_exception=True)
@require_POST
def credential_default(request, pk: int):
    credential = get_object_or_404(Credential, pk=pk)
    if not credential.is_active:
        messages.error(request, "A disabled credential cannot be the default; enable it first.")
    else:
        credential_set_default(actor=request.user, credential=credential)
        messages.success(request, f"“{credential.name}” is now the default credential.")
    return _back_to_credentials(request)


@permission_required("tasks.manage_credentials", raise_exception=True)
@require_POST
def credential_disable_view(request, pk: int):
    credential = get_object_or_404(Credential, pk=pk)
    if request.POST.get("enable"):
        credential_enable(actor=request.user, credential=credential)
        messages.success(request, f"“{credential.name}” is enabled again.")
    else:
        credential_disable(actor=request.user, credential=credential)
        messages.success(request, f"“{credential.name}” is disabled: it can no longer be used for new tasks.")
    return _back_to_credentials(request)


# --- People -----------------------------------------------------------------------------------------

SESSION_NEW_PASSWORD = "people.one_time_password"  # noqa: S105 - a session key, not a password


@permission_required("tasks.manage_people", raise_exception=True)
@require_GET
def people_page(request):
    persons = list(people.people_list())
    locked = locked_out_usernames()
    now = timezone.now()
    for person in persons:
        person.role = people.person_role(person)
        person.role_label = people.ROLES.get(person.role, "No role")
        person.locked_out = person.get_username() in locked
        one_time = getattr(person, "one_time_password", None)
        person.one_time_until = one_time.expires_at if one_time else None
        person.one_time_expired = bool(one_time) and one_time.expires_at <= now
    context = {
        "persons": persons,
        # Shown once: popped from the session as it is displayed.
        "new_password": request.session.pop(SESSION_NEW_PASSWORD, None),
        "one_time_hours": people.one_time_password_hours(),
        "role_choices": [(MEMBERS, "Member"), (ADMINS, "Admin")],
    }
    template = "tasks/admin_pages/people.html#table" if request.htmx else "tasks/admin_pages/people.html"
    response = render(request, template, context)
    if context["new_password"]:
        response["Cache-Control"] = "no-store"
    return response


@permission_required("tasks.manage_people", raise_exception=True)
@require_http_methods(["GET", "POST"])
def person_create(request):
    if request.method == "POST":
        form = PersonForm(request.POST)
        if form.is_valid():
            try:
                user, password = people.person_create(
                    actor=request.user,
                    username=form.cleaned_data["username"],
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                )
            except people.PersonError as exc:
                form.add_error(None, str(exc))
            else:
                request.session[SESSION_NEW_PASSWORD] = {"username": user.username, "password": password}
                if request.htmx:
                    return HttpResponseClientRedirect(reverse("people"))
                return redirect("people")
    else:
        form = PersonForm()
    template = "tasks/admin_pages/person_form.html"
    context = {"form": form, "one_time_hours": people.one_time_password_hours()}
    return render(request, template + ("#form" if request.htmx else ""), context)


@permission_required("tasks.manage_people", raise_exception=True)
@require_POST
def person_role(request, pk: int):
    person = get_object_or_404(get_user_model(), pk=pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role: Member or Admin.")
    else:
        try:
            people.person_set_role(actor=request.user, person=person, role=form.cleaned_data["role"])
            messages.success(request, f"{person.username} is now {people.ROLES[form.cleaned_data['role']]}.")
        except people.PersonError as exc:
            messages.error(request, str(exc))
    return _back_to_people(request)


@permission_required("tasks.manage_people", raise_exception=True)
@require_POST
def person_active(request, pk: int):
    person = get_object_or_404(get_user_model(), pk=pk)
    active = request.POST.get("active") == "1"
    try:
        people.person_set_active(actor=request.user, person=person, active=active)
        messages.success(request, f"{person.username} is {'active again' if active else 'deactivated'}.")
    except people.PersonError as exc:
        messages.error(request, str(exc))
    return _back_to_people(request)


@permission_required("tasks.manage_people", raise_exception=True)
@require_POST
def person_password(request, pk: int):
    person = get_object_or_404(get_user_model(), pk=pk)
    password = people.person_reset_password(actor=request.user, person=person)
    request.session[SESSION_NEW_PASSWORD] = {"username": person.username, "password": password}
    return _back_to_people(request)


@permission_required("tasks.manage_people", raise_exception=True)
@require_POST
def person_unlock(request, pk: int):
    person = get_object_or_404(get_user_model(), pk=pk)
    people.person_unlock(actor=request.user, person=person)
    messages.success(request, f"{person.username} can log in again (failed attempts cleared).")
    return _back_to_people(request)


def _back_to_people(request):
    if request.htmx:
        return HttpResponseClientRedirect(reverse("people"))
    return redirect("people")


# --- Audit log --------------------------------------------------------------------------------------


@permission_required("tasks.view_audit", raise_exception=True)
@require_GET
def audit_log(request):
    form = AuditFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_bound and form.is_valid() else {}
    entries = audit_entries(
        actor_id=filters["actor"].pk if filters.get("actor") else None,
        action=filters.get("action") or "",
        object_type=filters.get("object_type") or "",
        date_from=filters.get("date_from"),
        date_to=filters.get("date_to"),
        q=filters.get("q") or "",
    )
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    for entry in page:
        entry.change_lines = audit_change_lines(entry)
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode(), "now": timezone.now()}
    template = "tasks/admin_pages/audit.html#entries" if request.htmx else "tasks/admin_pages/audit.html"
    return render(request, template, context)


urlpatterns = [
    path("spend/", spend_page, name="spend"),
    path("spend/export.csv", spend_export, name="spend_export"),
    path("spend/balance/", balance, name="balance"),
    path("budgets/", budget_list, name="budget_list"),
    path("budgets/new/", budget_edit, name="budget_create"),
    path("budgets/<int:pk>/", budget_edit, name="budget_edit"),
    path("budgets/<int:pk>/delete/", budget_remove, name="budget_delete"),
    path("credentials/", credential_list, name="credential_list"),
    path("credentials/new/", credential_add, name="credential_add"),
    path("credentials/<int:pk>/", credential_edit, name="credential_edit"),
    path("credentials/<int:pk>/secret/", credential_edit, name="credential_replace"),
    path("credentials/<int:pk>/verify/", credential_verify, name="credential_verify"),
    path("credentials/<int:pk>/default/", credential_default, name="credential_default"),
    path("credentials/<int:pk>/disable/", credential_disable_view, name="credential_disable"),
    path("people/", people_page, name="people"),
    path("people/new/", person_create, name="person_create"),
    path("people/<int:pk>/role/", person_role, name="person_role"),
    path("people/<int:pk>/active/", person_active, name="person_active"),
    path("people/<int:pk>/password/", person_password, name="person_password"),
    path("people/<int:pk>/unlock/", person_unlock, name="person_unlock"),
    path("audit/", audit_log, name="audit_log"),
]
