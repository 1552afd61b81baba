"""Forms of the spend and budgets pages."""

from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q

from tasks.form_fields import DayField
from tasks.models import Budget
from tasks.spend import periods
from tasks.upstream.providers import tag_problem


class SpendFilterForm(forms.Form):
    period = forms.ChoiceField(choices=periods.PERIOD_CHOICES, required=False, initial="this_month")
    date_from = DayField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = DayField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    by = forms.ChoiceField(
        choices=periods.GRANULARITY_CHOICES, required=False, initial="day", label="Over time by"
    )
    # The period the select showed when the page was drawn (the templates put it beside the select): a
    # select changed to a preset means that preset, whatever dates are still in the inputs.
    shown_period = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.notes: list[str] = []  # how the input was understood, shown beside the period

    def clean(self):
        data = super().clean()
        key, shown = data.get("period"), data.get("shown_period")
        if key and key != "custom" and shown and shown != key:
            data["date_from"] = data["date_to"] = None  # the dates of the period shown before
            self._show("date_from", "")
            self._show("date_to", "")
        if data.get("period") == "custom" and not (data.get("date_from") or data.get("date_to")):
            raise forms.ValidationError("Give a start or an end date for a custom period.")
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            # Reversed dates mean the period between them: swap them, in the inputs shown too.
            data["date_from"], data["date_to"] = end, start
            self._show("date_from", end.isoformat())
            self._show("date_to", start.isoformat())
            start, end = end, start
        if start and end and (end - start).days >= periods.MAX_PERIOD_DAYS:
            start = data["date_from"] = periods.period_custom(start=start, end=end).start
            self._show("date_from", start.isoformat())
            self.notes.append(f"A period is at most three years: this one starts on {start:%-d %b %Y}.")
        key = data.get("period")
        if key and key != "custom" and (start or end):
            # The select says "This month" until changed: dates typed beside a preset are a custom period,
            # unless they are the preset's own (the "Over time by" links carry them).
            preset = periods.period_preset(key)
            if (start or preset.start, end or preset.end) != (preset.start, preset.end):
                data["period"] = "custom"
                self._show("period", "custom")
        return data

    def _show(self, name: str, value: str) -> None:
        """Put a value as understood back into the input it came from."""
        self.data = self.data.copy()
        self.data[self.add_prefix(name)] = value

    def fallback_note(self) -> str:
        """What the report says above itself when the input could not be read and it shows this month
        instead (`chosen_period`): the dates it could not read, as typed, or that the period was wrong."""
        if not self.is_bound or self.is_valid():
            return ""
        dates = [
            f"“{self[name].value()}”"
            for name in ("date_from", "date_to")
            if name in self.errors and self[name].value()
        ]
        if not dates:
            return "The period asked for could not be read; showing this month."
        what = "The date" if len(dates) == 1 else "The dates"
        return f"{what} {' and '.join(dates)} could not be read; showing this month."

    def chosen_period(self) -> periods.Period:
        """The chosen period; this month when the input is missing or wrong."""
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        key = data.get("period") or ""
        start, end = data.get("date_from"), data.get("date_to")
        if key == "custom" or (not key and (start or end)):
            today = periods.local_today()
            return periods.period_custom(start=start or end or today, end=end or start or today)
        return periods.period_preset(key or "this_month")

    def chosen_granularity(self) -> str:
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        return data.get("by") or "day"


def _exact(value: Decimal, *, cents: bool = False) -> Decimal:
    """`value` without trailing zeros (12.345000 → 12.345, 80.000 → 80); money keeps two places (12.50)."""
    if cents and value == value.quantize(Decimal("0.01")):
        return value.quantize(Decimal("0.01"))
    return Decimal(f"{value.normalize():f}")


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
    # As precise as the stored values (tasks.models.Budget), so a page saved unchanged changes nothing.
    # Their ranges in the form's words, not Django's "Ensure that there are no more than 12 digits in total.".
    monthly_limit = forms.DecimalField(
        min_value=Decimal("0"),
        max_digits=12,
        decimal_places=6,
        label="Monthly limit (USD)",
        error_messages={
            "min_value": "A limit cannot be negative (0 refuses every submission it counts).",
            "max_digits": "Must be under $1,000,000.",
            "max_whole_digits": "Must be under $1,000,000.",
            "max_decimal_places": "At most 6 decimals.",
        },
    )
    warn_percent = forms.DecimalField(
        min_value=1,
        max_value=100,
        decimal_places=1,  # no max_digits: the range bounds them, and says so once
        initial=80,
        label="Warn at (% of the limit)",
        error_messages={
            "min_value": "Must be between 1 and 100.",
            "max_value": "Must be between 1 and 100.",
            "max_decimal_places": "At most one decimal, e.g. 82.5.",
        },
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active (enforced)")

    def __init__(self, *args, instance: Budget | None = None, **kwargs):
        self.instance = instance
        if instance is not None and kwargs.get("initial") is None:  # the edit view passes initial=None
            kwargs["initial"] = {
                "scope": instance.scope,
                "user": instance.user_id,
                "tag": instance.tag,
                "monthly_limit": _exact(instance.monthly_limit, cents=True),
                "warn_percent": _exact(instance.warn_ratio * 100),
                "is_active": instance.is_active,
            }
        super().__init__(*args, **kwargs)
        if instance is not None and instance.user_id is not None:
            # A person deactivated since keeps their own budget: it can still be lowered or switched off.
            people = get_user_model().objects.filter(Q(is_active=True) | Q(pk=instance.user_id))
            self.fields["user"].queryset = people.order_by("username")

    def clean_monthly_limit(self):
        limit = self.cleaned_data["monthly_limit"]
        return abs(limit) if limit.is_zero() else limit  # “-0” is a zero limit, not a negative one

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
