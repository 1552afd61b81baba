"""Visibility pages: brand sets and their brands, the matching test page, each set's and each tag's
visibility (+ CSV), and the answers behind a figure with the mentions highlighted.

Viewing needs `view_brandset`, changing a set `change_brandset` (Members and Admins have both); the
cost figures need `view_spend`, as on the spend page.
"""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from tasks.fragments import wants_fragment
from tasks.models import Brand, BrandSet, Provider, Task
from tasks.spend import periods
from tasks.visibility import csv as visibility_csv
from tasks.visibility.changes import answer_changes
from tasks.visibility.charts import visibility_chart
from tasks.visibility.extraction import Matcher, analyse, highlight
from tasks.visibility.forms import (
    AnswersForm,
    BrandForm,
    BrandSetForm,
    MatchTestForm,
    TagSetForm,
    VisibilityFilterForm,
)
from tasks.visibility.mentions import brand_rules
from tasks.visibility.rendering import highlight_answer
from tasks.visibility.selectors import AnswerScope, answer_rows, visibility_report
from tasks.visibility.services import (
    NameTaken,
    brand_delete,
    brand_save,
    brand_set_delete,
    brand_set_save,
    brand_sets_for_tag,
)
from tasks.visibility.tables import report_tables

ANSWERS_PER_PAGE = 20


@permission_required("tasks.view_brandset", raise_exception=True)
@require_GET
def set_list(request):
    sets = BrandSet.objects.prefetch_related("brands", "tag_links")
    return render(request, "tasks/visibility/sets.html", {"sets": sets})


def _done(request, url: str):
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


@permission_required("tasks.change_brandset", raise_exception=True)
@require_http_methods(["GET", "POST"])
def set_edit(request, set_id: int | None = None):
    brand_set = get_object_or_404(BrandSet, pk=set_id) if set_id is not None else None
    if request.method == "POST":
        form = BrandSetForm(request.POST, instance=brand_set)
        if form.is_valid():
            data = form.cleaned_data
            try:
                saved = brand_set_save(
                    actor=request.user,
                    brand_set=brand_set,
                    name=data["name"],
                    description=data["description"],
                    tags=data["tags"],
                )
            except NameTaken as exc:  # taken since the form's check (Save pressed twice, two tabs)
                form.add_error("name", str(exc))
            else:
                messages.success(
                    request, f"Brand set “{saved}” saved; its answers are read again in the background."
                )
                return _done(request, reverse("visibility:set_edit", args=[saved.pk]))
    else:
        form = BrandSetForm(instance=brand_set)
    context = {
        "form": form,
        "brand_set": brand_set,
        "brand_form": BrandForm(brand_set=brand_set) if brand_set else None,
    }
    template = "tasks/visibility/set_form.html" + ("#form" if wants_fragment(request) else "")
    return render(request, template, context)


@permission_required("tasks.delete_brandset", raise_exception=True)
@require_http_methods(["GET", "POST"])
def set_delete(request, set_id: int):
    brand_set = get_object_or_404(BrandSet, pk=set_id)
    if request.method == "POST":
        brand_set_delete(brand_set=brand_set)
        messages.success(request, f"Brand set “{brand_set.name}” deleted.")
        return _done(request, reverse("visibility:set_list"))
    return render(request, "tasks/visibility/set_delete.html", {"brand_set": brand_set})


@permission_required("tasks.change_brandset", raise_exception=True)
@require_http_methods(["GET", "POST"])
def brand_edit(request, set_id: int, brand_id: int | None = None):
    brand_set = get_object_or_404(BrandSet, pk=set_id)
    brand = get_object_or_404(Brand, pk=brand_id, brand_set=brand_set) if brand_id is not None else None
    if request.method == "POST":
        form = BrandForm(request.POST, brand_set=brand_set, instance=brand)
        if form.is_valid():
            try:
                saved = brand_save(brand_set=brand_set, brand=brand, **form.cleaned_data)
            except NameTaken as exc:  # taken since the form's check
                form.add_error("name", str(exc))
            else:
                messages.success(
                    request, f"Brand “{saved}” saved; the set's answers are read again in the background."
                )
                return _done(request, reverse("visibility:set_edit", args=[brand_set.pk]))
    else:
        form = BrandForm(brand_set=brand_set, instance=brand)
    template = "tasks/visibility/brand_form.html" + ("#form" if wants_fragment(request) else "")
    return render(request, template, {"form": form, "brand_set": brand_set, "brand": brand})


@permission_required("tasks.change_brandset", raise_exception=True)
@require_http_methods(["GET", "POST"])
def brand_remove(request, set_id: int, brand_id: int):
    # brand_set__pk, not brand_set_id: a pk lookup finds nothing (a 404) for an id beyond the column's range.
    brand = get_object_or_404(Brand, pk=brand_id, brand_set__pk=set_id)
    if request.method == "POST":
        brand_delete(brand=brand)
        messages.success(request, f"Brand “{brand.name}” deleted.")
        return _done(request, reverse("visibility:set_edit", args=[set_id]))
    return render(
        request, "tasks/visibility/brand_delete.html", {"brand": brand, "brand_set": brand.brand_set}
    )


@permission_required("tasks.view_brandset", raise_exception=True)
@require_http_methods(["GET", "POST"])
def set_test(request, set_id: int):
    """Paste an answer, see what the set's brands match in it; nothing is saved."""
    brand_set = get_object_or_404(BrandSet, pk=set_id)
    form = MatchTestForm(request.POST or None)
    result = None
    if request.method == "POST" and form.is_valid():
        rules = brand_rules(brand_set.pk)
        matcher = Matcher(rules)
        text = form.cleaned_data["text"]
        findings = analyse(matcher, text, [])
        ours = {rule.id for rule in rules if rule.is_ours}
        result = {
            "html": highlight(text, findings.matches, ours=ours),
            "timed_out": matcher.timed_out,
            "brands": [
                (rule, findings.brands.get(rule.id)) for rule in sorted(rules, key=lambda r: r.name.lower())
            ],
        }
    fragment = wants_fragment(request)
    template = "tasks/visibility/test.html" + ("#result" if fragment else "")
    # htmx redraws the result only: a refused text is said there, or "Find brands" would seem to do nothing.
    refusal = " ".join(form["text"].errors) if fragment and form.is_bound else ""
    context = {
        "brand_set": brand_set,
        "form": form,
        "result": result,
        "refusal": refusal,
        "has_brands": bool(result["brands"]) if result else brand_set.brands.exists(),
    }
    return render(request, template, context)


def _export_query(request) -> str:
    query = request.GET.copy()
    for name in ("title", "back"):
        query.pop(name, None)
    return f"?{query.urlencode()}" if query else ""


def _safe_back(request) -> str:
    back = request.GET.get("back", "")
    if back.startswith("/") and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return back
    return ""


def _report_context(request, *, brand_set: BrandSet, scope: AnswerScope, for_page: bool) -> dict:
    form = VisibilityFilterForm(request.GET or None)
    period = form.chosen_period()
    report = visibility_report(
        brand_set=brand_set, scope=scope, period=period, granularity=form.chosen_granularity()
    )
    context = {
        "form": form,
        "report": report,
        "period": period,
        "granularity": report.granularity,
        "presets": [(key, label) for key, label in periods.PERIOD_CHOICES if key != "custom"],
        "show_cost": request.user.has_perm("tasks.view_spend"),
    }
    if for_page:
        # A set that cannot have figures yet says why, instead of a page of zeros.
        context["reads_no_tag"] = scope.tags is None and not brand_set.tag_links.exists()
        context["chart"] = visibility_chart(report)
        context["tables"] = report_tables(report, show_cost=context["show_cost"])
    return context


@permission_required("tasks.view_brandset", raise_exception=True)
@require_GET
def set_page(request, set_id: int):
    brand_set = get_object_or_404(BrandSet, pk=set_id)
    context = _report_context(request, brand_set=brand_set, scope=AnswerScope(), for_page=True)
    context.update(
        brand_set=brand_set,
        title=brand_set.name,
        export_url=reverse("visibility:set_export", args=[set_id]) + _export_query(request),
        page_url=reverse("visibility:set_page", args=[set_id]),
        oob=wants_fragment(request),
    )
    template = "tasks/visibility/report.html" + ("#report" if context["oob"] else "")
    return render(request, template, context)


@permission_required("tasks.view_brandset", raise_exception=True)
@require_GET
def set_export(request, set_id: int):
    brand_set = get_object_or_404(BrandSet, pk=set_id)
    context = _report_context(request, brand_set=brand_set, scope=AnswerScope(), for_page=False)
    return visibility_csv.report_response(context["report"], show_cost=context["show_cost"])


def _tag_set(request, tag: str) -> tuple[BrandSet | None, list[BrandSet], TagSetForm]:
    sets = list(brand_sets_for_tag(tag))
    set_form = TagSetForm(request.GET or None, sets=sets)
    return set_form.chosen_set(), sets, set_form


def tag_visibility(request, tag: str, *, title: str = "", back: str = "", page_url: str = ""):
    """A tag's visibility page; a monitor's page calls it with the monitor's tag, title, back link and its
    own URL (where the page's filters go)."""
    brand_set, sets, set_form = _tag_set(request, tag)
    context = {
        "tag": tag,
        "sets": sets,
        "brand_set": brand_set,
        "set_form": set_form,  # a set asked for that does not read the tag is named at the top
        "title": title or tag,
        "back": back,
    }
    if brand_set is not None:
        context.update(
            _report_context(request, brand_set=brand_set, scope=AnswerScope(tags=(tag,)), for_page=True)
        )
        context["changes"] = answer_changes(brand_set=brand_set, tag=tag)
        context["export_url"] = reverse("visibility:tag_export", kwargs={"tag": tag}) + _export_query(request)
    else:
        # No filters to show without a set, but wrong ones in the query are still named on the page.
        context["form"] = VisibilityFilterForm(request.GET or None)
    context["page_url"] = page_url or reverse("visibility:tag_page", kwargs={"tag": tag})
    context["oob"] = wants_fragment(request) and brand_set is not None
    template = "tasks/visibility/report.html" + ("#report" if context["oob"] else "")
    return render(request, template, context)


@permission_required("tasks.view_brandset", raise_exception=True)
@require_GET
def tag_page(request, tag: str):
    return tag_visibility(request, tag, title=request.GET.get("title", "")[:200], back=_safe_back(request))


@permission_required("tasks.view_brandset", raise_exception=True)
@require_GET
def tag_export(request, tag: str):
    brand_set, _, _ = _tag_set(request, tag)
    if brand_set is None:
        raise Http404("No brand set reads this tag.")
    context = _report_context(request, brand_set=brand_set, scope=AnswerScope(tags=(tag,)), for_page=False)
    return visibility_csv.report_response(context["report"], show_cost=context["show_cost"])


@permission_required("tasks.view_brandset", raise_exception=True)
@require_GET
def answers(request, set_id: int):
    """The answers behind a figure, newest first, the set's brands highlighted in each."""
    brand_set = get_object_or_404(BrandSet, pk=set_id)
    form = AnswersForm(request.GET, brand_set=brand_set)
    data = form.valid_filters()  # the invalid ones are listed at the top of the answers
    tags = [t[:255] for t in request.GET.getlist("tag")[:50]]
    scope = AnswerScope(tags=tuple(tags) if tags else None)
    period = form.chosen_period()
    brand = data.get("brand")
    figure = data.get("figure") or ("mentioned" if brand else "answers")
    if figure == "position" and data.get("position") is None:
        figure = "mentioned"  # the position was wrong or missing (listed as ignored): every position
    rows = answer_rows(
        brand_set=brand_set,
        scope=scope,
        period=period,
        figure=figure,
        brand_id=brand.pk if brand else None,
        position=data.get("position"),
        provider=data.get("provider") or "",
        model_name=data.get("model") or "",
    )
    asked = data.get("page") or 1
    page = Paginator(rows, ANSWERS_PER_PAGE).get_page(asked)
    ids = [task_id for task_id, _ in page.object_list]
    fields = ("id", "created_at", "user_prompt", "provider", "model_name", "tag", "answer_text", "spend")
    found = Task.objects.only(*fields).in_bulk(ids)
    page.object_list = [found[task_id] for task_id in ids if task_id in found]
    rules = brand_rules(brand_set.pk)
    matcher, ours = Matcher(rules), {rule.id for rule in rules if rule.is_ours}
    for task in page.object_list:
        task.highlighted = highlight_answer(task.answer_text, matcher.find(task.answer_text), ours=ours)
    query = request.GET.copy()
    query.pop("page", None)
    first_page = query.copy()
    first_page["page"] = 1
    context = {
        # A page past the last (an old link, an edited URL) shows the last one, and says so.
        "page_past_end": asked if asked > page.number else None,
        "first_page_query": first_page.urlencode(),
        "form": form,
        "brand_set": brand_set,
        "brand": brand,
        "figure": figure,
        "position": data.get("position"),
        "period": period,
        "period_note": form.period_note(),
        "period_cut_note": form.period_cut_note(),
        "page": page,
        "tags": tags,
        "provider": Provider(data["provider"]).label if data.get("provider") else "",
        "model": data.get("model") or "",
        "query": query.urlencode(),
        "show_cost": request.user.has_perm("tasks.view_spend"),
    }
    template = "tasks/visibility/answers.html" + ("#list" if wants_fragment(request) else "")
    return render(request, template, context)
