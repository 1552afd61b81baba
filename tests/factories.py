"""Small factories for test data, made with the ORM. Generic on purpose: any test module may use them.

    task = make_task(status="completed", answer_text="Hello", tag="team-a:parks")
    pending = make_task(status="pending", events=["created", "posted", "polled"])

`make_task` fills in a realistic finished or active task for the given status (charges, costs, tokens,
events) unless the caller overrides a field.
"""

import itertools
import uuid
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from sandbox.catalog import CATALOG
from tasks.models import (
    Batch,
    Credential,
    PromptTemplate,
    PromptTemplateVersion,
    ProviderModel,
    SendChunk,
    Task,
    TaskEvent,
    TaskLabel,
)
from tasks.roles import MEMBER_PERMISSIONS, MEMBERS

_sequence = itertools.count(1)

CHARGE_AT_POST = Decimal("0.0102")

PASSWORD = "correct-horse-battery-staple"  # every test person's password


def make_user(username: str | None = None, **fields):
    username = username or f"person-{next(_sequence)}"
    return get_user_model().objects.create_user(username=username, password="unused-password", **fields)


def make_credential(
    name: str | None = None, *, kind: str = Credential.Kind.AISA, secret: str = "sandbox-key", **fields
) -> Credential:
    credential = Credential(name=name or f"Credential {next(_sequence)}", kind=kind, **fields)
    credential.set_secret(secret)
    credential.save()
    return credential


def make_template_version(name: str | None = None, *, provider: str = "chat_gpt") -> PromptTemplateVersion:
    template = PromptTemplate.objects.create(name=name or f"Template {next(_sequence)}", provider=provider)
    return PromptTemplateVersion.objects.create(template=template, number=1, fields={})


def make_batch(**fields) -> Batch:
    return Batch.objects.create(**fields)


def _default_events(status: str) -> list[str]:
    return {
        Task.Status.QUEUED: ["created"],
        Task.Status.SUBMITTED: ["created", "posted"],
        Task.Status.PENDING: ["created", "posted", "polled"],
        Task.Status.COMPLETED: ["created", "posted", "polled", "completed"],
        Task.Status.FAILED: ["created", "failed"],
        Task.Status.UNKNOWN: ["created", "unknown"],
    }[status]


def make_task(
    *,
    credential: Credential | None = None,
    events: list[str] | None = None,
    labels: list[str] = (),
    created_at=None,
    **overrides,
) -> Task:
    """A task in `status` (default completed) with consistent money fields and its events.

    `created_at` may be given (auto_now_add would otherwise set it). `events` lists TaskEvent kinds;
    the default depends on the status. `labels` adds TaskLabel rows.
    """
    status = overrides.pop("status", Task.Status.COMPLETED)
    provider = overrides.pop("provider", "chat_gpt")
    model_name = overrides.pop(
        "model_name", "gpt-4.1-mini" if provider == "chat_gpt" else "claude-sonnet-4-0"
    )
    prompt = overrides.pop("user_prompt", "How relevant is the amusement park business in France?")
    tag = overrides.pop("tag", "")
    body = {"user_prompt": prompt, "model_name": model_name, "tag": tag or f"aisa-dashboard:{uuid.uuid4()}"}
    fields = {
        "provider": provider,
        "credential": credential or Credential.objects.order_by("pk").first() or make_credential(),
        "user_prompt": prompt,
        "model_name": model_name,
        "tag": tag,
        "request_body": body,
        "status": status,
        "estimated_charge": CHARGE_AT_POST,
        "spend": CHARGE_AT_POST,
    }
    if status != Task.Status.QUEUED:
        fields.update(
            upstream_task_id=f"{next(_sequence):08d}-1535-0612-0000-{uuid.uuid4().hex[:12]}",
            charged=CHARGE_AT_POST,
            submitted_at=timezone.now(),
            status_code=20100,
            status_message="Task Created.",
        )
    if status == Task.Status.PENDING:
        fields.update(status_code=40602, status_message="Task In Queue.")
    if status == Task.Status.COMPLETED:
        money_spent = overrides.get("money_spent", Decimal("0.0286"))
        cost = Decimal("0.0002") + money_spent
        answer = overrides.get("answer_text", "The amusement park industry in France remains significant.")
        fields.update(
            status_code=20000,
            status_message="Ok.",
            resolved_model_name=f"{model_name}-2025-04-14",
            money_spent=money_spent,
            cost=cost,
            spend=cost,
            spend_is_final=True,
            input_tokens=374,
            output_tokens=594,
            reasoning_tokens=0,
            web_search_used=False,
            answer_text=answer,
            completed_at=timezone.now(),
            result={
                "id": "upstream",
                "status_code": 20000,
                "result": [{"model_name": f"{model_name}-2025-04-14", "money_spent": float(money_spent)}],
            },
        )
    if status == Task.Status.FAILED:
        fields.update(
            status_code=40501,
            status_message="Invalid Field: 'model_name'.",
            charged=Decimal("0"),
            spend=Decimal("0"),
            spend_is_final=True,
            completed_at=timezone.now(),
        )
    fields.update(overrides)
    task = Task.objects.create(**fields)
    if created_at is not None:
        Task.objects.filter(pk=task.pk).update(created_at=created_at)
        task.created_at = created_at
    # Two queries for all the events (created_at is auto_now_add: written, then set a second apart).
    written = TaskEvent.objects.bulk_create(
        TaskEvent(
            task=task,
            kind=kind,
            status_code={"posted": 20100, "polled": 40602, "completed": 20000, "failed": 40501}.get(kind),
            message={"posted": "Task Created.", "polled": "Task In Queue.", "completed": "Ok."}.get(kind, ""),
            cost_change=CHARGE_AT_POST if kind == "posted" else None,
        )
        for kind in (events if events is not None else _default_events(status))
    )
    for offset, event in enumerate(written):
        event.created_at = task.created_at + timedelta(seconds=offset)
    TaskEvent.objects.bulk_update(written, ["created_at"])
    TaskLabel.objects.bulk_create(TaskLabel(task=task, name=name) for name in labels)
    return task


def make_task_being_sent(**fields) -> Task:
    """A queued task whose send chunk a worker is sending: its row and page read "Sending"."""
    task = make_task(status="queued", **fields)
    chunk = SendChunk.objects.create(
        credential=task.credential,
        provider=task.provider,
        task_count=1,
        state=SendChunk.State.SENDING,
        not_before=timezone.now(),
    )
    Task.objects.filter(pk=task.pk).update(chunk=chunk)
    task.chunk = chunk
    return task


# --- the builder's catalog and members ---------------------------------------------------------------


def member_group() -> Group:
    """The Members role. Tests over live_server flush the database, so the migration's groups may be gone."""
    group, _ = Group.objects.get_or_create(name=MEMBERS)
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="tasks", codename__in=MEMBER_PERMISSIONS)
    )
    return group


def make_member(django_user_model, username: str = "builder-member"):
    user = django_user_model.objects.create_user(username=username, password="x")
    user.groups.add(member_group())
    return user


def make_catalog() -> None:
    """ProviderModel rows mirroring the stand-in's catalog (base names), as a `models` fetch would."""
    now = timezone.now()
    for provider, models in CATALOG.items():
        for model in models:
            ProviderModel.objects.update_or_create(
                provider=provider,
                model_name=model.base_name,
                defaults={
                    "reasoning": model.reasoning,
                    "web_search_supported": model.web_search_supported,
                    "task_post_supported": model.task_post_supported,
                    "fetched_at": now,
                },
            )


def form_data(provider: str, credential, **fields) -> dict:
    """Builder form data: the minimum valid task for `provider`, with `fields` on top (None removes one)."""
    data = {
        "provider": provider,
        "credential": str(credential.pk),
        "idempotency_key": fields.pop("idempotency_key", "key-" + provider),
        "user_prompt": "What is the capital of France?",
        "model_name": {"chat_gpt": "gpt-4.1", "gemini": "gemini-2.5-flash", "perplexity": "sonar"}.get(
            provider, "claude-3-5-haiku"
        ),
    }
    for name, value in fields.items():
        if value is None:
            data.pop(name, None)
        elif value is True:
            data[name] = "on"
        else:
            data[name] = str(value)
    return data
