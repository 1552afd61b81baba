"""Batches: one prompt template run over many rows of variables and/or several models.

`batch_plan` turns pasted or uploaded CSV (header row = variable names) into the task bodies, checking
every one with the builder's own form, and reports bad rows by their line number before anything is
sent. `batch_submit` plans the tasks through `sending.submit_task_ids`, one submission per provider and
mode, all in the one transaction that checks the budgets for the whole batch: a batch is written whole or
not at all, and workers send its chunks of ≤ 100 tasks per upstream call (api-reference §1) once it has
committed. Each task is an ordinary task that also records its batch.
"""

import hashlib
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from tasks.builder.forms import TaskRequestForm, form_data_from_fields
from tasks.history.selectors import being_sent_q
from tasks.models import Batch, Credential, PromptTemplateVersion, ProviderModel, Task
from tasks.prompt_templates.rows import MAX_BATCH_TASKS, rows_read
from tasks.prompt_templates.services import template_variables
from tasks.spend.budgets import SUBMISSION_LIFETIME, BudgetExceeded, budgets_reserve
from tasks.submission import sending
from tasks.submission.queue import SendingProgress, sending_progress
from tasks.upstream.providers import LIVE, TASK_POST, charge_per_task, provider_rules, queued_charge_per_task


@dataclass
class BatchPlan:
    version: PromptTemplateVersion
    provider: str  # the template's
    models: list[str]
    rows: list[dict[str, str]] = field(default_factory=list)
    bodies: list[dict] = field(default_factory=list)
    # Per body: the provider its model belongs to and the row's variables.
    body_providers: list[str] = field(default_factory=list)
    body_variables: list[dict[str, str]] = field(default_factory=list)
    # Per body: task_post where the model can be queued, live otherwise (Perplexity, live-only models).
    body_modes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    renamed_columns: list[tuple[str, str]] = field(default_factory=list)  # RowsRead.renamed
    repeated_rows: list[tuple[str, str]] = field(default_factory=list)  # RowsRead.repeated
    charge_per_task: Decimal = Decimal("0")  # a queued task's
    price_multiplier: Decimal = Decimal("1")
    credential_id: int | None = None

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.bodies)

    @property
    def task_count(self) -> int:
        return len(self.rows) * len(self.models)

    @property
    def total_charge(self) -> Decimal:
        if not self.bodies:
            return self.charge_per_task * self.task_count
        return sum((charge for _tag, charge in self.charges()), Decimal("0"))

    @property
    def fingerprint(self) -> str:
        """What the person confirms by pressing Submit under a checked plan: every task (body, provider,
        mode) and whose credential pays. The page carries it from the check to the confirmation, so a
        form edited in between (rows, models, credential) is shown again instead of sent."""
        planned = [self.credential_id, str(self.price_multiplier), self.tasks(), self.body_modes]
        return hashlib.sha256(json.dumps(planned, sort_keys=True, default=str).encode()).hexdigest()

    def mode_of(self, i: int) -> str:
        return self.body_modes[i] if i < len(self.body_modes) else TASK_POST

    @property
    def live_count(self) -> int:
        return sum(1 for i in range(len(self.bodies)) if self.mode_of(i) == LIVE)

    def tasks(self) -> list[tuple[dict, str, dict[str, str]]]:
        """(body, provider, variables) per task; a body planned without them goes to the template's
        provider with no variables (a plan whose bodies were replaced, as bench/bench_batch.py does)."""
        return [
            (
                body,
                self.body_providers[i] if i < len(self.body_providers) else self.provider,
                self.body_variables[i] if i < len(self.body_variables) else {},
            )
            for i, body in enumerate(self.bodies)
        ]

    @property
    def providers(self) -> list[str]:
        """The providers the batch goes to, in the order of its models: one submission each."""
        return list(dict.fromkeys(provider for _body, provider, _variables in self.tasks()))

    @property
    def provider_labels(self) -> list[str]:
        return [provider_rules(slug).label for slug in self.providers]

    def charges(self) -> list[tuple[str, Decimal]]:
        """(tag, estimated charge) per task, as the budgets count them."""
        return [
            (task_tag(body), charge_per_task(mode=self.mode_of(i), price_multiplier=self.price_multiplier))
            for i, body in enumerate(self.bodies)
        ]


def task_tag(body: dict) -> str:
    """The tag a task is counted under (services writes the same)."""
    return str(body.get("tag", ""))[:255]


def batch_plan(
    *, version: PromptTemplateVersion, rows_text: str, models: list[str], credential: Credential | None
) -> BatchPlan:
    """Every task of the batch, each checked by the builder's form, or every reason it cannot run.

    All problems come in one pass: a row that cannot be read is reported and the others are still
    checked. A model may be another provider's than the template's: its tasks are checked with that
    provider's rules (and sent in a submission of their own).
    """
    provider = version.template.provider
    plan = BatchPlan(version=version, provider=provider, models=list(models))
    if credential is not None:
        plan.charge_per_task = queued_charge_per_task(price_multiplier=credential.price_multiplier)
        plan.price_multiplier = credential.price_multiplier
        plan.credential_id = credential.pk
    variables = template_variables(version.fields)
    read = rows_read(rows_text, variables, max_rows=MAX_BATCH_TASKS // max(len(models), 1))
    plan.rows, plan.errors, plan.renamed_columns = read.rows, read.errors, read.renamed
    plan.repeated_rows = read.repeated
    if not models:
        plan.errors.append("Choose at least one model.")
    if plan.task_count > MAX_BATCH_TASKS:
        plan.errors.append(f"{plan.task_count} tasks: a batch takes at most {MAX_BATCH_TASKS}.")
        return plan
    if not models or not plan.rows:
        return plan
    catalogs: dict[str, list[ProviderModel]] = {}
    for model in ProviderModel.objects.filter(is_listed=True):
        catalogs.setdefault(model.provider, []).append(model)
    model_provider = {model: _provider_of(model, provider, catalogs) for model in models}
    # BatchForm checked the batch's one credential; each task's form would otherwise query it again.
    credential_checked = credential is not None
    # One message per problem and row, naming every field and model it concerns (the form puts a
    # cross-field problem beside each of its fields: listed once here).
    problems: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
    # Per model, a row's form that was valid: rows differ only in their variables, so each further row
    # is checked by that form's `body_with` (its variables, the lengths once filled), not a form of its own.
    valid: dict[str, TaskRequestForm] = {}
    modes: dict[str, str] = {}
    for row in plan.rows:
        line = row.get("_line")
        values = {name: row[name] for name in variables}
        for model in models:
            if model in valid:
                form = valid[model]
                body, found = form.body_with(values)
                if not found:
                    plan.bodies.append(body)
                    plan.body_providers.append(form.rules.slug)
                    plan.body_variables.append(values)
                    plan.body_modes.append(modes[model])
                    continue
                where = f"Line {line}" if line else "The template"
                for name, message in found:
                    label = form.fields[name].label if name in form.fields else name
                    _problem_add(problems, where, label, message, model)
                continue
            rules = provider_rules(model_provider[model])
            mode = batch_mode(rules, version.fields.get("mode"), model, catalogs.get(rules.slug, []))
            data = form_data_from_fields(
                rules, {**version.fields, "model_name": model, "mode": mode}, credential=credential
            )
            for name, value in values.items():
                data[f"var_{name}"] = value
            form = TaskRequestForm(
                data, rules=rules, catalog=catalogs.get(rules.slug, []), credential_checked=credential_checked
            )
            if form.is_valid():
                valid[model] = form
                modes[model] = mode
                plan.bodies.append(form.body)
                plan.body_providers.append(rules.slug)
                plan.body_variables.append(values)
                plan.body_modes.append(mode)
                continue
            where = f"Line {line}" if line else "The template"
            for name, messages in form.errors.items():
                label = form[name].label if name in form.fields else name
                for message in messages:
                    _problem_add(problems, where, label, message, model)
    for (where, message), (labels, concerned) in problems.items():
        plan.errors.append(f"{where} ({', '.join(concerned)}): {', '.join(labels)}: {message}")
    plan.errors.sort(key=_line_of)
    return plan


def _problem_add(problems: dict, where: str, label: str, message: str, model: str) -> None:
    labels, models = problems.setdefault((where, message), ([], []))
    if label not in labels:
        labels.append(label)
    if model not in models:
        models.append(model)


def batch_mode(rules, template_mode, model: str, catalog: list[ProviderModel]) -> str:
    """How a batch sends a model's tasks: live when the template says so, when the provider answers live
    only, or when the model cannot be queued; queued otherwise."""
    entry = next((m for m in catalog if m.model_name == model), None)
    if template_mode == LIVE or rules.live_only or (entry is not None and not entry.task_post_supported):
        return LIVE
    return TASK_POST


def _provider_of(model: str, template_provider: str, catalogs: dict[str, list[ProviderModel]]) -> str:
    """The provider whose catalog lists `model`, the template's first; the template's if none does."""
    for provider in [template_provider, *sorted(catalogs)]:
        if any(entry.model_name == model for entry in catalogs.get(provider, [])):
            return provider
    return template_provider


_LINE = re.compile(r"^Line (\d+)")


def _line_of(error: str) -> int:
    """Errors in the order of the rows they are about; those about no row first."""
    match = _LINE.match(error)
    return int(match.group(1)) if match else 0


def batch_submit(
    *, plan: BatchPlan, credential: Credential, user, name: str = "", idempotency_key: str
) -> Batch:
    """Create the batch and plan every one of its tasks: one submission per provider and mode (chunks of
    ≤ 100 tasks per upstream call, one task per chunk when live), all in one transaction. Nothing is posted
    here: workers send the chunks once it has committed.

    That transaction checks the budgets for the whole batch, all its providers together, and writes the
    batch, every task row and every chunk: a batch that would cross a limit is refused before any task is
    created or sent, and a process killed (or a database error) at any step leaves either no batch at all
    (nothing reserved, nothing to send: pressing again creates it) or the whole batch planned, never a
    batch with some of its providers' tasks only. Task i carries the idempotency key f"{key}:{i}", so a
    resent confirmation finds the batch it already made and plans nothing again; a second press of the
    same form (a double click) finds the batch, never its charge alone: it is shown the batch, not
    refused as over the budget.
    """
    if not plan.ok:
        raise sending.SubmissionError("The batch has errors; nothing was sent.")
    first = _first_task_of(idempotency_key)
    if first is not None:  # a resent confirmation: nothing is sent again
        return _batch_of(first)
    if not credential.is_active:
        raise sending.SubmissionError(f"The credential “{credential.name}” is disabled.")
    # Saved with the first group's rows, so a batch refused before anything is written leaves nothing.
    batch = Batch(
        name=name[:200],
        template_version=plan.version,
        created_by=user if user is not None and user.pk else None,
        task_count=len(plan.bodies),
        row_count=len(plan.rows),
        model_names=plan.models,
        estimated_charge=plan.total_charge,
        plan_fingerprint=plan.fingerprint,  # the same plan from a new page is asked about (repeats.py)
    )
    # One submission per provider and mode; a live submission plans each task as its own chunk.
    groups: dict[tuple[str, str], list[sending.TaskSpec]] = {}
    for i, (body, provider, variables) in enumerate(plan.tasks()):
        groups.setdefault((provider, plan.mode_of(i)), []).append(
            sending.TaskSpec(
                provider=provider,
                body=body,
                idempotency_key=f"{idempotency_key}:{i}",
                template_version_id=plan.version.pk,
                variables=variables or None,
            )
        )
    charges = [
        (task_tag(spec.body), charge_per_task(mode=mode, price_multiplier=credential.price_multiplier))
        for (_provider, mode), specs in groups.items()
        for spec in specs
    ]
    try:
        with transaction.atomic():
            budgets_reserve(user=user, charges=charges)
            for (_provider, mode), specs in groups.items():
                # The first key was looked up above: the submission need not look up all of them again.
                pks = sending.submit_task_ids(
                    specs=specs,
                    credential=credential,
                    user=user,
                    batch=batch,
                    mode=mode,
                    keys_checked=True,
                    budgets_checked=True,  # above, in this same transaction
                )
                if batch._state.adding:  # another confirmation of the form won the race: write nothing
                    break
    except BudgetExceeded:
        # Refused once the budgets' lock was held: a first press of this form that was writing the
        # batch when the key was looked up has committed by now, and its charge is what crossed.
        made = _first_task_of(idempotency_key)
        if made is None:
            raise
        return _batch_of(made)
    if batch._state.adding:  # the batch that confirmation made, with every task of it
        return Task.objects.select_related("batch").get(pk=pks[0]).batch
    return batch


def _batch_of(first: Task) -> Batch:
    if first.batch is None:
        raise sending.SubmissionError("This batch was submitted already, and its record was deleted.")
    return first.batch


def _first_task_of(idempotency_key: str) -> Task | None:
    """The first task of the batch a confirmation with this key already made, if any."""
    return Task.objects.filter(idempotency_key=f"{idempotency_key}:0").select_related("batch").first()


@dataclass(frozen=True)
class BatchProgress:
    total: int
    queued: int
    submitted: int
    pending: int
    completed: int
    failed: int
    unknown: int
    cost: Decimal
    sending: int = 0
    chunks: SendingProgress | None = None  # how its sending goes (tasks.submission.queue)
    unwritten: int = 0  # planned tasks without a row: still being written, or never will be
    writing: bool = False  # the submission may still be writing them

    @property
    def settled(self) -> int:
        """Tasks the batch no longer waits for: answered, failed, or their reply lost (never resent; a
        callback or the worker's reconciliation may still find out what became of it, which its own task
        page, polling slowly, shows)."""
        return self.completed + self.failed + self.unknown

    @property
    def done(self) -> bool:
        if self.chunks is not None and self.chunks.waiting:
            return False
        if self.writing:
            return False
        # None written and none to come (its submission stopped first): nothing more happens by itself.
        return self.settled == self.total and (self.total > 0 or self.unwritten > 0)

    @property
    def percent(self) -> int:
        return round(100 * self.settled / self.total) if self.total else 0


def batch_progress(*, batch: Batch) -> BatchProgress:
    """Counts by status and the cost so far (Task.spend: charge at post, then the final cost), and how
    many planned tasks have no row (a batch is written whole, in one transaction, but a batch written
    before that was so may miss the rows its submission never wrote)."""
    S = Task.Status
    counts = batch.tasks.aggregate(
        total=Count("pk"),
        cost=Sum("spend"),
        **{status: Count("pk", filter=Q(status=status)) for status in S.values},
        in_flight=Count("pk", filter=being_sent_q()),  # queued, their chunk being sent: rows read "Sending"
    )
    unwritten = max(batch.task_count - counts["total"], 0)
    chunks = sending_progress(batch=batch)
    in_flight = counts["in_flight"]
    return BatchProgress(
        total=counts["total"],
        queued=counts[S.QUEUED] - in_flight,
        sending=counts[S.SENDING] + in_flight,
        chunks=chunks,
        submitted=counts[S.SUBMITTED],
        pending=counts[S.PENDING],
        completed=counts[S.COMPLETED],
        failed=counts[S.FAILED],
        unknown=counts[S.UNKNOWN],
        cost=counts["cost"] or Decimal("0"),
        unwritten=unwritten,
        writing=bool(unwritten) and timezone.now() - batch.created_at < SUBMISSION_LIFETIME,
    )
