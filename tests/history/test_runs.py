"""A tag page's answer timeline built in Python (tasks/history/runs.py) is the HTML its template wrote."""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.template import engines
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString

from tasks.history.runs import answer_runs
from tasks.history.tags import AnswerRun, tag_summary
from tests.factories import make_task, make_user

pytestmark = pytest.mark.django_db

HOSTILE = "<b>\"x\"</b> & 'y'"

# The loop of templates/tasks/history/tag.html's answer timeline as it was before issue 18's sixth pass.
TEMPLATE = (Path(__file__).parent / "answer_runs_reference.html").read_text().removesuffix("\n")


def _expected(runs) -> str:
    return engines["django"].from_string(TEMPLATE).render({"summary": {"runs": runs}})


def test_the_timeline_of_a_tag_is_the_html_its_template_wrote():
    now = timezone.now()
    answers = [
        "**Acme** leads; see [the guide](https://acme.example/?a=1&b=2).",
        "**Acme** leads; see [the guide](https://acme.example/?a=1&b=2).",  # the same answer again
        f"Globex leads now. {HOSTILE}",
        "Globex leads now.\n\n- one\n- two",
    ]
    people = [make_user(username=HOSTILE), None, make_user(username="ana"), None]
    for days, (text, person) in enumerate(zip(answers, people, strict=True)):
        make_task(
            tag="t",
            user_prompt="p",
            answer_text=text,
            submitted_by=person,
            created_at=now - timedelta(days=10 - days, minutes=days * 7),
            resolved_model_name=HOSTILE if days == 2 else "",
            citations=[{"url": "https://acme.example/", "domain": "acme.example", "cited_text": "Acme"}],
        )
    runs = tag_summary(tag="t").answers.runs
    assert [run.changed for run in runs] == [False, False, True, True]

    for zone in ("UTC", "Pacific/Chatham"):  # local time, as the template's date filter shows it
        with timezone.override(zone):
            assert answer_runs(runs) == _expected(runs)


@pytest.mark.parametrize("similarity", [0.0, 0.004, 0.005, 0.125, 0.5, 0.995, 1.0])
def test_a_changed_run_shows_its_similarity_as_the_template_did(similarity):
    first, second = make_task(answer_text="a"), make_task(answer_text="b", spend_is_final=False)
    runs = [
        AnswerRun(task=first),
        AnswerRun(task=second, changed=True, similarity=similarity, diff_html=SafeString("<del>a</del>")),
        AnswerRun(task=second, changed=True, similarity=similarity, diff_html=HOSTILE),  # not marked safe
    ]

    assert answer_runs(runs) == _expected(runs)


def test_no_runs_is_no_html():
    assert answer_runs([]) == _expected([]) == ""


def test_a_provisional_cost_reads_as_the_template_wrote_it():
    task = make_task(answer_text="a", spend=Decimal("0.0123"), spend_is_final=False)

    assert "provisional" in answer_runs([AnswerRun(task=task)])
    assert answer_runs([AnswerRun(task=task)]) == _expected([AnswerRun(task=task)])


def test_each_run_is_compared_with_the_previous_run_of_its_own_model():
    """A monitor on two models: gpt-4.1, claude, gpt-4.1, claude, each model always giving its own same
    answer. Compared run to run, every run after the first read “changed” (one model's answer against the
    other's) while the monitor's table beside it said “changed 0×”."""
    now = timezone.now()
    for n, (provider, model, text) in enumerate(
        [
            ("chat_gpt", "gpt-4.1", "GPT says Acme."),
            ("claude", "claude-3-5-haiku", "Claude says Globex."),
            ("chat_gpt", "gpt-4.1", "GPT says Acme."),
            ("claude", "claude-3-5-haiku", "Claude says Initech."),
        ]
    ):
        make_task(
            tag="t",
            user_prompt="p",
            provider=provider,
            model_name=model,
            answer_text=text,
            created_at=now - timedelta(minutes=10 - n),
        )

    runs = tag_summary(tag="t").answers.runs

    assert [run.changed for run in runs] == [False, False, False, True]
    assert "Globex" in runs[3].diff_html and "Initech" in runs[3].diff_html
    html = answer_runs(runs)
    assert html.count("first run shown") == 1
    assert html.count("first run of this model shown") == 1
    assert html.count("same answer as before") == 1
    assert html.count("What changed since the previous run") == 1
    assert html == _expected(runs)


def test_a_changed_answer_never_reads_100_percent_similar(member_client):
    """One word changed in a 300-word answer is 99.7% similar: it read “changed … (100% similar)”. And an
    answer whose Markdown changed but whose text did not (bold taken off) read “100% similar” over a diff
    with nothing marked."""
    now = timezone.now()
    words = " ".join(f"word{i}" for i in range(300))
    for n, text in enumerate([words, words.replace("word150", "other"), "Acme **leads**.", "Acme leads."]):
        make_task(
            tag=f"t{n // 2}", user_prompt="p", answer_text=text, created_at=now - timedelta(minutes=9 - n)
        )

    one_word = member_client.get(reverse("history:tag_detail", kwargs={"tag": "t0"})).content.decode()
    formatting = member_client.get(reverse("history:tag_detail", kwargs={"tag": "t1"})).content.decode()

    assert "(99% similar)" in one_word and "100% similar" not in one_word
    assert "100% similar" not in formatting
    assert "(same words, only the formatting changed)" in formatting


def test_a_runs_citation_numbers_open_the_citation_on_its_task_page(member_client):
    # The tag page has no citations list: "#cite-1" led nowhere (and was the same for every run).
    answer = "Acme leads the market."
    task = make_task(
        tag="t",
        user_prompt="p",
        answer_text=answer,
        citations=[
            {"url": "https://acme.example/", "domain": "acme.example", "start_index": 0, "end_index": 4}
        ],
    )

    page = member_client.get(reverse("history:tag_detail", kwargs={"tag": "t"})).content.decode()

    detail = reverse("history:task_detail", args=[task.pk])
    assert f'<sup class="cite-ref"><a href="{detail}#cite-1" rel="noopener noreferrer nofollow">1</a>' in page
    assert 'href="#cite-1"' not in page
