"""The request builder: the new-task page, its live validation and preview, prompt templates, batches.

Every view binds `tasks.builder.forms.TaskRequestForm`, the same form the submit uses. htmx requests get a
fragment of the page's own template (`page.html#partial`), ordinary requests the whole page, and a plain
POST redirects after success, so everything works with JavaScript off.
"""

import json
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.db.models import Sum
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.text import normalize_newlines
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from tasks.builder import catalog
from tasks.builder.fields import ChainWidget
from tasks.builder.forms import (
    VARIABLE_PREFIX,
    TaskRequestForm,
    catalog_for,
    form_data_from_fields,
    initial_from_body,
    initial_from_query,
    model_flags,
)
from tasks.builder.preview import curl_command, endpoint_url, preview_body
from tasks.builder.repeats import recent_same_request
from tasks.crypto import CredentialKeyError
from tasks.fragments import wants_fragment
from tasks.models import Credential, PromptTemplateVersion, Task
from tasks.prompt_templates.services import template_variables
from tasks.spend.budgets import BudgetExceeded, budgets_for_submission, month_start
from tasks.submission import sending
from tasks.upstream import providers
from tasks.upstream.outcomes import UpstreamError

PAGE = "tasks/builder/page.html"


SECTIONS = (
    ("prompt", "Prompt"),
    ("model", "Model"),
    ("sampling", "Output and sampling"),
    ("search", "Web search"),
    ("meta", "Tag and callbacks"),
)


@dataclass
class Row:
    """One field as the page draws it: the bound field, its rule and the errors to show now."""

    bf: object
    rule: providers.FieldRule | None
    errors: list[str] = field(default_factory=list)
    length: int = 0

    @property
    def name(self) -> str:
        return self.bf.name


def _default_credential() -> Credential | None:
    return Credential.objects.filter(is_active=True).order_by("-is_default", "name").first()


def _form_data(rules: providers.ProviderRules, initial: dict) -> QueryDict:
    return form_data_from_fields(
        rules, initial, credential=initial.get("credential") or _default_credential()
    )


def _bind(rules, data, *, template_mode=False) -> TaskRequestForm:
    return TaskRequestForm(data, rules=rules, catalog=catalog_for(rules.slug), template_mode=template_mode)


def _shown_errors(form: TaskRequestForm, *, trigger: str | None, show_all: bool) -> dict[str, list[str]]:
    """Errors to draw beside the fields. While typing, "required" errors only show on the field being
    edited, so a half-filled form is not all red; cross-field errors show as soon as both values exist.
    """
    shown = {}
    for name, errors in form.errors.as_data().items():
        kept = [
            message
            for error in errors
            for message in error.messages
            if show_all or error.code != "required" or name == trigger
        ]
        if kept:
            shown[name] = kept
    return shown


def _rows(form: TaskRequestForm, shown: dict) -> dict[str, list[Row]]:
    sections: dict[str, list[Row]] = {key: [] for key, _ in SECTIONS}
    for rule in form.rules.fields:
        bf = form[rule.name]
        value = bf.value()
        # As the form counts: line breaks as LF, without the spaces and line breaks around the text.
        length = len(normalize_newlines(value).strip()) if isinstance(value, str) else 0
        sections[rule.section].append(Row(bf, rule, shown.get(rule.name, []), length))
    return sections


def _chain_rows(form: TaskRequestForm) -> list[dict]:
    """The chain's turns as drawn, each with its length as the form counts it (no surrounding spaces)."""
    turns = [turn for turn in form.chain_turns() if isinstance(turn, dict)]
    return [{**turn, "length": len(str(turn.get("message") or "").strip())} for turn in turns]


def _blocking(form: TaskRequestForm) -> list[str]:
    """Why the form cannot be submitted yet, one line per field, in page order."""
    reasons, seen = [], set()
    for name, errors in form.errors.items():
        if errors[0] in seen:
            continue  # a cross-field error is listed once, under its first field
        seen.add(errors[0])
        # The bound field's label: a field without one (the hidden provider) is named from its name.
        label = form[name].label if name in form.fields else "Form"
        reasons.append(f"{label}: {errors[0]}")
    return reasons


def _month_spend() -> Decimal:
    # What every task this month counts for (estimate, charge at post or final cost; see Task.spend).
    return Task.objects.filter(created_at__gte=month_start()).aggregate(total=Sum("spend"))[
        "total"
    ] or Decimal(0)


def _preview(form: TaskRequestForm, count: int = 1) -> dict:
    credential = form.cleaned_data.get("credential") if hasattr(form, "cleaned_data") else None
    mode = form.mode
    body = form.body if mode == providers.LIVE else preview_body(form.body)
    if mode == providers.LIVE and not body.get("tag"):
        body = {**body, "tag": "aisa-dashboard:<task-id>"}
    url = endpoint_url(credential, form.rules.slug, mode)
    multiplier = credential.price_multiplier if credential else Decimal(1)
    return {
        "mode": mode,
        "endpoint": url,
        "body_json": json.dumps([body], indent=2, ensure_ascii=False),
        "curl": curl_command(credential, url, [body]),
        "task_count": count,
        "charge": count * providers.charge_per_task(mode=mode, price_multiplier=multiplier),
    }


def _budget_context(user, charges: list[tuple[str, Decimal]], what: str) -> dict:
    """The budgets a submission counts against, what each has left, and why it would be refused."""
    fits = budgets_for_submission(user=user, charges=charges)
    return {"budget_fits": fits, "budget_refusals": [fit.refusal(what) for fit in fits if not fit.fits]}


def _typed_tag(form: TaskRequestForm) -> str:
    """The tag as the submit would count it, from what is typed even while the form is invalid."""
    tag = getattr(form, "cleaned_data", {}).get("tag")
    if tag is None:
        tag = str(form.data.get("tag") or "").strip()
    return tag[: providers.MAX_TAG_LENGTH]


def _context(form, *, shown, oob=False, submit_error="", user=None, **extra) -> dict:
    rules = form.rules
    model = form.chosen_model
    rows_by_section = _rows(form, shown)
    preview = _preview(form)
    blocking = _blocking(form)
    budget = {}
    if user is not None:
        budget = _budget_context(user, [(_typed_tag(form), preview["charge"])], "this task")
        blocking += [f"Budget: {refusal}" for refusal in budget["budget_refusals"]]
    return {
        "form": form,
        "rules": rules,
        "providers": providers.PROVIDERS.values(),
        "sections": [(key, title, rows_by_section[key]) for key, title in SECTIONS],
        "credential_row": Row(form["credential"], None, shown.get("credential", [])),
        "chain_turns": _chain_rows(form),
        "chain_max": providers.MAX_CHAIN_TURNS,
        "chain_errors": shown.get("message_chain", []),
        "variable_rows": [
            Row(form[VARIABLE_PREFIX + name], None, shown.get(VARIABLE_PREFIX + name, []))
            for name in form.variables
        ],
        "model": model,
        "catalog": list(form.catalog.values()),
        "min_tokens": providers.min_output_tokens(rules, form.values, model_flags(model)),
        "blocking": blocking,
        "oob": oob,
        "submit_error": submit_error,
        "has_credentials": bool(getattr(form, "cleaned_data", {}).get("credential"))
        or form.fields["credential"].queryset.exists(),
        "public_base_url": settings.PUBLIC_BASE_URL,
        **preview,
        **budget,
        **extra,
    }


def _template_for(form: TaskRequestForm) -> PromptTemplateVersion | None:
    """The template version the form came from: only one of the form's own provider, since a provider
    tab carries the hidden field over and a task must not claim a template it was not made from. An id of no
    version (its template deleted meanwhile) is none, so it does not hold back the submission."""
    version_id = _int(form.data.get("template_version"))  # "²" is a digit that int() refuses
    if version_id <= 0:
        return None
    versions = PromptTemplateVersion.objects.select_related("template")
    return versions.filter(pk=version_id, template__provider=form.rules.slug).first()


def variables_a_version_would_lose(form: TaskRequestForm, version, *, run_again_of) -> list[str]:
    """The variables of `version` missing from a form opened from one of its tasks ("Run again", "Open in
    builder"): that task's request has them filled with its own values, so saving it as a new version
    would replace them. Empty for a form opened from the template itself, where removing one is an edit."""
    if version is None or not run_again_of:
        return []
    kept = set(template_variables(form.values))
    return [name for name in template_variables(version.fields) if name not in kept]


def _render_builder(request, form, *, shown, status=200, submit_error="", **extra) -> HttpResponse:
    # The fragment brings its <title> along: htmx retitles the page (a provider tab changes it).
    template = f"{PAGE}#builder_response" if wants_fragment(request) else PAGE
    # This month's spend does not depend on the form, so live validation does not recompute it.
    context = _context(
        form, shown=shown, submit_error=submit_error, user=request.user, month_spend=_month_spend(), **extra
    )
    context["template_version"] = _template_for(form)
    # "Run again" of a task (?from_task): carried through provider switches and re-rendered posts.
    context["run_again_of"] = (
        request.GET.get("from_task") or request.GET.get("run_again_of") or request.POST.get("run_again_of")
    )
    context["variables_filled"] = variables_a_version_would_lose(
        form, context["template_version"], run_again_of=context["run_again_of"]
    )
    return render(request, template, context, status=status)


def _prefill(request: HttpRequest) -> tuple[providers.ProviderRules, dict]:
    """Where a new form starts: a task (?from_task), a template (?template, ?version) or the query."""
    query = request.GET
    if query.get("from_task"):
        try:
            task = Task.objects.filter(pk=query["from_task"]).first()
        except ValidationError:  # not a uuid
            task = None
        if task is None:
            raise Http404("No such task.")
        rules = providers.provider_rules(task.provider)
        initial = initial_from_body(rules, task.request_body)
        initial["credential"] = task.credential_id
        initial["mode"] = task.mode
        if task.template_version_id:
            initial["template_version"] = task.template_version_id
        return rules, initial
    if query.get("version") or query.get("template"):
        versions = PromptTemplateVersion.objects.select_related("template")
        if query.get("version"):
            version = versions.filter(pk=_int(query["version"])).first()
        else:
            # template__pk, not template_id: a pk lookup answers none for an id beyond the column's range
            # (as ?version does), where the foreign key's own column would hand the database a huge int.
            version = versions.filter(template__pk=_int(query["template"])).order_by("-number").first()
        if version is None:
            raise Http404("No such template.")
        rules = providers.provider_rules(version.template.provider)
        initial = initial_from_body(rules, version.fields)
        initial["template_version"] = version.pk
        return rules, initial
    return _switched(query.get("switch") or query.get("provider"), query)


def _switched(provider: str | None, data) -> tuple[providers.ProviderRules, dict]:
    """The form for `provider`, keeping the values `data` carries that this provider also has."""
    rules = providers.provider_rules(provider)
    initial = initial_from_query(rules, data)
    if initial.get("model_name") and initial["model_name"] not in {
        m.model_name for m in catalog_for(rules.slug)
    }:
        del initial["model_name"]  # another provider's model, carried over by the switch
    return rules, initial


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


@permission_required("tasks.add_task", raise_exception=True)
def builder(request: HttpRequest) -> HttpResponse:
    """The new-task page. GET shows it (prefilled on request); POST submits, edits the chain, or switches
    provider."""
    if request.method == "POST":
        if request.POST.get("chain_action"):
            return _chain_action(request)
        if request.POST.get("switch"):
            # A provider tab pressed without JavaScript: the other provider's form with what was typed.
            rules, initial = _switched(request.POST["switch"], request.POST)
            form = _bind(rules, _form_data(rules, initial))
            form.is_valid()
            return _render_builder(request, form, shown={})
        return _submit(request)
    rules, initial = _prefill(request)
    form = _bind(rules, _form_data(rules, initial))
    form.is_valid()  # for the preview and the submit button's reasons; errors are not drawn yet
    return _render_builder(request, form, shown={})


def builder_with_errors(request: HttpRequest, form: TaskRequestForm) -> HttpResponse:
    """The builder page with every error of `form` shown, its input kept (for pages posted the builder's
    form, e.g. "Monitor this request")."""
    return _render_builder(request, form, shown=_shown_errors(form, trigger=None, show_all=True), status=422)


def _submit(request: HttpRequest) -> HttpResponse:
    rules = providers.provider_rules(request.POST.get("provider"))
    form = _bind(rules, request.POST)
    if not form.is_valid():
        return _render_builder(
            request, form, shown=_shown_errors(form, trigger=None, show_all=True), status=422
        )
    version = _template_for(form)
    if request.POST.get("send_again") != "1":
        earlier = recent_same_request(
            user=request.user,
            credential=form.cleaned_data["credential"],
            provider=rules.slug,
            mode=form.mode,
            body=form.body,
            key=form.cleaned_data["idempotency_key"],
        )
        # Back, a reload or a second tab: ask before charging it twice. Not for the task "Run again" was
        # pressed on: that page asked for the same request again.
        if earlier is not None and str(earlier.pk) != request.POST.get("run_again_of"):
            return _render_builder(request, form, shown={}, status=422, repeat_of=earlier)
    spec = sending.TaskSpec(
        provider=rules.slug,
        body=form.body,
        idempotency_key=form.cleaned_data["idempotency_key"],
        template_version_id=version.pk if version else None,
        variables=form.variable_values() or None,
    )
    try:
        tasks = sending.submit_tasks(
            specs=[spec], credential=form.cleaned_data["credential"], user=request.user, mode=form.mode
        )
    except (sending.SubmissionError, BudgetExceeded) as exc:
        return _render_builder(request, form, shown={}, status=422, submit_error=str(exc))
    task = tasks[0]
    if task.status == Task.Status.FAILED:
        if task.status_code:
            message = f"Upstream rejected the task: {task.status_code} {task.status_message}"
        else:
            message = task.status_message or "The task could not be sent."
        # The rejected task keeps its token; a corrected resubmission is a new task.
        data = request.POST.copy()
        data["idempotency_key"] = uuid.uuid4().hex
        form = _bind(rules, data)
        form.is_valid()
        return _render_builder(request, form, shown={}, status=422, submit_error=message, failed_task=task)
    url = reverse("history:task_detail", kwargs={"task_id": task.pk})
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


def _chain_action(request: HttpRequest) -> HttpResponse:
    """Add, remove or move a turn of the message chain; with htmx only the chain is redrawn."""
    rules = providers.provider_rules(request.POST.get("provider"))
    turns = ChainWidget().value_from_datadict(request.POST, None, "message_chain")
    action, _, index = request.POST["chain_action"].partition(":")
    i = _int(index)
    # Where the keyboard focus goes once the chain is redrawn, the button pressed being gone: (control, turn).
    focus: tuple[str, int | None] = ("", None)
    if action == "add" and len(turns) < providers.MAX_CHAIN_TURNS:
        turns.append({"role": "ai" if turns and turns[-1]["role"] == "user" else "user", "message": ""})
        focus = ("message", len(turns) - 1)
    elif action == "remove" and 0 <= i < len(turns):
        turns.pop(i)
        focus = ("remove", min(i, len(turns) - 1)) if turns else ("add", None)
    elif action == "up" and 0 < i < len(turns):
        turns[i - 1], turns[i] = turns[i], turns[i - 1]
        focus = ("up", i - 1) if i > 1 else ("down", 0)
    elif action == "down" and 0 <= i < len(turns) - 1:
        turns[i + 1], turns[i] = turns[i], turns[i + 1]
        focus = ("down", i + 1) if i + 1 < len(turns) - 1 else ("up", i + 1)
    data = request.POST.copy()
    for key in [k for k in data if k.startswith("chain-")]:
        del data[key]
    for n, turn in enumerate(turns):
        data[f"chain-{n}-role"] = turn["role"]
        data[f"chain-{n}-message"] = turn["message"]
    form = _bind(rules, data)
    form.is_valid()
    if request.htmx:
        context = _context(form, shown={}, oob=True, user=request.user, chain_focus=focus)
        return render(request, f"{PAGE}#chain_response", context)
    return _render_builder(request, form, shown={}, chain_focus=focus)


@require_POST
@permission_required("tasks.add_task", raise_exception=True)
def builder_validate(request: HttpRequest) -> HttpResponse:
    """Live validation: bind the submit's form, save nothing, answer with out-of-band swaps of the error
    containers, the variables, the preview and the submit reasons, and the submit button's state (builder.js
    updates the button in place); never of an input being typed in.
    """
    rules = providers.provider_rules(request.POST.get("provider"))
    form = _bind(rules, request.POST)
    form.is_valid()
    trigger = request.POST.get("trigger_field") or None
    shown = _shown_errors(form, trigger=trigger, show_all=not request.htmx)
    context = _context(form, shown=shown, oob=True, user=request.user)
    shown_vars = [v for v in request.POST.get("variables_shown", "").split(",") if v]
    context["variables_changed"] = shown_vars != form.variables
    # The variables' error containers are swapped by the template itself: inside a redrawn variables
    # block when the variables changed (a container of its own would have no target yet), else one by one.
    context["all_rows"] = [row for _, _, rows in context["sections"] for row in rows]
    return render(request, f"{PAGE}#validation", context)


@require_POST
@permission_required("tasks.add_task", raise_exception=True)
def builder_models_refresh(request: HttpRequest) -> HttpResponse:
    """Fetch the provider's catalog (free) and redraw the model picker with what the person had chosen."""
    rules = providers.provider_rules(request.POST.get("provider"))
    credential = Credential.objects.filter(pk=_int(request.POST.get("credential"))).first()
    error = fetched = ""
    if credential is None:
        error = "Choose a credential first."
    elif not credential.is_active:
        # Disabled after the page was drawn: its picker still shows it.
        error = f"{credential.name} is disabled: choose an active credential (reload the page for the list)."
    else:
        try:
            models = catalog.catalog_refresh(credential=credential, provider=rules.slug)
        except (UpstreamError, CredentialKeyError) as exc:
            error = f"Could not refresh the models: {exc}"
        else:
            count = len(models)
            fetched = f"{count} {rules.label} model{pluralize(count)} fetched."
            if not request.htmx:
                messages.success(request, fetched)
    form = _bind(rules, request.POST)
    form.is_valid()
    if request.htmx:
        context = _context(form, shown={}, refresh_error=error, refreshed=fetched)
        context["row"] = next(r for _, _, rows in context["sections"] for r in rows if r.name == "model_name")
        return render(request, f"{PAGE}#model_picker", context)
    if error:
        messages.error(request, error)
    return _render_builder(request, form, shown={})
