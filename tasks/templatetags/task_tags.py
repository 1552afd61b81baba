"""Template helpers for tasks: status badges, money, cost summaries, JSON and answers."""

import json

from django import template
from django.urls import reverse

from tasks.history import rendering, rows, runs
from tasks.submission.own_callbacks import callback_tokens_masked
from tasks.templatetags.spend_format import money, money_exact

register = template.Library()

# The product's one money rule (spend_format), also under this library for the history templates.
register.filter("money", money)
register.filter("money_exact", money_exact)


register.simple_tag(rows.status_badge, name="status_badge")
register.simple_tag(rows.task_cost, name="task_cost")
register.simple_tag(rows.task_row, name="task_row")
register.simple_tag(rows.task_rows, name="task_rows")
register.simple_tag(runs.answer_runs, name="answer_runs")


@register.filter
def pretty_json(value) -> str:
    """Indented JSON as text (the template escapes it), the token of any callback URL masked: a
    request or a result (the upstream echoes the request) shows the product's own callback URLs as
    /callbacks/<task-id>/****/postback/."""
    if value is None:
        return ""
    return callback_tokens_masked(
        json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    )


@register.simple_tag
def answer_html(task, elsewhere: bool = False):
    """The task's answer as sanitized HTML with cited spans highlighted; `elsewhere` (a page without its
    citations list): their numbers link to the citations on the task's page."""
    page = reverse("history:task_detail", args=[task.pk]) if elsewhere else ""
    return rendering.render_answer(task.answer_text, task.citations, citations_page=page)


@register.simple_tag
def markdown_html(text):
    return rendering.render_markdown(text)


@register.simple_tag
def cited_text(task, citation) -> str:
    """The cited span as it reads in the answer (rendered Markdown, sanitized)."""
    return rendering.cited_html(task.answer_text, citation)


@register.filter
def model_display(task) -> str:
    if task.resolved_model_name and task.resolved_model_name != task.model_name:
        return f"{task.model_name} → {task.resolved_model_name}"
    return task.model_name


@register.filter
def refunded(task):
    """What was charged at post but not spent: charge − final cost (None until both are known)."""
    if task.charged is None or task.cost is None:
        return None
    return task.charged - task.cost


@register.filter
def sub(value, other):
    try:
        return value - other
    except TypeError:
        return None


@register.filter
def http_url(value) -> str:
    """The URL if it is http(s), else "": a citation URL comes from the upstream and goes into an href."""
    url = str(value or "").strip()
    return url if url.lower().startswith(("https://", "http://")) else ""


@register.simple_tag
def active_filter_count(form, *ignored: str) -> int:
    """How many fields of a bound filter form hold a value other than their default, the `ignored` names
    (a sort order, a display choice) aside: the count a folded filter panel shows."""
    if not form.is_bound:
        return 0
    count = 0
    for name, field in form.fields.items():
        if name in ignored or field.widget.is_hidden:
            continue
        value = form[name].value()
        if value in (None, "", [], (), False) or str(value) == str(
            field.initial if field.initial is not None else ""
        ):
            continue
        count += 1
    return count
