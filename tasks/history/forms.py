"""The task list's filter form. Its field names are the list's stable query parameters (docs/history.md):
the spend pages and the admin link to the list with them.

A field that does not validate is reported and ignored; the other filters still apply.
"""

import uuid

from django import forms
from django.contrib.auth import get_user_model
from django.template.defaultfilters import pluralize
from django.utils import timezone
from django.utils.text import normalize_newlines

from tasks.form_fields import DayField
from tasks.history.selectors import IN_PROGRESS
from tasks.models import Batch, Credential, PromptTemplate, Provider, Task
from tasks.prompt_templates.selectors import batch_choices

SORTS = [
    ("-created", "Newest first"),
    ("created", "Oldest first"),
    ("-cost", "Most expensive first"),
    ("cost", "Cheapest first"),
]


class ReadAtOnceChoiceIterator(forms.models.ModelChoiceIterator):
    """The choices read with one plain query. Django reads a ModelChoiceField's queryset with .iterator():
    on PostgreSQL a server-side cursor (WITH HOLD outside a transaction), three round trips per field."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in self.queryset.all():
            yield self.choice(obj)


class FilterChoiceField(forms.ModelChoiceField):
    iterator = ReadAtOnceChoiceIterator


class PersonChoiceField(FilterChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.get_username()


# The cost filters' messages: what a money column holds, in dollars (Django's defaults count digits).
COST_ERRORS = {
    "invalid": "Enter an amount in dollars, e.g. 0.05.",
    "min_value": "Give an amount of $0 or more.",
    "max_digits": "At most $999,999.999999.",
    "max_whole_digits": "At most $999,999.999999.",
    "max_decimal_places": "At most 6 decimal places.",
}


def _not_found(thing: str) -> dict:
    return {"invalid_choice": f"No such {thing}."}


class TaskFilterForm(forms.Form):
    q = forms.CharField(
        label="Search",
        required=False,
        max_length=200,
        widget=forms.SearchInput(attrs={"placeholder": "prompt or answer"}),
    )
    provider = forms.ChoiceField(
        label="Provider", required=False, choices=[("", "Any provider"), *Provider.choices]
    )
    mode = forms.ChoiceField(
        label="Sent as", required=False, choices=[("", "Queued or live"), *Task.Mode.choices]
    )
    model = forms.CharField(label="Model", required=False, max_length=100)
    model_requested = forms.BooleanField(
        label="Model as asked for",
        required=False,
        help_text="Only the tasks that asked for this model name, not those the upstream answered with it.",
    )
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[("", "Any status"), (IN_PROGRESS, "In progress"), *Task.Status.choices],
    )
    # Not stripped: a tag stored with spaces around it (admin, shell) is found by the links to it.
    tag = forms.CharField(label="Tag", required=False, max_length=255, strip=False)
    label = forms.CharField(label="Label", required=False, max_length=60)
    person = PersonChoiceField(
        label="Submitted by",
        required=False,
        queryset=get_user_model().objects.order_by("username"),
        empty_label="Anyone",
        error_messages=_not_found("person"),
    )
    credential = FilterChoiceField(
        label="Credential",
        required=False,
        queryset=Credential.objects.order_by("name"),
        empty_label="Any credential",
        error_messages=_not_found("credential"),
    )
    template = FilterChoiceField(
        label="Template",
        required=False,
        queryset=PromptTemplate.objects.order_by("name"),
        empty_label="Any template",
        error_messages=_not_found("template"),
    )
    batch = forms.ChoiceField(
        label="Batch",
        required=False,
        error_messages=_not_found("batch"),
    )
    date_from = DayField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = DayField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    cost_min = forms.DecimalField(
        label="Cost ≥ $",
        required=False,
        min_value=0,
        max_digits=12,
        decimal_places=6,
        error_messages=COST_ERRORS,
        widget=forms.NumberInput(attrs={"step": "any"}),
    )
    cost_max = forms.DecimalField(
        label="Cost ≤ $",
        required=False,
        min_value=0,
        max_digits=12,
        decimal_places=6,
        error_messages=COST_ERRORS,
        widget=forms.NumberInput(attrs={"step": "any"}),
    )
    stale = forms.BooleanField(
        label="Waiting over 30 min",
        required=False,
        help_text="Still queued, being sent, submitted or pending 30 minutes after it was created.",
    )
    provisional = forms.BooleanField(
        label="Cost not final yet",
        required=False,
        help_text="The task's spend may still change: being sent, waiting for its result, or reply lost.",
    )
    sort = forms.ChoiceField(label="Sort", required=False, choices=SORTS)
    after = forms.CharField(label="Page link", required=False, widget=forms.HiddenInput, max_length=300)
    before = forms.CharField(label="Page link", required=False, widget=forms.HiddenInput, max_length=300)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        selected = _uuid_or_none(self.data.get("batch")) if self.is_bound else None
        self.fields["batch"].choices = [
            ("", "Any batch"),
            *((str(batch.pk), batch_label(batch)) for batch in batch_choices(selected=selected)),
        ]

    def clean_tag(self) -> str:
        tag = self.cleaned_data.get("tag", "")
        return tag if tag.strip() else ""

    def clean_batch(self):
        return _uuid_or_none(self.cleaned_data.get("batch"))

    def clean(self):
        cleaned = super().clean()
        date_from, date_to = cleaned.get("date_from"), cleaned.get("date_to")
        if date_from and date_to and date_from > date_to:
            self.add_error("date_to", "“To” is before “From”.")
        cost_min, cost_max = cleaned.get("cost_min"), cleaned.get("cost_max")
        if cost_min is not None and cost_max is not None and cost_min > cost_max:
            self.add_error("cost_max", "The maximum is below the minimum.")
        return cleaned

    def filters(self) -> dict:
        """The valid filters, as keyword arguments for selectors.task_filter; invalid ones dropped."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        keys = (
            "q",
            "provider",
            "mode",
            "model",
            "status",
            "tag",
            "label",
            "person",
            "credential",
            "template",
            "batch",
            "date_from",
            "date_to",
            "cost_min",
            "cost_max",
        )
        filters = {key: data[key] for key in keys if key in data and data[key] not in (None, "")}
        if data.get("model_requested") and filters.get("model"):
            filters["model_requested"] = True
        if data.get("stale"):
            filters["stale"] = True
        if data.get("provisional"):
            filters["provisional"] = True
        return filters

    @property
    def sort_value(self) -> str:
        data = getattr(self, "cleaned_data", {})
        return data.get("sort") or "-created"


def batch_label(batch: Batch) -> str:
    """How the batch picker names a batch: its name, template and time."""
    made = timezone.localtime(batch.created_at).strftime("%Y-%m-%d %H:%M")
    version = batch.template_version
    template = f" · {version.template.name} v{version.number}" if version is not None else ""
    return f"{batch}{template} · {made} · {batch.task_count} task{pluralize(batch.task_count)}"


def _uuid_or_none(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


class TaskEditForm(forms.Form):
    labels = forms.CharField(
        label="Labels",
        required=False,
        max_length=2000,
        help_text="Comma-separated, e.g. “baseline, q3-review”. Each label up to 60 characters.",
    )
    note = forms.CharField(
        label="Note", required=False, max_length=10000, widget=forms.Textarea(attrs={"rows": 3})
    )

    def clean_note(self) -> str:
        # Browsers post a textarea's line breaks as CRLF; the note keeps them as LF.
        return normalize_newlines(self.cleaned_data["note"])

    def clean_labels(self) -> list[str]:
        names = []
        for raw in self.cleaned_data["labels"].split(","):
            name = " ".join(raw.split())
            if not name:
                continue
            if len(name) > 60:
                raise forms.ValidationError(f"“{name[:20]}…” is longer than 60 characters.")
            if name not in names:
                names.append(name)
        return names


class TaskResolveForm(forms.Form):
    """An Admin resolving a task whose reply was lost: fetch it by its upstream id, or mark it as never
    charged (tasks.submission.reconcile). The button pressed is `action`."""

    FETCH = "fetch"
    NEVER_CHARGED = "never_charged"

    upstream_task_id = forms.CharField(
        label="Upstream task id",
        required=False,
        max_length=128,
        help_text="From the upstream's account, e.g. found by the tag. The product checks it with task_get.",
    )
    reason = forms.CharField(
        label="Reason",
        max_length=300,
        help_text="Kept in the audit log, e.g. where the id or the missing charge was found.",
    )
    action = forms.ChoiceField(
        choices=[(FETCH, "Fetch and complete"), (NEVER_CHARGED, "Mark as never charged")],
        widget=forms.HiddenInput,
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("action") == self.FETCH and not cleaned.get("upstream_task_id", "").strip():
            self.add_error("upstream_task_id", "Enter the upstream task id to fetch.")
        return cleaned
