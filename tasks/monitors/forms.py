"""Forms of the monitor pages: the monitor itself, its alert destinations, its state."""

import contextlib
import dataclasses
import json
from datetime import UTC, datetime
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.template.defaultfilters import pluralize
from django.utils.text import slugify

from tasks.form_fields import DayField
from tasks.models import (
    Alert,
    AlertDestination,
    BrandSet,
    Credential,
    Monitor,
    PromptTemplateVersion,
    ProviderModel,
)
from tasks.monitors.alerts import BUDGET_KINDS, MONITOR_KINDS
from tasks.monitors.cadence import (
    NOT_ZONES,
    Cadence,
    CadenceError,
    every_n_days_start,
    time_zone_choices,
)
from tasks.monitors.destinations import emails_parse, webhook_url_check
from tasks.monitors.plans import run_plan
from tasks.monitors.requests import request_json_parse, request_summary
from tasks.monitors.selectors import monitor_last_editor
from tasks.prompt_templates.uploads import upload_rows
from tasks.spend.budgets import exact_usd
from tasks.upstream.providers import PROVIDERS, tag_problem

WEEKDAYS = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]
MAX_TARGETS = 20


def _cap_shown(cap: Decimal | None) -> Decimal | None:
    """A cap as its field takes it back: “1.00”, not the column's “1.000000” (refused as more than 2
    decimal places, so an unchanged edit page could not be saved). One set with more places (not through
    this form) is shown as it is, never rounded to another cap."""
    if cap is None:
        return None
    shown = cap.quantize(Decimal("0.01"))
    return shown if shown == cap else cap.normalize()


class MonitorForm(forms.Form):
    name = forms.CharField(max_length=150)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    template_version = forms.ModelChoiceField(
        queryset=PromptTemplateVersion.objects.none(),
        required=False,
        label="Prompt template version",
        help_text="Run a template over rows of variables…",
    )
    rows_text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        required=False,
        label="Rows (CSV)",
        help_text="A header line naming the template's variables, then one row per prompt as batches.",
    )
    rows_file = forms.FileField(required=False, label="…or upload a CSV file")
    user_prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        label="…or one prompt",
        help_text="One builder request: this prompt on each model.",
    )
    # One whole builder request (its fields in upstream names), carried from the builder or a task's page.
    request_json = forms.CharField(widget=forms.HiddenInput, required=False)
    request_provider = forms.CharField(widget=forms.HiddenInput, required=False)
    # When the monitor was last changed as this page was opened: a Save from an older page (a second tab)
    # is asked about before it replaces what was changed since.
    edited_at = forms.CharField(widget=forms.HiddenInput, required=False)
    targets = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Models",
        help_text="One model per line, optionally with “| credential name” (else the default credential); "
        "mix providers and credentials freely.",
    )
    tag = forms.CharField(
        max_length=255,
        required=False,
        help_text="Every run's tasks carry it (default: the slug). A new tag applies to the runs after "
        "saving; a Retry of an earlier run resends under that run's tag, counted against its budget.",
    )
    labels = forms.CharField(
        max_length=300, required=False, help_text="Comma-separated, added to every task."
    )
    cadence = forms.ChoiceField(choices=Monitor.Cadence.choices, initial=Monitor.Cadence.DAILY)
    time_of_day = forms.TimeField(
        required=False, initial="09:00", widget=forms.TimeInput(attrs={"type": "time"}), label="Time of day"
    )
    minute = forms.IntegerField(min_value=0, max_value=59, initial=0, required=False, label="Minute (hourly)")
    weekdays = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS, coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )
    interval_days = forms.IntegerField(min_value=1, max_value=365, required=False, label="Every N days")
    cron = forms.CharField(
        max_length=120, required=False, label="Cron expression", help_text="e.g. 0 9 * * 1-5"
    )
    time_zone = forms.ChoiceField(choices=(), initial="UTC")
    start_date = DayField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="No run before this day. “Every N days” counts from it; left blank, it is set on save to "
        "the day of the first run (the next time of day).",
    )
    end_date = DayField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    cap_per_run = forms.DecimalField(
        max_digits=12, decimal_places=2, min_value=0, required=False, label="Cap per run ($)"
    )
    cap_per_month = forms.DecimalField(
        max_digits=12, decimal_places=2, min_value=0, required=False, label="Cap per month ($)"
    )

    def __init__(self, *args, monitor: Monitor | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.monitor = monitor
        # A monitor keeps running on its version after its template is archived: its edit page keeps it.
        offered = Q(template__archived_at__isnull=True)
        if monitor is not None and monitor.template_version_id:
            offered |= Q(pk=monitor.template_version_id)
        self.fields["template_version"].queryset = PromptTemplateVersion.objects.filter(
            offered
        ).select_related("template")
        self.fields["template_version"].label_from_instance = lambda v: (
            f"{v.template.name} · v{v.number}" + (" (archived)" if v.template.archived_at else "")
        )
        zones = time_zone_choices()
        if monitor is not None and monitor.time_zone in NOT_ZONES:  # saved before it was withdrawn
            zones.append((monitor.time_zone, f"{monitor.time_zone} (the server's own zone: choose yours)"))
        self.fields["time_zone"].choices = zones
        self.plan = None
        self.cadence = None

    @staticmethod
    def initial_for_request(start) -> dict:
        """A new monitor of one builder request (`requests.RequestStart`), on the request's model."""
        fields = dict(start.fields)
        credential = f" | {start.credential.name}" if start.credential else ""
        return {
            "user_prompt": fields.pop("user_prompt", ""),
            "request_json": json.dumps(fields) if fields else "",
            "request_provider": start.provider,
            "targets": f"{start.model}{credential}" if start.model else "",
        }

    @property
    def request_summary(self) -> dict | None:
        """The summary of the request the form carries (bound or initial), for the page."""
        source = self.data if self.is_bound else self.initial
        try:
            fields = request_json_parse(source.get("request_json") or "")
        except ValidationError:
            return None
        return request_summary(self._provider(source.get("request_provider")), fields)

    @staticmethod
    def _provider(value) -> str:
        return value if value in PROVIDERS else "chat_gpt"

    def clean_request_json(self):
        return request_json_parse(self.cleaned_data.get("request_json") or "")

    def clean_request_provider(self):
        return self._provider(self.cleaned_data.get("request_provider"))

    @staticmethod
    def initial_for(monitor: Monitor) -> dict:
        names = dict(Credential.objects.values_list("pk", "name"))
        request = dict(monitor.request_fields or {})
        request.pop("user_prompt", None)
        return {
            "edited_at": monitor.updated_at.isoformat(),
            "name": monitor.name,
            "description": monitor.description,
            "template_version": monitor.template_version_id,
            "rows_text": monitor.rows_text,
            "user_prompt": (monitor.request_fields or {}).get("user_prompt", ""),
            "request_json": json.dumps(request) if request else "",
            "request_provider": monitor.request_provider,
            "targets": "\n".join(
                f"{t['model_name']} | {names.get(t.get('credential_id'), '?')}" for t in monitor.targets
            ),
            "tag": monitor.tag,
            "labels": ", ".join(monitor.labels),
            "cadence": monitor.cadence,
            "time_of_day": monitor.time_of_day,
            "minute": monitor.minute,
            "weekdays": monitor.weekdays,
            "interval_days": monitor.interval_days,
            "cron": monitor.cron,
            "time_zone": monitor.time_zone,
            "start_date": monitor.start_date,
            "end_date": monitor.end_date,
            "cap_per_run": _cap_shown(monitor.cap_per_run),
            "cap_per_month": _cap_shown(monitor.cap_per_month),
        }

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        slug = slugify(name)[:150]
        if not slug:
            raise ValidationError("Give a name with at least one letter or digit.")
        clash = Monitor.objects.filter(slug=slug)
        if self.monitor is not None:
            clash = clash.exclude(pk=self.monitor.pk)
        state = clash.values_list("state", flat=True).first()
        if state == Monitor.State.ARCHIVED:  # not in the list the person sees
            raise ValidationError(
                "An archived monitor has this name (under Archived in the monitors list); choose another."
            )
        if state is not None:
            raise ValidationError("Another monitor has this name.")
        return name

    def clean_tag(self):
        tag = self.cleaned_data["tag"].strip()
        problem = tag_problem(tag) if tag else None
        if problem:
            raise ValidationError(problem)
        return tag

    def clean_labels(self):
        return [name.strip()[:60] for name in self.cleaned_data["labels"].split(",") if name.strip()][:10]

    def clean_targets(self):
        lines = [line.strip() for line in self.cleaned_data["targets"].splitlines() if line.strip()]
        if not lines:
            raise ValidationError("Give at least one model.")
        if len(lines) > MAX_TARGETS:
            raise ValidationError(f"At most {MAX_TARGETS} models.")
        active = {c.name.lower(): c for c in Credential.objects.filter(is_active=True)}
        default = Credential.objects.filter(is_active=True).order_by("-is_default", "name").first()
        listed = set(ProviderModel.objects.filter(is_listed=True).values_list("model_name", flat=True))
        targets, errors = [], []
        for n, line in enumerate(lines, start=1):
            model, _, credential_name = (part.strip() for part in line.partition("|"))
            credential = active.get(credential_name.lower()) if credential_name else default
            if credential is None:
                errors.append(
                    f"Line {n}: no active credential is named “{credential_name}”."
                    if credential_name
                    else f"Line {n}: there is no active credential; add one first."
                )
                continue
            if listed and model not in listed:
                errors.append(f"Line {n}: “{model}” is not in the model catalog.")
                continue
            targets.append({"model_name": model[:100], "credential_id": credential.pk})
        if errors:
            raise ValidationError(errors)
        return targets

    def clean(self):
        data = super().clean()
        self._check_edited_since(data.get("edited_at") or "")
        upload = data.get("rows_file")
        if upload and (text := upload_rows(self, upload)) is not None:  # the batches' checks
            data["rows_text"] = text
        version, prompt = data.get("template_version"), (data.get("user_prompt") or "").strip()
        if bool(version) == bool(prompt):
            raise ValidationError("Choose a prompt template version or write one prompt (one of the two).")
        at_a_time = {Monitor.Cadence.DAILY, Monitor.Cadence.WEEKDAYS, Monitor.Cadence.EVERY_N_DAYS}
        if (
            data.get("cadence") in at_a_time
            and data.get("time_of_day") is None
            and "time_of_day" not in self.errors
        ):
            self.add_error("time_of_day", "Give the time of day it runs at.")
        if (
            data.get("cadence") == Monitor.Cadence.EVERY_N_DAYS
            and data.get("start_date") is None
            and "start_date" not in self.errors
        ):
            # Counted from the first run, as the saved monitor will be (an unknown zone is reported below).
            with contextlib.suppress(CadenceError):
                data["start_date"] = every_n_days_start(
                    time_of_day=data.get("time_of_day"),
                    time_zone=data.get("time_zone") or "UTC",
                    now=datetime.now(UTC),
                )
        cadence = Cadence(
            kind=data.get("cadence") or "",
            time_zone=data.get("time_zone") or "UTC",
            time_of_day=data.get("time_of_day"),
            minute=data.get("minute") or 0,
            weekdays=tuple(data.get("weekdays") or ()),
            interval_days=data.get("interval_days"),
            cron=data.get("cron") or "",
            start_date=data.get("start_date"),
            end_date=data.get("end_date"),
        )
        self._check_cadence(cadence, start_given=bool(self.data.get("start_date")))
        self.cadence = cadence
        # The plan (and so the estimate) does not depend on the monitor's name, description or labels.
        if "targets" in data and not set(self.errors) - {"name", "description", "labels"}:
            self.plan = run_plan(monitor=self.unsaved())
            if self.plan.errors:
                raise ValidationError(self.plan.errors[:20])
            self._check_caps(data)
        return data

    def _check_cadence(self, cadence: Cadence, *, start_given: bool) -> None:
        """A cadence that cannot run, said at the field that makes it so: the cron expression, the weekdays,
        the number of days, the end date (before the start date, or before any run is left)."""
        field = {
            Monitor.Cadence.CRON: "cron",
            Monitor.Cadence.WEEKDAYS: "weekdays",
            Monitor.Cadence.EVERY_N_DAYS: "interval_days",
        }.get(cadence.kind, "cadence")
        end = cadence.end_date
        try:
            if end is not None and cadence.start_date is not None and end < cadence.start_date:
                field = "end_date"
                if start_given:
                    raise CadenceError("The end date is before the start date.")
                raise CadenceError(f"No run is left by this end date ({end:%Y-%m-%d}): choose a later day.")
            cadence.check()
            if cadence.next_after(datetime.now(UTC)) is None:
                if end is not None and dataclasses.replace(cadence, end_date=None).next_after(
                    datetime.now(UTC)
                ):
                    field = "end_date"
                    raise CadenceError(
                        f"No run is left by this end date ({end:%Y-%m-%d}): choose a later day, or clear it."
                    )
                raise CadenceError("This cadence has no run left (check the expression).")
        except CadenceError as exc:
            if field not in self.errors:
                self.add_error(field, str(exc))

    def _check_edited_since(self, seen: str) -> None:
        """A page opened before the monitor's last change: say so, keep the input, and let the next Save
        (the page now carries the current time) replace that change knowingly."""
        if self.monitor is None or not seen:
            return
        current = self.monitor.updated_at.isoformat()
        if seen == current:
            return
        self.data = self.data.copy()
        self.data["edited_at"] = current
        by = monitor_last_editor(self.monitor)
        self.add_error(
            None,
            f"This monitor was changed{f' by {by}' if by else ''} since this page was opened (see its edit "
            "history). Your changes are kept below; Save again to replace that change with them.",
        )

    def _check_caps(self, data: dict) -> None:
        """A cap under one run's charge would skip every run (runs.py checks the same charge)."""
        charge, count = self.plan.charge, self.plan.task_count
        for name, per in (("cap_per_run", "per run"), ("cap_per_month", "per month")):
            cap = data.get(name)
            if cap is not None and charge > cap:
                self.add_error(
                    name,
                    f"One run costs up to {exact_usd(charge)} ({count} task{pluralize(count)}): over this "
                    f"cap of {exact_usd(cap)} {per}, every run would be skipped. Raise the cap, or run "
                    "fewer prompts or models.",
                )

    def unsaved(self) -> Monitor:
        """The monitor the form describes, not saved (for the plan and the estimate)."""
        data = self.cleaned_data
        prompt = (data.get("user_prompt") or "").strip()
        version = data.get("template_version")
        return Monitor(
            name=data.get("name", ""),
            template_version=version,
            rows_text=data.get("rows_text", "") if version else "",
            request_fields={**(data.get("request_json") or {}), "user_prompt": prompt}
            if not version
            else None,
            request_provider="" if version else data.get("request_provider") or "chat_gpt",
            targets=data.get("targets") or [],
            tag=data.get("tag") or slugify(data.get("name", ""))[:255],
            cadence=data.get("cadence") or Monitor.Cadence.DAILY,
            time_of_day=data.get("time_of_day"),
            minute=data.get("minute") or 0,
            weekdays=list(data.get("weekdays") or []),
            interval_days=data.get("interval_days"),
            cron=data.get("cron") or "",
            time_zone=data.get("time_zone") or "UTC",
            start_date=data.get("start_date"),
            end_date=data.get("end_date"),
            cap_per_run=data.get("cap_per_run"),
            cap_per_month=data.get("cap_per_month"),
            labels=data.get("labels") or [],
        )


class AlertKindsForm(forms.Form):
    """Which alert kinds a destination receives; none ticked is every kind (the default)."""

    alert_kinds = forms.MultipleChoiceField(
        choices=(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Alerts it receives",
        help_text="None ticked: every kind.",
    )

    def __init__(self, *args, scope: str = "monitor", **kwargs):
        super().__init__(*args, **kwargs)
        kinds = MONITOR_KINDS if scope == "monitor" else BUDGET_KINDS
        labels = dict(Alert.Kind.choices)
        self.fields["alert_kinds"].choices = [(kind.value, labels[kind]) for kind in kinds]
        if not self.is_bound and "alert_kinds" not in self.initial:
            self.initial["alert_kinds"] = [kind.value for kind in kinds]

    def clean_alert_kinds(self):
        chosen = self.cleaned_data.get("alert_kinds") or []
        everything = [value for value, _label in self.fields["alert_kinds"].choices]
        # Every kind ticked is stored as "every kind", so a kind added later reaches it too.
        return [] if set(chosen) >= set(everything) else [k for k in everything if k in chosen]


class DestinationForm(AlertKindsForm):
    kind = forms.ChoiceField(choices=AlertDestination.Kind.choices)
    emails = forms.CharField(
        max_length=500, required=False, label="Email addresses", help_text="Comma-separated."
    )
    url = forms.URLField(max_length=1000, required=False, label="Webhook URL", assume_scheme="https")

    def clean(self):
        data = super().clean()
        if data.get("kind") == AlertDestination.Kind.EMAIL:
            try:
                data["emails"] = ", ".join(emails_parse(data.get("emails") or ""))
            except ValidationError as exc:
                self.add_error("emails", exc)
        elif "url" in data:
            if not data.get("url"):
                self.add_error("url", "Give the webhook's URL.")
            else:
                try:
                    webhook_url_check(data["url"])
                except ValidationError as exc:
                    self.add_error("url", exc)
        return data


class StateForm(forms.Form):
    action = forms.ChoiceField(choices=[("pause", "Pause"), ("resume", "Resume"), ("archive", "Archive")])


class BrandSetForm(forms.Form):
    """A brand set to read the monitor's answers with (it then reads the monitor's tag)."""

    brand_set = forms.ModelChoiceField(queryset=BrandSet.objects.order_by("name"), label="Brand set")
