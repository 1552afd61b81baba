"""Views of saved prompt templates (/templates/) and batches (/batches/)."""

import json

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.text import normalize_newlines
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from tasks.builder.views import (
    _bind,
    _budget_context,
    _int,
    _render_builder,
    _shown_errors,
    _template_for,
    variables_a_version_would_lose,
)
from tasks.fragments import wants_fragment
from tasks.models import Batch, PromptTemplate, PromptTemplateVersion, Task
from tasks.prompt_templates import batches, selectors
from tasks.prompt_templates.forms import BatchForm, TemplateDetailsForm
from tasks.prompt_templates.repeats import recent_same_batch
from tasks.prompt_templates.services import (
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
from tasks.spend.budgets import BudgetExceeded
from tasks.submission import sending
from tasks.submission.own_callbacks import callback_tokens_masked
from tasks.upstream import providers

TEMPLATES = "tasks/prompt_templates"


@require_GET
@permission_required("tasks.view_prompttemplate", raise_exception=True)
def template_list(request: HttpRequest) -> HttpResponse:
    archived = request.GET.get("archived") == "1"
    templates = PromptTemplate.objects.filter(archived_at__isnull=not archived).prefetch_related("versions")
    template = f"{TEMPLATES}/list.html#rows" if wants_fragment(request) else f"{TEMPLATES}/list.html"
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
            save_error="Fix the errors below before saving the template.",
        )
    note = normalize_newlines(request.POST.get("template_note", ""))
    try:
        if as_version:
            version = _template_for(form)
            if version is None:
                raise TemplateError("This form did not come from a template; save it as a new one.")
            lost = variables_a_version_would_lose(
                form, version, run_again_of=request.POST.get("run_again_of")
            )
            if lost:
                names = ", ".join("{{" + name + "}}" for name in lost)
                raise TemplateError(
                    f"This task has {names} filled in with its own values; a new version of"
                    f" “{version.template.name}” would lose them. Save it as a new template, or change the"
                    " template on its page."
                )
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
        return _render_builder(request, form, shown={}, status=422, save_error=str(exc))
    url = reverse("prompt_templates:detail", kwargs={"template_id": template.pk})
    return HttpResponseClientRedirect(url) if wants_fragment(request) else redirect(url)


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
    return render(request, f"{page}#version" if wants_fragment(request) else page, context)


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
        return redirect("prompt_templates:detail", template_id=template.pk)
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
    url = reverse("prompt_templates:detail", kwargs={"template_id": copy.pk})
    return HttpResponseClientRedirect(url) if wants_fragment(request) else redirect(url)


@require_POST
@permission_required("tasks.change_prompttemplate", raise_exception=True)
def template_archive_view(request: HttpRequest, template_id: int) -> HttpResponse:
    template = get_object_or_404(PromptTemplate, pk=template_id)
    archive = request.POST.get("archive", "1") == "1"
    template_archive(template=template, user=request.user, archived=archive)
    messages.success(request, f"“{template.name}” {'archived' if archive else 'restored'}.")
    url = reverse("prompt_templates:detail", kwargs={"template_id": template.pk})
    return HttpResponseClientRedirect(url) if wants_fragment(request) else redirect(url)


@permission_required("tasks.add_batch", raise_exception=True)
def batch_new(request: HttpRequest, template_id: int) -> HttpResponse:
    """Run a template over rows of variables and/or several models: check, confirm, then submit."""
    template = get_object_or_404(PromptTemplate, pk=template_id)
    version = template.versions.order_by("-number").first()
    if version is None:
        raise Http404("This template has no version.")
    page = "tasks/prompt_templates/batch_new.html"
    form = BatchForm(request.POST or None, request.FILES or None, template=template, version=version)
    plan = None
    repeat_of = None
    # "Send it again", under the warning about the same batch sent a moment ago, confirms as Submit does.
    send_again = request.POST.get("send_again") == "1"
    confirm = request.POST.get("confirm") == "1" or send_again
    if request.method == "POST" and form.is_valid() and not _nothing_to_check_yet(request, form):
        plan = batches.batch_plan(
            version=version,
            # Pasted or uploaded, lines may end in CRLF or CR; values are counted and sent with LF.
            rows_text=normalize_newlines(form.cleaned_data["rows_text"]),
            models=form.cleaned_data["models"],
            credential=form.cleaned_data["credential"],
        )
        planned = request.POST.get("planned")
        if confirm and plan.ok and planned is not None and planned != plan.fingerprint:
            # "Submit N tasks" was pressed under a check of other rows, models or credential.
            form.add_error(
                None,
                "The rows, models or credential changed after they were checked, so nothing was sent. "
                "Here are the tasks and the charge as they are now: submit again to send them.",
            )
        elif confirm and plan.ok:
            if not request.user.has_perm("tasks.add_task"):
                raise Http404
            # Back, a reload or a second tab, and the same rows: ask before charging the batch twice.
            if not send_again:
                repeat_of = recent_same_batch(
                    user=request.user,
                    fingerprint=plan.fingerprint,
                    idempotency_key=form.cleaned_data["idempotency_key"],
                )
            if repeat_of is None:
                try:
                    batch = batches.batch_submit(
                        plan=plan,
                        credential=form.cleaned_data["credential"],
                        user=request.user,
                        name=form.cleaned_data.get("name", ""),
                        idempotency_key=form.cleaned_data["idempotency_key"],
                    )
                except (sending.SubmissionError, BudgetExceeded) as exc:
                    form.add_error(None, str(exc))
                else:
                    url = reverse("prompt_templates:batch_detail", kwargs={"batch_id": batch.pk})
                    return HttpResponseClientRedirect(url) if wants_fragment(request) else redirect(url)
    upload = form.cleaned_data.get("rows_file") if plan is not None else None
    context = {
        "form": form,
        "template": template,
        "version": version,
        "plan": plan,
        "repeat_of": repeat_of,
        "live": wants_fragment(request),  # the plan checked again as the form changed
        "rows_file_name": upload.name if upload else "",
    }
    if plan is not None and plan.ok:
        context.update(
            _budget_context(request.user, plan.charges(), f"this batch of {plan.task_count} tasks")
        )
    template_name = f"{page}#plan" if wants_fragment(request) else page
    return render(request, template_name, context, status=422 if repeat_of is not None else 200)


def _nothing_to_check_yet(request: HttpRequest, form: BatchForm) -> bool:
    """Checked as the form changes (htmx), no file chosen and no row typed below the header: nothing to say
    yet, rather than "No rows below the header." before the person has begun. The button says it."""
    if not wants_fragment(request) or not form.variables or form.cleaned_data["rows_file"]:
        return False
    return len(form.cleaned_data["rows_text"].strip().splitlines()) < 2


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
    return render(request, "tasks/prompt_templates/batch_list.html", context)


BATCH_PAGE_TASKS = 200  # the batch page's table; the task list filtered by batch shows them all


@require_GET
@permission_required("tasks.view_batch", raise_exception=True)
def batch_detail(request: HttpRequest, batch_id) -> HttpResponse:
    batch = get_object_or_404(Batch.objects.select_related("template_version__template"), pk=batch_id)
    progress = batches.batch_progress(batch=batch)
    page = "tasks/prompt_templates/batch_detail.html"
    tasks = selectors.batch_tasks(batch=batch, limit=BATCH_PAGE_TASKS)
    context = {"batch": batch, "progress": progress, "tasks": tasks}
    # Polled every 3 s until every task is final: the counts and the table are redrawn together.
    return render(request, f"{page}#live" if wants_fragment(request) else page, context)
