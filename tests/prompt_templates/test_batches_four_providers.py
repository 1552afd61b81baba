"""A batch mixing all four providers and both modes: queued where the model can be queued, live otherwise;
one submission per provider and mode; every task completes with its answer, citations and cost; the spend
page splits the four providers."""

from collections import Counter
from decimal import Decimal

import pytest
from django.urls import reverse

from sandbox import stats
from tasks.models import Task
from tasks.prompt_templates import batches
from tasks.prompt_templates.services import template_create
from tasks.spend.periods import period_preset
from tasks.spend.reports import spend_by
from tasks.submission import collection
from tests.factories import make_catalog
from tests.submission.sending import send_planned

pytestmark = pytest.mark.django_db(transaction=True)

MODELS = ["gpt-4.1-mini", "claude-3-5-haiku", "gemini-2.5-flash", "gemini-2.5-pro", "sonar"]


@pytest.fixture
def template(admin_user):
    make_catalog()
    fields = {"user_prompt": "Best {{dish}} in {{city}}?", "model_name": "gpt-4.1-mini"}
    return template_create(name="Food", provider="chat_gpt", fields=fields, user=admin_user)


def test_a_batch_of_four_providers_queues_what_it_can_and_sends_the_rest_live(
    template, live_credential, admin_user, settings
):
    settings.SANDBOX_TASK_DELAY = 0
    plan = batches.batch_plan(
        version=template.versions.get(), rows_text="dish,city\npho,Hanoi\nramen,Tokyo\n", models=MODELS,
        credential=live_credential,
    )  # fmt: skip
    assert plan.ok, plan.errors
    assert plan.live_count == 4  # gemini-2.5-pro and sonar, two rows each
    assert plan.total_charge == 6 * Decimal("0.0102") + 4 * Decimal("0.0106")
    stats.clear()

    batch = batches.batch_submit(
        plan=plan, credential=live_credential, user=admin_user, idempotency_key="mix"
    )
    send_planned()
    for task in batch.tasks.filter(status=Task.Status.SUBMITTED):
        collection.task_fetch(task_id=task.pk)

    tasks = list(batch.tasks.all())
    assert Counter((t.provider, t.mode) for t in tasks) == Counter(
        {("chat_gpt", "task_post"): 2, ("claude", "task_post"): 2, ("gemini", "task_post"): 2,
         ("gemini", "live"): 2, ("perplexity", "live"): 2}
    )  # fmt: skip
    assert {t.status for t in tasks} == {Task.Status.COMPLETED}, [t.status_message for t in tasks]
    assert all(t.answer_text and t.cost for t in tasks)
    assert stats.request_count(function="live", method="POST") == 4
    assert stats.request_count(function="task_post", method="POST") == 3  # one per queued provider

    by_provider = spend_by(period=period_preset("this_month"), dimension="provider")
    assert {row.label: row.tasks for row in by_provider.rows} == {
        "ChatGPT": 2, "Claude": 2, "Gemini": 4, "Perplexity": 2,
    }  # fmt: skip
    assert by_provider.total == sum((t.spend for t in tasks), Decimal(0))
    page = _spend_page(live_credential, admin_user)
    assert 'href="/tasks/?' in page and "provider=perplexity" in page


def _spend_page(credential, user) -> str:
    from django.test import Client

    client = Client()
    client.force_login(user)
    response = client.get(reverse("spend:page"), {"dimension": "provider"})
    assert response.status_code == 200
    return response.content.decode()
