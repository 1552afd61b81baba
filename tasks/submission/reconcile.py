"""Reconciliation of tasks whose reply was lost, and the end of provisional money.

A task whose task_post reply was lost (`unknown`), or whose chunk a worker was sending when it stopped
(`sending`), may have been accepted and charged upstream. It is never resent (api-reference §7). Instead its
upstream id is found from evidence, and from then on it is collected like any other task:

- its own callback: the URL carries our task id and a per-task token only the upstream was given, so a
  pingback (`?id=` in the URL, substituted by the upstream) or a postback (the envelope's task id) with a
  valid token names the upstream task that is ours (`callback_pingback_reconcile`,
  `callback_postback_reconcile`);
- `tasks_ready` of a DataForSEO-direct account (never through AIsa, whose listing may hold other keys'
  tasks), matched by the tag sent, the provider and the time it was posted, only when the match is unique
  both ways and task_get's echo of the request agrees (`tasks_ready_reconcile`);
- an admin who has the id (checked with task_get) or knows it was never charged
  (`task_resolve_by_upstream_id`, `task_mark_never_charged`), both audited.

Whatever is never reconciled is settled when its result can no longer exist upstream (`provisional_settle`,
the rule in docs/spend.md "Provisional spend").
"""

import logging
from collections import defaultdict
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.tasks import task as background_job
from django.utils import timezone

from tasks.crypto import CredentialKeyError
from tasks.models import Credential, JobSchedule, Task, TaskEvent
from tasks.spend.provisional import provisional_settle
from tasks.spend.rollup import rollup_reopen
from tasks.submission.collection import schedule_collect, task_apply_outcome
from tasks.upstream.clients import client_for
from tasks.upstream.outcomes import (
    _TASK_ID_RE,
    StatusClass,
    UpstreamError,
    UpstreamMalformed,
    parse_task_outcome,
)
from tasks.upstream.results import json_depth_exceeds

logger = logging.getLogger(__name__)

# Task.Status.SENDING belongs to the worker-based sending; the value is the same string either way.
SENDING = getattr(Task.Status, "SENDING", "sending")
# May have been sent, and no upstream id is recorded: a valid callback proves it was (a token is only sent
# with the task), so any of these takes the id a callback names.
AWAITING_ID = (Task.Status.QUEUED, SENDING, Task.Status.UNKNOWN)
# May have been accepted, and the product cannot ask about it by id: what tasks_ready is matched against.
# (A task of a chunk in flight stays `queued` until its outcome, or the sweep, says; `sending` is a row
# claimed before the claim stopped rewriting its tasks.)
LOST = (SENDING, Task.Status.UNKNOWN)

# tasks_ready: at most 20 calls a minute per account (api-reference §6); one run calls it once per
# credential and provider, at most this many times, and runs every RECONCILE_EVERY.
TASKS_READY_CALLS_PER_RUN = 20
RECONCILE_EVERY = timedelta(minutes=10)
# How far the time tasks_ready says a task was posted may be from our own record of sending it (clocks).
POST_WINDOW_SLACK = timedelta(minutes=2)


class ReconcileRefused(Exception):
    """An upstream id that cannot be given to a task; the message says why and is meant for a person."""


# --- Evidence ---------------------------------------------------------------------------------------

# Fields of the request that the upstream echoes back in `data` and that tell one request from another.
_EVIDENCE_FIELDS = ("tag", "user_prompt", "model_name")


def upstream_id_is_valid(value) -> bool:
    return isinstance(value, str) and bool(_TASK_ID_RE.fullmatch(value))


def echo_disagreement(task: Task, data) -> str:
    """What in the upstream's echo of a request (`data`) differs from what this task sent, or ""."""
    if not isinstance(data, dict):
        return ""
    sent = task.request_body or {}
    for name in _EVIDENCE_FIELDS:
        if name in data and data[name] is not None and name in sent and data[name] != sent[name]:
            return f"its {name.replace('_', ' ')} is not this task's"
    return ""


def _sent_tag(task: Task) -> str:
    return str((task.request_body or {}).get("tag") or "")


# --- Recording an id found ------------------------------------------------------------------------


def upstream_id_record(*, task_id, upstream_task_id: str, how: str, actor=None) -> bool:
    """Give a task that may have been sent the upstream id found for it (`how`: pingback, postback,
    tasks_ready, admin). It becomes `submitted`, and a collection job is committed with it, so from here
    it is collected like any other task, also if this process stops now.

    Returns True when recorded now, False when the task already had exactly this id (a repeated callback).
    Raises ReconcileRefused, changing nothing, when the id is not an upstream id, belongs to another task,
    or the task is final or has another id.
    """
    if not upstream_id_is_valid(upstream_task_id):
        raise ReconcileRefused("That is not an upstream task id (letters, digits, “-” and “_”).")
    now = timezone.now()
    try:
        with transaction.atomic():
            updated = Task.objects.filter(
                pk=task_id, status__in=AWAITING_ID, upstream_task_id__isnull=True
            ).update(
                upstream_task_id=upstream_task_id,
                status=Task.Status.SUBMITTED,
                status_code=None,
                status_message=f"Found upstream by its {how}; being collected.",
                submitted_at=now,
                next_poll_at=now,
            )
            if updated:
                TaskEvent.objects.create(
                    task_id=task_id,
                    kind=TaskEvent.Kind.RECONCILED,
                    message=f"Upstream id {upstream_task_id} found by its {how}; the task is collected now.",
                    actor=actor if getattr(actor, "pk", None) else None,
                    data={"upstream_task_id": upstream_task_id, "how": how},
                )
                schedule_collect([str(task_id)], delay=0)
                created_at = Task.objects.filter(pk=task_id).values_list("created_at", flat=True).get()
                rollup_reopen(created_at=created_at)
    except IntegrityError:
        other = Task.objects.filter(upstream_task_id=upstream_task_id).values_list("pk", flat=True).first()
        message = f"The upstream id {upstream_task_id} belongs to another task ({other})."
        raise ReconcileRefused(message) from None
    if updated:
        return True
    task = Task.objects.filter(pk=task_id).first()
    if task is not None and task.upstream_task_id == upstream_task_id:
        return False
    if task is not None and task.upstream_task_id:
        raise ReconcileRefused(f"This task already has the upstream id {task.upstream_task_id}.")
    raise ReconcileRefused("This task is not waiting for an upstream id.")


# --- Callbacks --------------------------------------------------------------------------------------


def callback_pingback_reconcile(*, task: Task, upstream_task_id) -> bool:
    """A pingback with a valid token for a task that has no upstream id: record the id the upstream put in
    the URL (`?id=`), and collect it. Never raises: a pingback without a usable id is recorded as an error
    event (tasks_ready or an admin can still find the task). True when an id was recorded now."""
    try:
        if not upstream_id_is_valid(upstream_task_id):
            raise ReconcileRefused("The pingback carried no upstream task id.")
        return upstream_id_record(task_id=task.pk, upstream_task_id=upstream_task_id, how="pingback")
    except ReconcileRefused as exc:
        TaskEvent.objects.create(
            task=task, kind=TaskEvent.Kind.ERROR, message=f"A pingback could not be reconciled: {exc}"
        )
        return False


class PostbackNotOurs(Exception):
    """A postback for a task without upstream id that cannot be matched to it; nothing was changed."""


def callback_postback_reconcile(*, task: Task, envelope) -> Task:
    """A postback with a valid token for a task that has no upstream id: take the id of the one task
    object in the envelope whose echo agrees with what this task sent, record it (committed), then apply
    the envelope as any postback. Returns the task as recorded; raises PostbackNotOurs when no task object
    can be ours."""
    if not isinstance(envelope, dict) or json_depth_exceeds(envelope):
        raise PostbackNotOurs("the body is not a task envelope")
    objects = envelope.get("tasks")
    if not isinstance(objects, list):
        raise PostbackNotOurs("the body holds no task list")
    candidates = []
    for raw in objects:
        if not isinstance(raw, dict) or not upstream_id_is_valid(raw.get("id")):
            continue
        try:
            outcome = parse_task_outcome(raw)
        except UpstreamMalformed:
            continue
        if not echo_disagreement(task, outcome.data):
            candidates.append(outcome)
    if len(candidates) != 1:
        raise PostbackNotOurs("no single task object in the body is this task's")
    try:
        upstream_id_record(task_id=task.pk, upstream_task_id=candidates[0].id, how="postback")
    except ReconcileRefused as exc:
        raise PostbackNotOurs(str(exc)) from None
    task.refresh_from_db()
    return task


# --- tasks_ready (DataForSEO direct) ----------------------------------------------------------------


@dataclass
class ReadyReport:
    """What one tasks_ready run did, for the command's output and the tests."""

    calls: int = 0
    completed: list = field(default_factory=list)  # task ids given their upstream id
    ambiguous: list = field(default_factory=list)  # task ids left: more than one listing could be theirs
    skipped_credentials: list = field(default_factory=list)  # AIsa credentials with lost tasks


def _parse_posted(value) -> datetime | None:
    """tasks_ready's `date_posted` ("2025-07-17 11:58:28 +00:00") as an aware datetime."""
    if not isinstance(value, str):
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%d %H:%M:%S.%f %z"):
        with suppress(ValueError):
            return datetime.strptime(value.strip(), fmt).astimezone(UTC)
    return None


def _post_windows(tasks: list[Task], now: datetime) -> dict:
    """Per task, when it can have been posted: from its creation to when its reply was given up on (its
    last "reply lost" event; now while it is still being sent), with some slack for clocks."""
    lost_at = dict(
        TaskEvent.objects.filter(task__in=tasks, kind=TaskEvent.Kind.UNKNOWN)
        .values("task_id")
        .annotate(last=Max("created_at"))
        .values_list("task_id", "last")
    )
    windows = {}
    for task in tasks:
        end = lost_at.get(task.pk) or (now if task.status == SENDING else task.updated_at)
        windows[task.pk] = (task.created_at - POST_WINDOW_SLACK, end + POST_WINDOW_SLACK)
    return windows


def tasks_ready_reconcile(*, now: datetime | None = None) -> ReadyReport:
    """Match the finished tasks that DataForSEO-direct accounts list in `tasks_ready` to our tasks whose
    reply was lost, and collect those matched.

    A listed task matches a lost task of the same credential and provider when its tag is the tag that
    task sent and it was posted within that task's post window. Only a match unique both ways counts (one
    listing, one task), and only if task_get's echo of the request agrees with what the task sent (tag,
    prompt, model); anything else is left, with an event on the task saying why (once). AIsa credentials
    are never asked: their listing may hold other keys' tasks (api-reference §1).
    """
    now = now or timezone.now()
    report = ReadyReport()
    lost = (
        Task.objects.filter(status__in=LOST, upstream_task_id__isnull=True, mode=Task.Mode.QUEUED)
        .select_related("credential")
        .order_by("created_at", "pk")
    )
    groups: dict[tuple, list[Task]] = defaultdict(list)
    for task in lost:
        if task.credential.kind != Credential.Kind.DATAFORSEO:
            if task.credential_id not in report.skipped_credentials:
                report.skipped_credentials.append(task.credential_id)
            continue
        if task.credential.is_active:
            groups[(task.credential_id, task.provider)].append(task)
    for (_, provider), tasks in groups.items():
        if report.calls >= TASKS_READY_CALLS_PER_RUN:
            break
        credential = tasks[0].credential
        try:
            client = _client(credential)
        except (CredentialKeyError, ValueError) as exc:
            logger.warning("tasks_ready: credential %s cannot make a client (%s).", credential.pk, exc)
            continue
        with client:
            report.calls += 1
            try:
                listed = client.tasks_ready(provider)
            except UpstreamError as exc:
                logger.warning("tasks_ready for credential %s failed: %s", credential.pk, exc)
                continue
            _match_listing(client, provider, tasks, listed, now, report)
    return report


def _client(credential: Credential):
    return client_for(credential)


def _match_listing(client, provider: str, tasks: list[Task], listed: list[dict], now, report) -> None:
    ids = [item.get("id") for item in listed if upstream_id_is_valid(item.get("id"))]
    known = set(Task.objects.filter(upstream_task_id__in=ids).values_list("upstream_task_id", flat=True))
    windows = _post_windows(tasks, now)
    by_item: dict[str, list[Task]] = defaultdict(list)
    by_task: dict = defaultdict(list)
    for item in listed:
        upstream_id, posted = item.get("id"), _parse_posted(item.get("date_posted"))
        if not upstream_id_is_valid(upstream_id) or upstream_id in known or posted is None:
            continue
        for task in tasks:
            start, end = windows[task.pk]
            if item.get("tag") == _sent_tag(task) and start <= posted <= end:
                by_item[upstream_id].append(task)
                by_task[task.pk].append(upstream_id)
    for upstream_id, matched in by_item.items():
        task = matched[0]
        if len(matched) > 1 or len(by_task[task.pk]) > 1:
            for each in matched:
                _note_once(
                    each,
                    "tasks_ready lists a finished task that could be this one, but it could as well be "
                    "another (same tag, posted at the same time): left for a callback or an admin.",
                )
                report.ambiguous.append(each.pk)
            continue
        if _reconcile_from_listing(client, provider, task, upstream_id):
            report.completed.append(task.pk)


def _reconcile_from_listing(client, provider: str, task: Task, upstream_id: str) -> bool:
    try:
        outcome = client.task_get(provider, upstream_id)
    except (UpstreamError, ValueError) as exc:
        logger.warning("tasks_ready: task_get of %s failed: %s", upstream_id, exc)
        return False
    disagreement = echo_disagreement(task, outcome.data)
    if outcome.status_class == StatusClass.NOT_FOUND or disagreement:
        _note_once(task, f"tasks_ready lists {upstream_id}, but {disagreement or 'task_get cannot find it'}.")
        return False
    try:
        upstream_id_record(task_id=task.pk, upstream_task_id=upstream_id, how="tasks_ready")
    except ReconcileRefused as exc:
        _note_once(task, f"tasks_ready lists {upstream_id}, but it cannot be recorded: {exc}")
        return False
    task.refresh_from_db()
    task_apply_outcome(task=task, outcome=outcome, source=TaskEvent.Kind.POLLED)
    return True


def _note_once(task: Task, message: str) -> None:
    """An error event on the task, unless its latest error event says the same (a run every 10 minutes)."""
    last = task.events.filter(kind=TaskEvent.Kind.ERROR).order_by("-created_at", "-id").first()
    if last is None or last.message != message:
        TaskEvent.objects.create(task=task, kind=TaskEvent.Kind.ERROR, message=message)


# --- The periodic job's schedule --------------------------------------------------------------------


def reconcile_claim_next_run(*, now: datetime | None = None) -> datetime | None:
    """Claim the next periodic run: its time when no run is planned later than `now`, else None. Call it
    in a transaction with the enqueue, so a failed enqueue gives the claim back."""
    now = now or timezone.now()
    JobSchedule.objects.get_or_create(name=RECONCILE_JOB)
    state = JobSchedule.objects.select_for_update().get(name=RECONCILE_JOB)
    if state.next_run_at is not None and state.next_run_at > now:
        return None
    state.next_run_at = now + RECONCILE_EVERY
    state.last_run_at = now
    state.save(update_fields=["next_run_at", "last_run_at"])
    return state.next_run_at


RECONCILE_JOB = "reconcile_lost_tasks"


@background_job
def reconcile_lost_tasks() -> None:
    """Every 10 minutes: match tasks whose reply was lost against tasks_ready (DataForSEO direct), and
    settle provisional spend that can no longer change. Re-arms itself first, and only with a claim on
    its JobSchedule row, so enqueueing it again at every worker start is harmless."""
    schedule_reconcile()
    tasks_ready_reconcile()
    provisional_settle()


def schedule_reconcile() -> None:
    """Enqueue the next reconciliation run unless one is already planned."""
    # The claim and the job row commit together (the job queue is in the same database).
    with transaction.atomic():
        run_after = reconcile_claim_next_run()
        if run_after is not None:
            reconcile_lost_tasks.using(run_after=run_after).enqueue()
