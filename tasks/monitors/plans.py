"""What a monitor's run sends: every task body, per credential and provider, checked by the builder's form.

A template monitor is planned as a batch is (`prompt_templates.batches.batch_plan`, once per target so
each target's credential is the one its tasks use); a request monitor is its one builder request on each
target. Every body carries the monitor's tag, so a monitor's tasks are its tag's history.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from tasks.builder.forms import TaskRequestForm, form_data_from_fields
from tasks.models import Credential, Monitor, MonitorRun, ProviderModel, Task
from tasks.prompt_templates.batches import batch_mode, batch_plan
from tasks.prompt_templates.rows import parse_rows
from tasks.prompt_templates.services import template_variables
from tasks.upstream.providers import TASK_POST, charge_per_task, provider_rules


@dataclass
class RunGroup:
    """The tasks of one run that go to one credential, provider and mode (queued or live): one submission."""

    credential: Credential
    provider: str
    mode: str = TASK_POST
    bodies: list[dict] = field(default_factory=list)
    variables: list[dict[str, str]] = field(default_factory=list)
    charge_per_task: Decimal = Decimal("0")


@dataclass
class RunPlan:
    groups: list[RunGroup] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    row_count: int = 0
    models: list[str] = field(default_factory=list)
    # Of a retry: its tasks the upstream accepted and charged before they failed, and what they were charged.
    paid_count: int = 0
    paid: Decimal = Decimal("0")
    # ... and those whose reply was lost, settled after 30 days as charged at their estimate (no charge
    # at post is known, but the spend counts them as paid).
    settled_count: int = 0
    settled: Decimal = Decimal("0")

    @property
    def task_count(self) -> int:
        return sum(len(group.bodies) for group in self.groups)

    @property
    def charge(self) -> Decimal:
        return sum((group.charge_per_task * len(group.bodies) for group in self.groups), Decimal("0"))


def plan_charges(plan: RunPlan, *, tag: str) -> list[tuple[str, Decimal]]:
    """(tag, estimated charge) of each task of `plan`, as the budgets count them: each under the tag its
    body carries (a retry's are sent as they were, perhaps under a tag the monitor has since changed)."""
    return [
        (str(body.get("tag") or tag), group.charge_per_task) for group in plan.groups for body in group.bodies
    ]


def run_plan(*, monitor: Monitor) -> RunPlan:
    """Every task one run of `monitor` sends, or every reason it cannot run."""
    plan = RunPlan()
    targets = monitor.targets or []
    if not targets:
        plan.errors.append("The monitor has no model to run on.")
        return plan
    credentials = Credential.objects.in_bulk([t.get("credential_id") for t in targets])
    catalog = {}
    for entry in ProviderModel.objects.filter(is_listed=True):
        catalog.setdefault(entry.model_name, entry.provider)
    groups: dict[tuple[int, str, str], RunGroup] = {}
    for target in targets:
        model = target.get("model_name", "")
        credential = credentials.get(target.get("credential_id"))
        plan.models.append(model)
        if problem := _credential_problem(model, credential):
            plan.errors.append(problem)
            continue
        bodies, providers, variables, modes, rows = _target_bodies(
            monitor, model, credential, catalog, plan.errors
        )
        plan.row_count = max(plan.row_count, rows)
        for body, provider, values, mode in zip(bodies, providers, variables, modes, strict=True):
            body["tag"] = monitor.tag
            group = groups.setdefault(
                (credential.pk, provider, mode),
                RunGroup(
                    credential=credential,
                    provider=provider,
                    mode=mode,
                    charge_per_task=charge_per_task(mode=mode, price_multiplier=credential.price_multiplier),
                ),
            )
            group.bodies.append(body)
            group.variables.append(values)
    plan.groups = list(groups.values())
    if not plan.errors and not plan.task_count:
        plan.errors.append("The monitor has nothing to send.")
    return plan


def credential_problems(*, monitor: Monitor) -> list[str]:
    """Why the monitor's runs cannot be sent for its credentials (one deleted or disabled fails every run,
    as `run_plan` says): one query, without planning the run."""
    targets = monitor.targets or []
    credentials = Credential.objects.in_bulk([t.get("credential_id") for t in targets])
    problems = (
        _credential_problem(t.get("model_name", ""), credentials.get(t.get("credential_id"))) for t in targets
    )
    return [problem for problem in problems if problem]


def _credential_problem(model: str, credential: Credential | None) -> str:
    if credential is None:
        return f"{model}: its credential was deleted."
    if not credential.is_active:
        return f"{model}: the credential “{credential.name}” is disabled."
    return ""


def retry_plan(*, run: MonitorRun) -> RunPlan:
    """What a retry of `run` sends: only the tasks of it that failed, each request again as it was sent,
    to the same credential, provider and mode. Its completed tasks are not paid for twice, and its unknown
    ones (perhaps charged) are left to reconciliation (`run` is the `retry_source` of the run retried).
    Failed tasks the upstream had accepted and charged
    (no result after 72 hours, not found, an upstream id another task has) are sent again too and paid
    again: `paid_count` and `paid` say so. A run that failed before it wrote any task has no batch: its
    retry is planned anew from the monitor (`run_plan`)."""
    return _failed_tasks_plan(list(_failed_tasks([run.batch_id])))


def retry_source(run: MonitorRun) -> MonitorRun | None:
    """The run whose failed tasks a retry of `run` sends: `run` itself when it wrote tasks, else the run
    it retried, back along its retries, that wrote some (a retry that failed before writing any, e.g. on
    a disabled credential, retried again still sends only those). None: the monitor's whole plan."""
    seen = set()
    while run is not None and run.pk not in seen:
        if run.batch_id:
            return run
        seen.add(run.pk)
        run = run.retry_of if run.retry_of_id else None
    return None


def retry_plans(*, runs: list[MonitorRun]) -> dict:
    """`retry_plan` of each run that has a batch, by run id, in one query (the monitor page's previews)."""
    by_batch = defaultdict(list)
    for task in _failed_tasks([run.batch_id for run in runs if run.batch_id]):
        by_batch[task.batch_id].append(task)
    return {run.pk: _failed_tasks_plan(by_batch[run.batch_id]) for run in runs if run.batch_id}


def _failed_tasks(batch_ids):
    return (
        Task.objects.filter(batch_id__in=batch_ids, status=Task.Status.FAILED)
        .select_related("credential")
        .order_by("created_at")
    )


def _failed_tasks_plan(failed: list[Task]) -> RunPlan:
    plan = RunPlan()
    if not failed:
        plan.errors.append("The run has no failed task left to retry.")
        return plan
    groups: dict[tuple[int, str, str], RunGroup] = {}
    for task in failed:
        credential = task.credential
        if not credential.is_active:
            error = f"{task.model_name}: the credential “{credential.name}” is disabled."
            if error not in plan.errors:
                plan.errors.append(error)
            continue
        group = groups.setdefault(
            (credential.pk, task.provider, task.mode),
            RunGroup(
                credential=credential,
                provider=task.provider,
                mode=task.mode,
                charge_per_task=charge_per_task(mode=task.mode, price_multiplier=credential.price_multiplier),
            ),
        )
        group.bodies.append(dict(task.request_body))
        group.variables.append(task.variables or {})
        if task.charged:  # accepted and charged at post, then failed: a retry pays again
            plan.paid_count += 1
            plan.paid += task.charged
        elif task.charged is None and task.spend_is_final and task.spend:  # a lost reply, settled
            plan.settled_count += 1
            plan.settled += task.spend
        if task.model_name not in plan.models:
            plan.models.append(task.model_name)
    plan.groups = list(groups.values())
    plan.row_count = len({tuple(sorted((task.variables or {}).items())) for task in failed})
    return plan


def _target_bodies(monitor, model, credential, catalog, errors):
    if monitor.template_version_id:
        batch = batch_plan(
            version=monitor.template_version,
            rows_text=monitor.rows_text,
            models=[model],
            credential=credential,
        )
        errors.extend(batch.errors)
        if batch.errors:
            return [], [], [], [], len(batch.rows)
        tasks = batch.tasks()
        return (
            [body for body, _p, _v in tasks],
            [provider for _b, provider, _v in tasks],
            [values for _b, _p, values in tasks],
            [batch.mode_of(i) for i in range(len(tasks))],
            len(batch.rows),
        )
    fields = monitor.request_fields or {}
    provider = catalog.get(model) or monitor.request_provider
    rules = provider_rules(provider)
    entries = [e for e in ProviderModel.objects.filter(is_listed=True, provider=provider)]
    # Queued where the model can be, live otherwise (Perplexity, live-only models), as a batch sends it.
    mode = batch_mode(rules, fields.get("mode"), model, entries)
    data = form_data_from_fields(rules, {**fields, "model_name": model, "mode": mode}, credential=credential)
    form = TaskRequestForm(data, rules=rules, catalog=entries, credential_checked=True)
    if not form.is_valid():
        for name, messages in form.errors.items():
            label = form[name].label if name in form.fields else name
            errors.extend(f"{model}: {label}: {message}" for message in messages)
        return [], [], [], [], 1
    return [form.body], [provider], [{}], [mode], 1


def rows_count(*, monitor: Monitor) -> int:
    """How many rows a run has (1 for a request), without checking them: for estimates."""
    if not monitor.template_version_id:
        return 1
    rows, _errors = parse_rows(monitor.rows_text, template_variables(monitor.template_version.fields))
    return len(rows)
