"""One builder request as a monitor's prompt, whole: its fields (system message, chain, temperature,
web search, country, max tokens… whatever the provider's rules table has) kept in `Monitor.request_fields`
and sent on each of the monitor's models.

A request comes from the builder's form ("Monitor this request", checked by the builder's own form) or from
a task's page (its request body); either way the monitor form opens pre-filled with it and a summary.
"""

import json
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from tasks.builder.forms import TaskRequestForm, catalog_for, form_data_from_fields, initial_from_body
from tasks.models import Credential, Task
from tasks.upstream import providers
from tasks.upstream.providers import Kind

# What the monitor decides itself: the models (its targets), the tag (its own), the submission token.
NOT_KEPT = frozenset({"model_name", "tag", "idempotency_key", "template_version"})
FILLED = ("user_prompt", "system_message", "message_chain")
MAX_JSON = 200_000


@dataclass
class RequestStart:
    """What the monitor form opens with: the request's fields, its provider, the model and credential."""

    provider: str
    fields: dict
    model: str = ""
    credential: Credential | None = None


def request_fields_of(form: TaskRequestForm) -> dict:
    """The fields of a valid builder form as a monitor keeps them: upstream names, variables filled."""
    fields = {name: value for name, value in form.template_fields().items() if name not in NOT_KEPT}
    for name in FILLED:
        if name in form.body:
            fields[name] = form.body[name]
    fields["mode"] = form.mode
    return fields


def start_from_builder(form: TaskRequestForm) -> RequestStart:
    return RequestStart(
        provider=form.rules.slug,
        fields=request_fields_of(form),
        model=form.cleaned_data.get("model_name") or "",
        credential=form.cleaned_data.get("credential"),
    )


def start_from_task(task: Task) -> RequestStart:
    """A task's request, read back through the builder's form as "Run again" reads it."""
    rules = providers.provider_rules(task.provider)
    initial = {**initial_from_body(rules, task.request_body), "mode": task.mode}
    data = form_data_from_fields(rules, initial, credential=task.credential_id)
    form = TaskRequestForm(data, rules=rules, catalog=catalog_for(rules.slug), credential_checked=True)
    if form.is_valid():
        fields = request_fields_of(form)
    else:  # e.g. a model since removed: the monitor form reports what is wrong when saved
        fields = {name: value for name, value in initial.items() if name not in NOT_KEPT}
    return RequestStart(
        provider=rules.slug,
        fields=fields,
        model=initial.get("model_name") or "",
        credential=task.credential,
    )


def request_json_parse(text: str) -> dict | None:
    """The hidden field's JSON back to fields; None for none; ValidationError for anything else."""
    text = (text or "").strip()
    if not text:
        return None
    if len(text) > MAX_JSON:
        raise ValidationError("The request is too large.")
    try:
        fields = json.loads(text)
    except ValueError:
        fields = None
    if not isinstance(fields, dict) or not all(isinstance(key, str) for key in fields):
        raise ValidationError("The request could not be read; open it again from the builder.")
    return {key: value for key, value in fields.items() if key not in NOT_KEPT}


def request_summary(provider: str, fields: dict | None) -> dict | None:
    """A readable summary of a request: its provider and each field set, in the rules' order and labels."""
    if not fields:
        return None
    rules = providers.provider_rules(provider)
    rows = []
    for rule in rules.fields:
        value = fields.get(rule.name)
        if rule.name in NOT_KEPT or rule.name == "user_prompt" or providers.is_blank(value):
            continue
        if rule.kind == Kind.CHAIN and isinstance(value, list):
            shown = " · ".join(
                f"{turn.get('role', '?')}: {turn.get('message', '')}"
                for turn in value
                if isinstance(turn, dict)
            )
        elif rule.kind == Kind.BOOLEAN:
            shown = "yes"
        elif rule.kind == Kind.MODE:
            shown = "Live" if value == providers.LIVE else "Queued (task_post)"
        else:
            shown = str(value)
        rows.append({"label": rule.label, "value": shown})
    return {"provider": rules.label, "rows": rows}
