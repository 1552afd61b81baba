"""The monitor pages: list, create/edit (with the live cost estimate), the monitor's page and its actions,
and the admins' alerts page (deliveries, budget destinations)."""

import re
import uuid

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tasks.builder.forms import TaskRequestForm, catalog_for
from tasks.builder.views import builder_with_errors
from tasks.fragments import wants_fragment
from tasks.history.tags import tag_answers
from tasks.models import AlertDelivery, AlertDestination, Budget, Monitor, MonitorRun, Task
from tasks.monitors import selectors, services
from tasks.monitors.alerts import alert_test, destination_kinds_label
from tasks.monitors.cadence import zone_of
from tasks.monitors.forms import AlertKindsForm, BrandSetForm, DestinationForm, MonitorForm, StateForm
from tasks.monitors.requests import start_from_builder, start_from_task
from tasks.monitors.runs import RunRefused, run_now, run_retry
from tasks.monitors.slugs import follows_renames, monitor_or_404
from tasks.spend.budgets import exact_usd
from tasks.upstream.providers import provider_rules
from tasks.visibility.changes import tag_changes
from tasks.visibility.services import brand_set_attach_tag
from tasks.visibility.views import tag_visibility

RUN_KEY = re.compile(r"[0-9a-f]{32}")  # what `run_now_key` gives the page: uuid4().hex


@permission_required("tasks.view_monitor", raise_exception=True)
@require_GET
def monitor_list(request):
    state = request.GET.get("state", "")
    state = state if state in Monitor.State.values else ""
    monitors = selectors.monitor_rows(state=state)
    return render(request, "tasks/monitors/list.html", {"monitors": monitors, "state": state})


@permission_required("tasks.add_monitor", raise_exception=True)
@require_http_methods(["GET", "POST"])
@follows_renames
def monitor_edit(request, slug: str | None = None):
    monitor = monitor_or_404(slug) if slug else None
    if monitor is not None and not request.user.has_perm("tasks.change_monitor"):
        raise PermissionDenied
    estimate = None
    if request.method == "POST":
        form = MonitorForm(request.POST, request.FILES, monitor=monitor)
        if form.is_valid():
            saved = services.monitor_save(
                actor=request.user,
                unsaved=form.unsaved(),
                monitor=monitor,
                description=form.cleaned_data["description"],
            )
            # As the page's “Upcoming runs” shows it: in the monitor's zone, named; not Python's "…+00:00".
            next_run = (
                f"{date_format(localtime(saved.next_run_at, zone_of(saved.time_zone)), 'D Y-m-d H:i')} "
                f"({saved.time_zone})"
                if saved.next_run_at
                else "none"
            )
            messages.success(request, f"Monitor “{saved.name}” saved; next run {next_run}.")
            return redirect("monitors:detail", slug=saved.slug)
        if form.plan is not None and not form.plan.errors:
            estimate = selectors.monitor_estimate(monitor=form.unsaved(), plan=form.plan)
    elif monitor is None and request.GET.get("from_task"):
        task = _task_or_404(request.GET["from_task"])
        form = MonitorForm(initial=MonitorForm.initial_for_request(start_from_task(task)))
    else:
        form = MonitorForm(initial=MonitorForm.initial_for(monitor) if monitor else None, monitor=monitor)
    context = {
        "form": form,
        "monitor": monitor,
        "estimate": estimate,
        "state": monitor.state if monitor else "",
    }
    return render(request, "tasks/monitors/form.html", context)


def _task_or_404(task_id: str) -> Task:
    try:
        task = Task.objects.select_related("credential").filter(pk=task_id).first()
    except ValidationError:  # not a uuid
        task = None
    if task is None:
        raise Http404("No such task.")
    return task


@permission_required(["tasks.add_monitor", "tasks.add_task"], raise_exception=True)
@require_POST
def monitor_from_request(request):
    """ "Monitor this request" in the builder: the builder's form posted here, checked by the builder's own
    form; the monitor form opens pre-filled with it, or the builder comes back with its errors, input kept."""
    rules = provider_rules(request.POST.get("provider"))
    form = TaskRequestForm(request.POST, rules=rules, catalog=catalog_for(rules.slug))
    if not form.is_valid():
        return builder_with_errors(request, form)
    monitor_form = MonitorForm(initial=MonitorForm.initial_for_request(start_from_builder(form)))
    return render(request, "tasks/monitors/form.html", {"form": monitor_form, "monitor": None})


@permission_required("tasks.add_monitor", raise_exception=True)
@require_POST
def monitor_estimate_view(request):
    """The cost estimate of the form as it is: binds the same form, never saves."""
    form = MonitorForm(request.POST, request.FILES)
    estimate = None
    form.is_valid()  # a form lacking only its name still has a plan, so an estimate
    if form.plan is not None and not form.plan.errors:
        estimate = selectors.monitor_estimate(monitor=form.unsaved(), plan=form.plan)
    # `live`: the caps' errors show in the estimate too, as the page's fields are not redrawn.
    context = {
        "form": form,
        "estimate": estimate,
        "live": True,
        "state": _state_of(request.GET.get("monitor")),
    }
    return render(request, "tasks/monitors/form.html#estimate", context)


def _state_of(slug: str | None) -> str:
    """The state of the monitor an edit page's estimate is for ("" for a new one)."""
    monitors = Monitor.objects.filter(Q(slug=slug) | Q(slug_aliases__slug=slug))  # an edit page left open
    state = monitors.values_list("state", flat=True).first() if slug else None
    return state or ""


def _detail_context(page, destination_form, *, prompt: str | None = None) -> dict:
    """The monitor page's context, as the page shows it and as an invalid destination re-renders it."""
    monitor = page.monitor
    return {
        "page": page,
        "monitor": monitor,
        "run_now_key": uuid.uuid4().hex,  # one per page shown: a second press of it makes no second run
        "answers": tag_answers(tag=monitor.tag, prompt=prompt),
        "tag": monitor.tag,
        "destination_form": destination_form,
        "destinations": _with_kinds(monitor.alert_destinations.all(), scope="monitor"),
    }


@permission_required("tasks.view_monitor", raise_exception=True)
@require_GET
@follows_renames
def monitor_detail(request, slug: str):
    monitor = monitor_or_404(slug, Monitor.objects.select_related("owner", "template_version__template"))
    page = selectors.monitor_page(monitor=monitor)
    if wants_fragment(request):  # the runs table alone: nothing else is read
        return render(request, "tasks/monitors/detail.html#runs", {"page": page, "monitor": monitor})
    prompt = request.GET.get("prompt") or None  # empty: the latest prompt, as on the tag page
    context = _detail_context(page, DestinationForm(), prompt=prompt)
    if request.user.has_perm("tasks.view_brandset"):
        visibility_url = reverse("monitors:visibility", args=[monitor.slug])
        context["tag_changes"] = tag_changes(tag=monitor.tag, page_url=visibility_url)
        context["brand_set_form"] = BrandSetForm()
    return render(request, "tasks/monitors/detail.html", context)


@permission_required("tasks.change_monitor", raise_exception=True)
@require_POST
@follows_renames
def monitor_state(request, slug: str):
    monitor = monitor_or_404(slug)
    form = StateForm(request.POST)
    if form.is_valid():
        monitor = services.monitor_state_set(
            actor=request.user, monitor=monitor, action=form.cleaned_data["action"]
        )
        state = monitor.get_state_display().lower()
        if monitor.state == Monitor.State.ACTIVE and monitor.next_run_at is None:  # nothing will run
            why = (
                f"its end date ({monitor.end_date:%Y-%m-%d}) has passed"
                if monitor.end_date
                else "its cadence has no slot left"
            )
            messages.warning(
                request, f"“{monitor.name}” is now {state}, but {why}: it has no run left. Edit it to go on."
            )
        else:
            messages.success(request, f"“{monitor.name}” is now {state}.")
    else:
        messages.error(request, "Choose pause, resume or archive.")
    return redirect("monitors:detail", slug=monitor.slug)


@permission_required("tasks.change_monitor", raise_exception=True)
@require_POST
@follows_renames
def monitor_run_now(request, slug: str):
    """Run now: one run per press of a page (its one-time key); a second press of the same page finds it."""
    monitor = monitor_or_404(slug)
    key = request.POST.get("request_key", "")
    try:
        run, made = run_now(
            monitor=monitor, user=request.user, request_key=key if RUN_KEY.fullmatch(key) else None
        )
    except RunRefused as exc:
        messages.error(request, str(exc))
    else:
        if not made:
            messages.info(
                request, "This Run now was pressed already: its run is below, nothing more was planned."
            )
        elif run.reason:
            messages.error(request, run.reason)
        else:
            messages.success(
                request,
                f"Run started: {run.task_count} task{pluralize(run.task_count)} planned; workers send them.",
            )
    return redirect("monitors:detail", slug=monitor.slug)


@permission_required("tasks.change_monitor", raise_exception=True)
@require_POST
@follows_renames
def monitor_run_retry(request, slug: str, run_id):
    """Retry a failed run: one new run marked as its retry (a double submit finds the same one)."""
    run = get_object_or_404(MonitorRun, pk=run_id, monitor=monitor_or_404(slug))
    try:
        retry, made = run_retry(run=run, user=request.user)
    except RunRefused as exc:
        messages.error(request, str(exc))
    else:
        if not made:
            messages.info(request, "This run was retried already; see its retry below.")
        elif retry.reason:
            messages.error(request, f"The retry did not run: {retry.reason}")
        else:
            tags = " and ".join(f"“{tag}”" for tag in selectors.run_other_tags(run=retry))
            under = f" under its run's tag {tags} (not “{retry.monitor.tag}”)" if tags else ""
            messages.success(
                request,
                f"Retry started: {retry.task_count} task{pluralize(retry.task_count)} planned, up to "
                f"{exact_usd(retry.estimated_charge)}{under}; workers send them.",
            )
    return redirect("monitors:detail", slug=slug)


@permission_required("tasks.change_monitor", raise_exception=True)
@require_POST
@follows_renames
def monitor_destination_add(request, slug: str):
    monitor = monitor_or_404(slug)
    form = DestinationForm(request.POST)
    if form.is_valid():
        _refuse_a_second_copy(form, monitor=monitor)
    if form.is_valid():
        services.destination_add(actor=request.user, monitor=monitor, **_destination_data(form))
        messages.success(request, "Alert destination added.")
        return redirect("monitors:detail", slug=monitor.slug)
    context = _detail_context(selectors.monitor_page(monitor=monitor), form)
    return render(request, "tasks/monitors/detail.html", context, status=400)


def _refuse_a_second_copy(form: DestinationForm, *, monitor=None, budget=None) -> None:
    """A form sent again (Back, a second tab) would add the same destination twice: every alert twice."""
    data = _destination_data(form)
    same = selectors.destination_existing(
        kind=data["kind"], emails=data["emails"], url=data["url"], monitor=monitor, budget=budget
    )
    if same is not None:
        owner = "monitor" if monitor is not None else "budget"
        form.add_error(None, f"This {owner} sends its alerts there already ({same}).")


def _destination_data(form: DestinationForm) -> dict:
    data = form.cleaned_data
    return {
        "kind": data["kind"],
        "emails": data.get("emails", ""),
        "url": data.get("url", ""),
        "alert_kinds": data.get("alert_kinds") or [],
    }


@permission_required("tasks.manage_budgets", raise_exception=True)
@require_http_methods(["GET", "POST"])
def alert_list(request):
    """Admins: every alert delivery (failures first to see) and the budgets' alert destinations."""
    form = DestinationForm(scope="budget")
    budget_choices = list(Budget.objects.all())
    if request.method == "POST":
        form = DestinationForm(request.POST, scope="budget")
        budget = (
            Budget.objects.filter(pk=request.POST.get("budget") or None).first()
            if request.POST.get("budget", "").isdigit()
            else None
        )
        if budget is None:
            form.add_error(None, "Choose a budget.")
        elif form.is_valid():
            _refuse_a_second_copy(form, budget=budget)
        if form.is_valid():
            services.destination_add(actor=request.user, budget=budget, **_destination_data(form))
            messages.success(request, f"Alert destination added to {budget}.")
            return redirect("monitors:alert_list")
    context = {
        "deliveries": selectors.alert_deliveries(),
        "failed": AlertDelivery.objects.filter(state=AlertDelivery.State.FAILED).count(),
        "destinations": _with_kinds(
            AlertDestination.objects.filter(budget__isnull=False).select_related("budget"), scope="budget"
        ),
        "form": form,
        "budgets": budget_choices,
    }
    return render(request, "tasks/monitors/alerts.html", context, status=400 if form.errors else 200)


def _destination_allowed(request, destination: AlertDestination) -> None:
    perm = "tasks.change_monitor" if destination.monitor_id else "tasks.manage_budgets"
    if not request.user.has_perm(perm):
        raise PermissionDenied


def _back(destination: AlertDestination):
    if destination.monitor_id:
        return redirect("monitors:detail", slug=destination.monitor.slug)
    return redirect("monitors:alert_list")


@permission_required("tasks.view_monitor", raise_exception=True)
@require_POST
def destination_test(request, destination_id: int):
    destination = get_object_or_404(AlertDestination.objects.select_related("monitor"), pk=destination_id)
    _destination_allowed(request, destination)
    delivery = alert_test(destination=destination)
    if delivery.state == AlertDelivery.State.SENT:
        messages.success(request, f"Test alert sent to {destination}.")
    else:
        messages.error(request, f"The test alert to {destination} failed: {delivery.last_error}")
    return _back(destination)


def _with_kinds(destinations, *, scope: str) -> list[AlertDestination]:
    """The destinations, each with what it receives and the form to change it."""
    rows = list(destinations)
    for destination in rows:
        destination.kinds_label = destination_kinds_label(destination)
        destination.kinds_form = AlertKindsForm(
            scope=scope,
            prefix=f"d{destination.pk}",
            initial={"alert_kinds": destination.alert_kinds} if destination.alert_kinds else {},
        )
    return rows


@permission_required("tasks.view_monitor", raise_exception=True)
@require_POST
def destination_kinds(request, destination_id: int):
    """Choose which alert kinds a destination receives (none ticked: every kind)."""
    destination = get_object_or_404(AlertDestination.objects.select_related("monitor"), pk=destination_id)
    _destination_allowed(request, destination)
    scope = "monitor" if destination.monitor_id else "budget"
    form = AlertKindsForm(request.POST, scope=scope, prefix=f"d{destination.pk}")
    if form.is_valid():
        services.destination_kinds_set(
            actor=request.user, destination=destination, alert_kinds=form.cleaned_data["alert_kinds"]
        )
        messages.success(request, f"{destination} now receives {destination_kinds_label(destination)}.")
    else:
        messages.error(request, "Choose among the alert kinds listed.")
    return _back(destination)


@permission_required("tasks.view_monitor", raise_exception=True)
@require_POST
def destination_remove(request, destination_id: int):
    destination = get_object_or_404(AlertDestination.objects.select_related("monitor"), pk=destination_id)
    _destination_allowed(request, destination)
    back = _back(destination)
    services.destination_delete(actor=request.user, destination=destination)
    messages.success(request, "Alert destination removed.")
    return back


@permission_required(["tasks.view_monitor", "tasks.view_brandset"], raise_exception=True)
@require_GET
@follows_renames
def monitor_visibility(request, slug: str):
    """The visibility of the monitor's answers: its tag's visibility page, titled and linked back to it."""
    monitor = monitor_or_404(slug)
    back = reverse("monitors:detail", args=[monitor.slug])
    return tag_visibility(
        request,
        monitor.tag,
        title=monitor.name,  # the page reads "Visibility · <monitor>"
        back=back,
        page_url=reverse("monitors:visibility", args=[monitor.slug]),
    )


@permission_required(["tasks.change_monitor", "tasks.change_brandset"], raise_exception=True)
@require_POST
@follows_renames
def monitor_brand_set_attach(request, slug: str):
    monitor = monitor_or_404(slug)
    form = BrandSetForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a brand set.")
        return redirect("monitors:detail", slug=monitor.slug)
    brand_set = form.cleaned_data["brand_set"]
    if brand_set_attach_tag(brand_set=brand_set, tag=monitor.tag):
        messages.success(request, f"“{brand_set.name}” now reads this monitor's answers (being extracted).")
    else:
        messages.info(request, f"“{brand_set.name}” reads this monitor's answers already.")
    return redirect("monitors:detail", slug=monitor.slug)
