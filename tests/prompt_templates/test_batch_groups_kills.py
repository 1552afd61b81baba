"""A batch of two providers (ChatGPT and Claude: one submission each) whose confirmation, in a real web
process, is killed (SIGKILL) at each step of `batch_submit`, then Submit pressed again on the same page and a
worker run. Whatever the step, the batch is written whole or not at all: every task of it exists and reaches
the stand-in exactly once (two POSTs, one per provider), and the budget counts the batch's estimate, once.

Before, each provider after the first was written in a transaction of its own: killed between them, the batch
was left with its first provider's tasks only, and pressing again showed that batch; the other provider's
tasks were never written or sent.
"""

from collections import Counter
from decimal import Decimal

import pytest
from django.urls import reverse

from sandbox.models import SandboxRequest, SandboxTask
from tasks.models import Batch, Budget, Task
from tasks.spend.budgets import budget_spent
from tasks.upstream.providers import LIVE, charge_per_task, queued_charge_per_task
from tests.prompt_templates.test_batch_kills import confirmation_killed_at
from tests.submission.test_kills import LEASE, finish, stand_in, worker  # noqa: F401 - stand_in is a fixture

pytestmark = pytest.mark.django_db(transaction=True)

TASKS = 6  # 3 rows × 2 models

# A step is killed at the n-th call of the sending module's `_plan` (one call per provider and mode, writing
# its chunks and rows), before or after it runs: the process kills itself from that wrapper, so the step
# handed to run_killed_at is a name nothing calls.
NOTHING_CALLS = "tasks.submission.sending:_never_called"


def killed_at_plan(call: int, *, after: bool) -> str:
    """Code that makes the process kill itself at the `call`-th `_plan` (before it, or `after` it)."""
    return f"""
import os, signal
from tasks.submission import sending
_real, _calls = sending._plan, []
def _plan(submission):
    _calls.append(1)
    if len(_calls) == {call} and not {after}:
        os.kill(os.getpid(), signal.SIGKILL)
    planned = _real(submission)
    if len(_calls) == {call} and {after}:
        os.kill(os.getpid(), signal.SIGKILL)
    return planned
sending._plan = _plan
"""


STEPS = [
    # (step, the n-th `_plan` call and whether after it, tasks written when killed)
    ("tasks.prompt_templates.batches:budgets_reserve", None, 0),  # nothing written
    (NOTHING_CALLS, (1, False), 0),  # the budgets reserved, no row written
    (NOTHING_CALLS, (1, True), 0),  # the first provider's rows written, not committed
    (NOTHING_CALLS, (2, False), 0),  # between the two providers
    (NOTHING_CALLS, (2, True), 0),  # every row written, before the commit
    ("tasks.submission.sending:send_chunks_soon", None, TASKS),  # committed, no worker woken
    ("tasks.prompt_templates.views:redirect", None, TASKS),  # committed, the answer never sent
]


def _confirmation_killed_at(at, plan_call, *, models, client, credential, user) -> tuple[str, dict]:
    prelude = killed_at_plan(plan_call[0], after=plan_call[1]) if plan_call else ""
    return confirmation_killed_at(
        at, client=client, credential=credential, user=user, models=models, tasks=TASKS, prelude=prelude
    )


@pytest.mark.parametrize(("at", "plan_call", "written"), STEPS)
def test_a_two_provider_batch_killed_at_each_step_then_pressed_again_sends_every_task_once(
    stand_in,  # noqa: F811
    member_user,
    client,
    at,
    plan_call,
    written,
):
    estimate = TASKS * queued_charge_per_task()
    team = Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=estimate)  # room for the batch once
    url, data = _confirmation_killed_at(
        at,
        plan_call,
        models=["gpt-4.1", "claude-3-5-haiku"],
        client=client,
        credential=stand_in,
        user=member_user,
    )
    _pressed_again_the_whole_batch_is_planned(
        client, url, data, written=written, team=team, estimate=estimate
    )

    code, output = finish(worker("--wait", str(LEASE)))
    assert code == 0, output
    posts = SandboxRequest.objects.filter(method="POST", function="task_post")
    assert Counter(posts.values_list("provider", flat=True)) == {"chat_gpt": 1, "claude": 1}
    assert set(Task.objects.values_list("status", flat=True)) == {Task.Status.SUBMITTED}
    reached = Counter(SandboxTask.objects.values_list("data__tag", flat=True))
    assert reached == Counter(Task.objects.values_list("request_body__tag", flat=True))  # each once
    assert len(reached) == TASKS


def _pressed_again_the_whole_batch_is_planned(client, url, data, *, written, team, estimate) -> None:
    assert Task.objects.count() == written and Batch.objects.count() == (1 if written else 0)

    again = client.post(url, data)  # the same page's Submit, pressed again

    assert "exceeded" not in again.content.decode()
    batch = Batch.objects.get()
    assert again.status_code == 302
    assert again.url == reverse("prompt_templates:batch_detail", args=[batch.pk])
    assert batch.tasks.count() == TASKS == batch.task_count
    assert budget_spent(team) == batch.estimated_charge == estimate  # reserved once


@pytest.mark.parametrize(
    ("at", "plan_call", "written"),
    [
        *STEPS[:-2],
        ("tasks.submission.sending:send_chunks_soon", None, TASKS),  # committed, no worker woken
        ("tasks.submission.sending:send_live_soon", None, TASKS),  # the same, the queued worker woken
        STEPS[-1],
    ],
)
def test_a_queued_and_live_batch_killed_at_each_step_then_pressed_again_sends_every_task_once(
    stand_in,  # noqa: F811
    member_user,
    client,
    at,
    plan_call,
    written,
):
    """gpt-4.1 queued (one chunk), o1-pro live (one chunk per task): the two modes' submissions, the
    same way."""
    estimate = 3 * queued_charge_per_task() + 3 * charge_per_task(mode=LIVE, price_multiplier=Decimal(1))
    team = Budget.objects.create(scope=Budget.Scope.TEAM, monthly_limit=estimate)
    url, data = _confirmation_killed_at(
        at, plan_call, models=["gpt-4.1", "o1-pro"], client=client, credential=stand_in, user=member_user
    )
    _pressed_again_the_whole_batch_is_planned(
        client, url, data, written=written, team=team, estimate=estimate
    )

    for args in (("--wait", str(LEASE)), ("--live", "--wait", str(LEASE))):
        code, output = finish(worker(*args))
        assert code == 0, output
    posts = SandboxRequest.objects.filter(method="POST")
    assert Counter(posts.values_list("function", flat=True)) == {"task_post": 1, "live": 3}
    modes = Counter(Task.objects.values_list("mode", "status"))
    assert modes == {(Task.Mode.QUEUED, Task.Status.SUBMITTED): 3, (Task.Mode.LIVE, Task.Status.COMPLETED): 3}
