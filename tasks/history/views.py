"""Task history: the shared task list (filters, seek pagination, live rows, exports), the task page
(live status, cost breakdown, timeline, answer, labels and note) and tag history.

Query parameters of the list and the exports are documented in docs/history.md; other pages link here
with them, so keep them stable.
"""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRefresh

from tasks import labels as label_services
from tasks.fragments import wants_fragment
from tasks.history import home as home_selectors
from tasks.history import rows, selectors
from tasks.history import tags as tag_selectors
from tasks.history.export import export_csv, export_records, json_lines
from tasks.history.forms import TaskEditForm, TaskFilterForm, TaskResolveForm
from tasks.history.tag_links import with_links
from tasks.models import SendChunk, Task
from tasks.submission import reconcile, resolve
from tasks.submission.queue import no_worker_sending
from tasks.visibility.changes import tag_changes

LIST_TEMPLATE = "tasks/history/list.html"


DETAIL_TEMPLATE = "tasks/history/detail.html"


def _filter_form(request) -> tuple[TaskFilterForm, dict, str]:
    form = TaskFilterForm(request.GET or None)
    if not form.is_bound:
        return form, {}, "-created"
    return form, form.filters(), form.sort_value


def _task_or_404(getter, task_id):
    try:
        return getter(task_id=task_id)
    except Task.DoesNotExist as exc:
        raise Http404("No such task.") from exc


@require_GET
@permission_required("tasks.view_task", raise_exception=True)
def task_list(request):
    form, filters, sort = _filter_form(request)
    data = getattr(form, "cleaned_data", {})
    page = selectors.task_list(
        filters=filters, sort=sort, after=data.get("after", ""), before=data.get("before", "")
    )
    params = request.GET.copy()
    for key in ("after", "before"):
        params.pop(key, None)
    context = {
        "form": form,
        "page": page,
        "sort": sort,
        "filtered": bool(filters),
        "export_query": params.urlencode(),
    }
    template = f"{LIST_TEMPLATE}#results" if wants_fragment(request) else LIST_TEMPLATE
    return render(request, template, context)


@require_GET
@permission_required("tasks.view_task", raise_exception=True)
def task_export(request, fmt: str):
    """Every task of the filtered list (all pages, same filters and order), streamed as CSV or JSON."""
    if fmt not in ("csv", "json"):
        raise Http404("Export formats are csv and json.")
    _form, filters, sort = _filter_form(request)
    tasks = selectors.task_export_queryset(filters=filters, sort=sort)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    if fmt == "csv":
        response = StreamingHttpResponse(export_csv(tasks), content_type="text/csv; charset=utf-8")
    else:
        response = StreamingHttpResponse(json_lines(export_records(tasks)), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="tasks-{stamp}.{fmt}"'
    return response


def refresh_refusal(task: Task) -> str:
    """Why Refresh now cannot change the task ("" when it can): the button says it, the endpoint refuses."""
    if task.is_final:
        return "Final: nothing to refresh."
    if not task.upstream_task_id:
        if task.status == Task.Status.UNKNOWN:
            return "Reply lost: there is no upstream id to ask about."
        if rows.shown_status(task) == Task.Status.SENDING:  # a live task in flight, or its chunk being sent
            return "Being sent: the upstream has not given it an id yet."
        return "Not sent yet: nothing to ask the upstream about."
    return ""


def _detail_context(task: Task, **extra) -> dict:
    labels = getattr(task, "label_list", [])
    edit_form = extra.pop("edit_form", None) or TaskEditForm(
        initial={"labels": ", ".join(label.name for label in labels), "note": task.note}
    )
    resolve_form = extra.pop("resolve_form", None) or TaskResolveForm()
    return {
        "task": task,
        # Queued and nothing sending it: the page says how to start a worker.
        "no_worker": task.status == Task.Status.QUEUED
        and task.chunk_id is not None
        and no_worker_sending(SendChunk.objects.filter(pk=task.chunk_id)),
        "events": list(task.events.all()),
        "refresh_why": refresh_refusal(task),
        "edit_form": edit_form,
        "resolve_form": resolve_form,
        **extra,
    }


def _live_fragment(request, task: Task) -> HttpResponse:
    """The task page's live part, plus the head's model, upstream id and Refresh now form and the timeline
    out of band (all change as the task progresses; the focus stays where it was, as htmx puts it back on
    an element with the same id)."""
    context = _detail_context(task)
    html = render_to_string(f"{DETAIL_TEMPLATE}#live", context, request=request)
    for part in ("model", "upstream_id", "refresh"):  # the head's parts that change; its links stay put
        html += render_to_string(f"{DETAIL_TEMPLATE}#{part}", {**context, "oob": True}, request=request)
    html += render_to_string(f"{DETAIL_TEMPLATE}#timeline", {**context, "oob": True}, request=request)
    return HttpResponse(html)


@require_GET
@permission_required("tasks.view_task", raise_exception=True)
def task_detail(request, task_id):
    task = _task_or_404(selectors.task_get, task_id)
    return render(request, DETAIL_TEMPLATE, _detail_context(task))


@require_GET
@permission_required("tasks.view_task", raise_exception=True)
def task_status(request, task_id):
    """What polls fetch: a list row (?part=row) or the task page's live part. A final task's fragment
    carries no polling trigger, so polling stops by itself. The page of a task whose reply was lost polls
    too (`?while=unknown`); the page reloads when a task becomes unknown and when it stops being so.
    """
    if request.GET.get("part") == "row":
        task = _task_or_404(selectors.task_get_for_row, task_id)
        if request.GET.get("v") == rows.row_version(task):
            return HttpResponse(status=204)  # unchanged: htmx swaps nothing, a focus in the row stays
        return render(request, f"{LIST_TEMPLATE}#row", {"task": task})
    task = _task_or_404(selectors.task_get, task_id)
    polled_while_unknown = request.GET.get("while") == "unknown"
    if request.htmx and polled_while_unknown != (task.status == Task.Status.UNKNOWN):
        # Its reply was just lost (the Resolve panel comes), or a callback, tasks_ready or an admin found
        # out what became of it (the panel goes): the whole page changes.
        return HttpResponseClientRefresh()
    return _live_fragment(request, task)


@require_POST
@permission_required("tasks.change_task", raise_exception=True)
def task_refresh(request, task_id):
    """Refresh now: one task_get (free) for a task the upstream has, recorded in its timeline. A task it
    cannot change (final, not sent yet, reply lost without an id) is refused with the reason, unasked."""
    from tasks.submission.collection import task_fetch

    task = _task_or_404(selectors.task_get, task_id)
    why = refresh_refusal(task)
    if not why:
        task_fetch(task_id=task_id, actor=request.user)
    if request.htmx:  # the live part, and the button out of band: disabled, with its reason, if refused
        return _live_fragment(request, task if why else selectors.task_get(task_id=task_id))
    if why:
        messages.info(request, f"{why} Nothing was asked of the upstream.")
    else:
        messages.info(request, "Asked the upstream for this task's status.")
    return redirect("history:task_detail", task_id=task_id)


@require_POST
@permission_required("tasks.change_task", raise_exception=True)
def task_edit(request, task_id):
    """Save the task's local labels and note; each change goes into the timeline with who and when."""
    task = _task_or_404(selectors.task_get, task_id)
    form = TaskEditForm(request.POST)
    saved = False
    if form.is_valid():
        try:
            label_services.task_labels_set(task=task, names=form.cleaned_data["labels"], actor=request.user)
        except label_services.LabelError as exc:
            form.add_error("labels", str(exc))
        else:
            label_services.task_note_set(task=task, note=form.cleaned_data["note"], actor=request.user)
            saved = True
    if saved and not request.htmx:
        messages.success(request, "Labels and note saved.")
        return redirect("history:task_detail", task_id=task.pk)
    if saved:
        task = selectors.task_get(task_id=task.pk)
        form = None
    context = _detail_context(task, edit_form=form, saved=saved)
    if not request.htmx:
        return render(request, DETAIL_TEMPLATE, context, status=400)
    html = render_to_string(f"{DETAIL_TEMPLATE}#labels", context, request=request)
    html += render_to_string(f"{DETAIL_TEMPLATE}#timeline", {**context, "oob": True}, request=request)
    return HttpResponse(html)


@require_POST
@permission_required("tasks.resolve_task", raise_exception=True)
def task_resolve(request, task_id):
    """An Admin resolves a task whose reply was lost: by its upstream id (fetched with task_get), or as
    never charged. Audited by the services; a refusal is shown on the form, with what was typed kept."""
    task = _task_or_404(selectors.task_get, task_id)
    form = TaskResolveForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            if data["action"] == TaskResolveForm.FETCH:
                resolve.task_resolve_by_upstream_id(
                    task_id=task.pk,
                    upstream_task_id=data["upstream_task_id"],
                    actor=request.user,
                    reason=data["reason"],
                )
                messages.success(request, "Found upstream: the task is being completed with its result.")
            else:
                resolve.task_mark_never_charged(task_id=task.pk, actor=request.user, reason=data["reason"])
                messages.success(request, "Marked as never charged: its spend is now final at $0.")
        except reconcile.ReconcileRefused as exc:
            form.add_error("upstream_task_id" if data["action"] == TaskResolveForm.FETCH else None, str(exc))
        else:
            return redirect("history:task_detail", task_id=task.pk)
    return render(request, DETAIL_TEMPLATE, _detail_context(task, resolve_form=form), status=400)


@require_GET
@permission_required("tasks.view_task", raise_exception=True)
def tag_list(request):
    q = request.GET.get("q", "").strip()[:255]
    sort = request.GET.get("sort", "-last")
    tags = with_links(tag_selectors.tag_list(q=q, sort=sort))
    template = "tasks/history/tags.html#tags" if wants_fragment(request) else "tasks/history/tags.html"
    return render(request, template, {"tags": tags, "q": q, "sort": sort})


@require_GET
@permission_required("tasks.view_task", raise_exception=True)
def tag_detail(request, tag: str):
    prompt = request.GET.get("prompt") or None  # empty: no task asks "", so the most recent prompt
    if wants_fragment(request):  # the prompt picker swaps the timeline: only the timeline is read
        answers = tag_selectors.tag_answers(tag=tag, prompt=prompt)
        if not answers.prompts:
            raise Http404("No task has this tag.")
        return render(request, "tasks/history/tag.html#answers", {"answers": answers, "tag": tag})
    summary = tag_selectors.tag_summary(tag=tag, prompt=prompt)
    if not summary.count:
        raise Http404("No task has this tag.")
    changes = tag_changes(tag=tag) if request.user.has_perm("tasks.view_brandset") else []
    context = {"summary": summary, "answers": summary.answers, "tag": tag, "tag_changes": changes}
    return render(request, "tasks/history/tag.html", context)


def home(request):
    """Active tasks, the newest tasks, this month's spend and the ways to start a new one.

    Someone signed in without a role yet sees where to ask for one instead of a 403: this is where
    every login lands.
    """
    if not request.user.has_perm("tasks.view_task"):
        return render(request, "tasks/history/home.html", {"summary": None})
    summary = home_selectors.home_summary(user=request.user)
    return render(request, "tasks/history/home.html", {"summary": summary})
