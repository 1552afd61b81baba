"""A tag page's answer timeline, built in Python: 20 runs through the template's tags and filters cost more
to render than the query that read them (docs/performance.md, "Pages as fast as their queries"). The HTML
is the template's (tests/history/test_runs.py renders both and compares)."""

from html import escape

from django.utils.html import conditional_escape
from django.utils.safestring import SafeString

from tasks.history import rendering
from tasks.history.rows import TaskUrls, created_link, person, task_cost


def answer_runs(runs) -> SafeString:
    """Each run's <li>: its head (when, model, person, cost, whether it changed), then the first run's
    answer (the timeline's, or its model's), or a changed run's diff against the previous run of its
    model and its full answer."""
    urls = TaskUrls()
    out = []
    for index, run in enumerate(runs):
        task = run.task
        if run.no_text:
            state = '<span class="muted">no answer text</span>'
            body = (
                '\n      <p class="muted">The upstream\'s result holds no answer text (a reasoning model may '
                "have spent every output token); the task's page shows what came back.</p>\n      "
            )
        elif index == 0:
            state = '<span class="muted">first run shown</span>'
            body = f'\n      <div class="markdown">{_answer(task, urls)}</div>\n      '
        elif run.first_of_model:
            state = '<span class="muted">first run of this model shown</span>'
            body = f'\n      <div class="markdown">{_answer(task, urls)}</div>\n      '
        elif run.changed:
            state = '<span class="changed">changed</span>'
            body = (
                "\n      <details open><summary>What changed since the previous run "
                f"({escape(run.similarity_label)})</summary>"
                f'<div class="diff">{conditional_escape(run.diff_html)}</div></details>\n'
                "      <details><summary>Full answer</summary>"
                f'<div class="markdown">{_answer(task, urls)}</div></details>\n      '
            )
        else:
            state = '<span class="unchanged">same answer as before</span>'
            body = ""
        out.append(
            '\n    <li class="run">\n      <header class="run-head">\n'
            f"        {created_link(task, urls.of(urls.detail, task.pk))}\n"
            f'        <span class="model">{escape(task.resolved_model_name or task.model_name)}</span>\n'
            f"        <span>{escape(person(task))}</span>\n"
            f"        {task_cost(task)}\n"
            f"        {state}\n"
            f"      </header>\n      {body}\n    </li>\n    "
        )
    return SafeString("".join(out))


def _answer(task, urls: TaskUrls) -> str:
    """The answer; its citation numbers open the citations on the task's page (this page lists none)."""
    return rendering.render_answer(
        task.answer_text, task.citations, citations_page=urls.of(urls.detail, task.pk)
    )
