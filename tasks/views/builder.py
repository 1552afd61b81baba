"""The request builder: the new-task page, its live validation and preview, prompt templates, batches.

Every view binds `tasks.forms.TaskRequestForm`, the same form the submit uses. htmx requests get a
fragment of the page's own template (`page.html#partial`), ordinary requests the whole page, and a plain
POST redirects after success, so everything works with JavaScript off.
"""

import json
import shlex
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.db.models import Sum
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import NoReverseMatch, path, reverse
from django.utils.text import normalize_newlines
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from tasks import batches, providers, selectors, services
from tasks.budgets import BudgetExceeded, budgets_for_submission, month_start
from tasks.clients import UpstreamError
from tasks.crypto import CredentialKeyError
from tasks.forms import (
    VARIABLE_PREFIX,
    BatchForm,
    ChainWidget,
    TaskRequestForm,
    TemplateDetailsForm,
    catalog_for,
    form_data_from_fields,
    initial_from_body,
    initial_from_query,
    model_flags,
)
from tasks.models import Batch, Credential, PromptTemplate, PromptTemplateVersion, Task
from tasks.own_callbacks import callback_tokens_masked
from tasks.prompt_templates import (
    TemplateError,
    TemplateNameError,
    template_archive,
    template_create,
    template_duplicate,
    template_edit,
    template_rename,
    template_variables,
    version_diff,
)

PAGE = "tasks/builder/page.html"
SECTIONS = (
    ("prompt", "Prompt"),
    ("model", "Model"),
    ("sampling", "Output and sampling"),
    ("search", "Web search"),
    ("meta", "Tag and callbacks"),
)


# --- Building the page ------------------------------------------------------------------------------


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
        length = len(normalize_newlines(value)) if isinstance(value, str) else 0  # as the form counts
        sections[rule.section].append(Row(bf, rule, shown.get(rule.name, []), length))
    return sections


def _blocking(form: TaskRequestForm) -> list[str]:
    """Why the form cannot be submitted yet, one line per field, in page order."""
    reasons, seen = [], set()
    for name, errors in form.errors.items():
        if errors[0] in seen:
            continue  # a cross-field error is listed once, under its first field
        seen.add(errors[0])
        label = form.fields[name].label if name in form.fields else "Form"
        reasons.append(f"{label}: {errors[0]}")
    return reasons


def _month_spend() -> Decimal:
    # What every task this month counts for (estimate, charge at post or final cost; see Task.spend).
    return Task.objects.filter(created_at__gte=month_start()).aggregate(total=Sum("spend"))[
        "total"
    ] or Decimal(0)


def _callback_placeholder(kind: str) -> str:
    try:
        url = reverse(f"callback_{kind}", kwargs={"task_id": uuid.UUID(int=0), "token": "TOKEN"})
    except NoReverseMatch:
        return f"{settings.PUBLIC_BASE_URL}/… (this task's own {kind} URL, added on submit)"
    url = url.replace(str(uuid.UUID(int=0)), "<task-id>").replace("TOKEN", "<token>")
    return settings.PUBLIC_BASE_URL + url


def preview_body(body: dict) -> dict:
    """The task object as it will be posted: what services.submit_tasks adds shown as placeholders."""
    shown = dict(body)
    if settings.PUBLIC_BASE_URL and not shown.get("pingback_url") and not shown.get("postback_url"):
        shown["pingback_url"] = _callback_placeholder("pingback")
        shown["postback_url"] = _callback_placeholder("postback")
    if not shown.get("tag"):
        shown["tag"] = "aisa-dashboard:<task-id>"
    return shown


def endpoint_url(credential: Credential | None, provider: str, function: str = "task_post") -> str:
    base = credential.effective_base_url if credential else "<credential base URL>"
    return f"{base}/ai_optimization/{provider}/llm_responses/{function}"


def curl_command(credential: Credential | None, url: str, tasks: list[dict]) -> str:
    """A copyable curl command with the secret masked."""
    if credential is not None and credential.kind == Credential.Kind.DATAFORSEO:
        auth = f"-u {shlex.quote(credential.login + ':****')}"
    else:
        hint = credential.secret_hint if credential else ""
        auth = f"-H {shlex.quote('Authorization: Bearer ****' + hint)}"
    payload = json.dumps(tasks, ensure_ascii=False)
    return (
        f"curl -X POST {shlex.quote(url)} \\\n  {auth} \\\n"
        f"  -H 'Content-Type: application/json' \\\n  --data-raw {shlex.quote(payload)}"
    )


def _preview(form: TaskRequestForm, count: int = 1) -> dict:
    credential = form.cleaned_data.get("credential") if hasattr(form, "cleaned_data") else None
    body = preview_body(form.body)
    url = endpoint_url(credential, form.rules.slug)
    multiplier = credential.price_multiplier if credential else Decimal(1)
    return {
        "endpoint": url,
        "body_json": json.dumps([body], indent=2, ensure_ascii=False),
        "curl": curl_command(credential, url, [body]),
        "task_count": count,
        "charge": count * providers.queued_charge_per_task(price_multiplier=multiplier),
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
        "chain_turns": form.chain_turns(),
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


def _template_for(form: TaskRequestForm):
    version_id = form.data.get("template_version")
    if not version_id or not str(version_id).isdigit():
        return None
    return PromptTemplateVersion.objects.select_related("template").filter(pk=version_id).first()


def _wants_fragment(request: HttpRequest) -> bool:
    # A history restore (back button after a pushed URL) needs the whole page.
    return bool(request.htmx) and not request.htmx.history_restore_request


def _render_builder(request, form, *, shown, status=200, submit_error="", **extra) -> HttpResponse:
    template = f"{PAGE}#builder" if _wants_fragment(request) else PAGE
    # This month's spend does not depend on the form, so live validation does not recompute it.
    context = _context(
        form, shown=shown, submit_error=submit_error, user=request.user, month_spend=_month_spend(), **extra
    )
    context["template_version"] = _template_for(form)
    return render(request, template, context, status=status)


# --- The builder ------------------------------------------------------------------------------------


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
        if task.template_version_id:
            initial["template_version"] = task.template_version_id
        return rules, initial
    if query.get("version") or query.get("template"):
        versions = PromptTemplateVersion.objects.select_related("template")
        if query.get("version"):
            version = versions.filter(pk=_int(query["version"])).first()
        else:
            version = versions.filter(template_id=_int(query["template"])).order_by("-number").first()
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


def _submit(request: HttpRequest) -> HttpResponse:
    rules = providers.provider_rules(request.POST.get("provider"))
    form = _bind(rules, request.POST)
    if not form.is_valid():
        return _render_builder(
            request, form, shown=_shown_errors(form, trigger=None, show_all=True), status=422
        )
    version = _template_for(form)
    spec = services.TaskSpec(
        provider=rules.slug,
        body=form.body,
        idempotency_key=form.cleaned_data["idempotency_key"],
        template_version_id=version.pk if version else None,
        variables=form.variable_values() or None,
    )
    try:
        tasks = services.submit_tasks(
            specs=[spec], credential=form.cleaned_data["credential"], user=request.user
        )
    except (services.SubmissionError, BudgetExceeded) as exc:
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
    url = reverse("task_detail", kwargs={"task_id": task.pk})
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


def _chain_action(request: HttpRequest) -> HttpResponse:
    """Add, remove or move a turn of the message chain; with htmx only the chain is redrawn."""
    rules = providers.provider_rules(request.POST.get("provider"))
    turns = ChainWidget().value_from_datadict(request.POST, None, "message_chain")
    action, _, index = request.POST["chain_action"].partition(":")
    i = _int(index)
    if action == "add" and len(turns) < providers.MAX_CHAIN_TURNS:
        turns.append({"role": "ai" if turns and turns[-1]["role"] == "user" else "user", "message": ""})
    elif action == "remove" and 0 <= i < len(turns):
        turns.pop(i)
    elif action == "up" and 0 < i < len(turns):
        turns[i - 1], turns[i] = turns[i], turns[i - 1]
    elif action == "down" and 0 <= i < len(turns) - 1:
        turns[i + 1], turns[i] = turns[i], turns[i + 1]
    data = request.POST.copy()
    for key in [k for k in data if k.startswith("chain-")]:
        del data[key]
    for n, turn in enumerate(turns):
        data[f"chain-{n}-role"] = turn["role"]
        data[f"chain-{n}-message"] = turn["message"]
    form = _bind(rules, data)
    form.is_valid()
    if request.htmx:
        return render(
            request, f"{PAGE}#chain_response", _context(form, shown={}, oob=True, user=request.user)
        )
    return _render_builder(request, form, shown={})


@require_POST
@permission_required("tasks.add_task", raise_exception=True)
def builder_validate(request: HttpRequest) -> HttpResponse:
    """Live validation: bind the submit's form, save nothing, answer with out-of-band swaps of the error
    containers, the variables, the preview and the submit button; never of an input being typed in.
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
    credential = Credential.objects.filter(is_active=True, pk=_int(request.POST.get("credential"))).first()
    error = ""
    if credential is None:
        error = "Choose a credential first."
    else:
        try:
            models = services.catalog_refresh(credential=credential, provider=rules.slug)
        except (UpstreamError, CredentialKeyError) as exc:
            error = f"Could not refresh the models: {exc}"
        else:
            if not request.htmx:
                count = len(models)
                messages.success(request, f"{count} {rules.label} model{pluralize(count)} fetched.")
    form = _bind(rules, request.POST)
    form.is_valid()
    if request.htmx:
        context = _context(form, shown={}, refresh_error=error)
        context["row"] = next(r for _, _, rows in context["sections"] for r in rows if r.name == "model_name")
        return render(request, f"{PAGE}#model_picker", context)
    if error:
        messages.error(request, error)
    return _render_builder(request, form, shown={})


# --- Prompt templates -------------------------------------------------------------------------------

TEMPLATES = "tasks/prompt_templates"


@require_GET
@permission_required("tasks.view_prompttemplate", raise_exception=True)
def template_list(request: HttpRequest) -> HttpResponse:
    archived = request.GET.get("archived") == "1"
    templates = PromptTemplate.objects.filter(archived_at__isnull=not archived).prefetch_related("versions")
    template = f"{TEMPLATES}/list.html#rows" if _wants_fragment(request) else f"{TEMPLATES}/list.html"
    return render(request, template, {"templates": templates, "archived": archived})


@require_POST
@permission_required("tasks.add_prompttemplate", raise_exception=True)
def template_save(request: HttpRequest) -> HttpResponse:
    """Save the builder's form as a new template, or as the next version of the template it came from."""
    rules = providers.provider_rules(request.POST.get("provider"))
    form = _bind(rules, request.POST, template_mode=True)
    as_version = request.POST.get("save_as") == "version"
    if not form.is_valid():
        shown = _shown_errors(form, trigger=None, show_all=True)
        return _render_builder(
            request,
            form,
            shown=shown,
            status=422,
            submit_error="Fix the errors below before saving the template.",
        )
    note = normalize_newlines(request.POST.get("template_note", ""))
    try:
        if as_version:
            version = _template_for(form)
            if version is None:
                raise TemplateError("This form did not come from a template; save it as a new one.")
            if not request.user.has_perm("tasks.change_prompttemplate"):
                raise PermissionError
            new = template_edit(
                template=version.template, fields=form.template_fields(), user=request.user, note=note
            )
            template = version.template
            messages.success(request, f"Saved as version {new.number} of “{template.name}”.")
        else:
            template = template_create(
                name=request.POST.get("template_name", ""),
                provider=rules.slug,
                fields=form.template_fields(),
                user=request.user,
                note=note,
            )
            messages.success(request, f"Template “{template.name}” saved.")
    except PermissionError:
        raise Http404 from None
    except TemplateError as exc:
        return _render_builder(request, form, shown={}, status=422, submit_error=str(exc))
    url = reverse("template_detail", kwargs={"template_id": template.pk})
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _version_context(template: PromptTemplate, version: PromptTemplateVersion | None) -> dict:
    current = template.versions.order_by("-number").first()
    version = version or current
    diff = None
    if version and current and version != current:
        # A version saved with a task's own callback URLs shows their token masked, as the task page does.
        diff = [(kind, callback_tokens_masked(line)) for kind, line in version_diff(version, current)]
    fields_json = json.dumps(version.fields, indent=2, ensure_ascii=False) if version else "{}"
    return {
        "template": template,
        "version": version,
        "current": current,
        "versions": template.versions.select_related("created_by").order_by("-number"),
        "diff": diff,
        "variables": template_variables(version.fields) if version else [],
        "fields_json": callback_tokens_masked(fields_json),
        "task_count": Task.objects.filter(template_version__template=template).count(),
    }


@require_GET
@permission_required("tasks.view_prompttemplate", raise_exception=True)
def template_detail(request: HttpRequest, template_id: int, version_id: int | None = None) -> HttpResponse:
    template = get_object_or_404(PromptTemplate, pk=template_id)
    version = get_object_or_404(template.versions, pk=version_id) if version_id else None
    page = f"{TEMPLATES}/detail.html"
    context = {**_version_context(template, version), "details_form": TemplateDetailsForm(template=template)}
    return render(request, f"{page}#version" if _wants_fragment(request) else page, context)


@require_POST
@permission_required("tasks.change_prompttemplate", raise_exception=True)
def template_rename_view(request: HttpRequest, template_id: int) -> HttpResponse:
    """“Edit details”: change the name and description; no version is added. With htmx the details
    block is redrawn in place; a plain POST redirects back to the template's page."""
    template = get_object_or_404(PromptTemplate, pk=template_id)
    form = TemplateDetailsForm(request.POST, template=template)
    renamed = False
    if form.is_valid():
        try:
            template = template_rename(template=template, user=request.user, **form.cleaned_data)
        except TemplateNameError as exc:
            form.add_error("name", str(exc))
        except TemplateError as exc:
            form.add_error(None, str(exc))
        else:
            renamed = True
    if renamed and not request.htmx:
        messages.success(request, f"Details of “{template.name}” saved.")
        return redirect("template_detail", template_id=template.pk)
    context = {
        **_version_context(template, None),
        "details_form": TemplateDetailsForm(template=template) if renamed else form,
        "details_saved": renamed,
    }
    page = f"{TEMPLATES}/detail.html"
    if request.htmx:
        # 200 even when refused, as the task page's labels form does: htmx swaps only 2xx responses.
        return render(request, f"{page}#details_response", context)
    return render(request, page, context, status=422)


@require_POST
@permission_required("tasks.add_prompttemplate", raise_exception=True)
def template_duplicate_view(request: HttpRequest, template_id: int) -> HttpResponse:
    template = get_object_or_404(PromptTemplate, pk=template_id)
    try:
        copy = template_duplicate(template=template, user=request.user, name=request.POST.get("name", ""))
    except TemplateError as exc:  # a name given with the request that is taken or too long
        messages.error(request, str(exc))
        copy = template
    else:
        messages.success(request, f"Duplicated as “{copy.name}”.")
    url = reverse("template_detail", kwargs={"template_id": copy.pk})
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_POST
@permission_required("tasks.change_prompttemplate", raise_exception=True)
def template_archive_view(request: HttpRequest, template_id: int) -> HttpResponse:
    template = get_object_or_404(PromptTemplate, pk=template_id)
    archive = request.POST.get("archive", "1") == "1"
    template_archive(template=template, user=request.user, archived=archive)
    messages.success(request, f"“{template.name}” {'archived' if archive else 'restored'}.")
    url = reverse("template_detail", kwargs={"template_id": template.pk})
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


# --- Batches ----------------------------------------------------------------------------------------


@permission_required("tasks.add_batch", raise_exception=True)
def batch_new(request: HttpRequest, template_id: int) -> HttpResponse:
    """Run a template over rows of variables and/or several models: check, confirm, then submit."""
    template = get_object_or_404(PromptTemplate, pk=template_id)
    version = template.versions.order_by("-number").first()
    if version is None:
        raise Http404("This template has no version.")
    page = "tasks/batches/new.html"
    form = BatchForm(request.POST or None, request.FILES or None, template=template, version=version)
    plan = None
    if request.method == "POST" and form.is_valid():
        plan = batches.batch_plan(
            version=version,
            # Pasted or uploaded, lines may end in CRLF or CR; values are counted and sent with LF.
            rows_text=normalize_newlines(form.cleaned_data["rows_text"]),
            models=form.cleaned_data["models"],
            credential=form.cleaned_data["credential"],
        )
        if request.POST.get("confirm") == "1" and plan.ok:
            if not request.user.has_perm("tasks.add_task"):
                raise Http404
            try:
                batch = batches.batch_submit(
                    plan=plan,
                    credential=form.cleaned_data["credential"],
                    user=request.user,
                    name=form.cleaned_data.get("name", ""),
                    idempotency_key=form.cleaned_data["idempotency_key"],
                )
            except (services.SubmissionError, BudgetExceeded) as exc:
                form.add_error(None, str(exc))
            else:
                url = reverse("batch_detail", kwargs={"batch_id": batch.pk})
                return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    context = {"form": form, "template": template, "version": version, "plan": plan}
    if plan is not None and plan.ok:
        context.update(
            _budget_context(request.user, plan.charges(), f"this batch of {plan.task_count} tasks")
        )
    return render(request, f"{page}#plan" if _wants_fragment(request) else page, context)


@require_GET
@permission_required("tasks.view_batch", raise_exception=True)
def batch_list(request: HttpRequest) -> HttpResponse:
    """Every batch, newest first, or one template's (?template=<id>): who, when, what, how far, cost."""
    template = None
    if request.GET.get("template"):
        template = get_object_or_404(PromptTemplate, pk=_int(request.GET["template"]))
    page = max(_int(request.GET.get("page")), 1)
    rows, more = selectors.batch_list(template_id=template.pk if template else None, page=page)
    context = {"rows": rows, "template": template, "page": page, "more": more}
    return render(request, "tasks/batches/list.html", context)


BATCH_PAGE_TASKS = 200  # the batch page's table; the task list filtered by batch shows them all


@require_GET
@permission_required("tasks.view_batch", raise_exception=True)
def batch_detail(request: HttpRequest, batch_id) -> HttpResponse:
    batch = get_object_or_404(Batch.objects.select_related("template_version__template"), pk=batch_id)
    progress = batches.batch_progress(batch=batch)
    page = "tasks/batches/detail.html"
    tasks = selectors.batch_tasks(batch=batch, limit=BATCH_PAGE_TASKS)
    context = {"batch": batch, "progress": progress, "tasks": tasks}
    # Polled every 3 s until every task is final: the counts and the table are redrawn together.
    return render(request, f"{page}#live" if _wants_fragment(request) else page, context)


urlpatterns = [
    path("new/", builder, name="builder"),
    path("new/validate/", builder_validate, name="builder_validate"),
    path("new/models/refresh/", builder_models_refresh, name="builder_models_refresh"),
    path("templates/", template_list, name="template_list"),
    path("templates/save/", template_save, name="template_save"),
    path("templates/<int:template_id>/", template_detail, name="template_detail"),
    path("templates/<int:template_id>/versions/<int:version_id>/", template_detail, name="template_version"),
    path("templates/<int:template_id>/rename/", template_rename_view, name="template_rename"),
    path("templates/<int:template_id>/duplicate/", template_duplicate_view, name="template_duplicate"),
    path("templates/<int:template_id>/archive/", template_archive_view, name="template_archive"),
    path("templates/<int:template_id>/batch/", batch_new, name="batch_new"),
    path("batches/", batch_list, name="batch_list"),
    path("batches/<uuid:batch_id>/", batch_detail, name="batch_detail"),
]
