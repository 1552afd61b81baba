"""Prompt templates: named, versioned snapshots of the builder's form, with {{variables}}.

A version's `fields` are the builder's values in the upstream's names (api-reference §2), variables left
unfilled. Versions are never changed: an edit adds the next number, so every task can record the exact
version it came from and old versions stay viewable.
"""

import difflib
import json
import re

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from tasks.models import PromptTemplate, PromptTemplateVersion

VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# The fields whose text may hold variables; chain messages too.
TEXT_FIELDS = ("user_prompt", "system_message")
NAME_MAX_LENGTH = PromptTemplate._meta.get_field("name").max_length


class TemplateError(Exception):
    """A template change that cannot be made; the message is meant for the person."""


class TemplateNameError(TemplateError):
    """The name cannot be used: blank, too long, or another template's."""


# --- Variables --------------------------------------------------------------------------------------


def _texts(fields: dict) -> list[str]:
    texts = [str(fields.get(name) or "") for name in TEXT_FIELDS]
    for turn in fields.get("message_chain") or []:
        if isinstance(turn, dict):
            texts.append(str(turn.get("message") or ""))
    return texts


def template_variables(fields: dict) -> list[str]:
    """The variable names used in the prompt, the system message and the chain, in order of appearance."""
    seen: dict[str, None] = {}
    for text in _texts(fields):
        for name in VARIABLE.findall(text):
            seen.setdefault(name, None)
    return list(seen)


def fill_text(text: str, values: dict[str, str]) -> str:
    """`text` with each {{name}} replaced by its value; unknown names are left as written."""
    return VARIABLE.sub(lambda m: str(values.get(m.group(1), m.group(0))), text)


def template_fill(fields: dict, values: dict[str, str]) -> dict:
    """A copy of `fields` with the variables of every text field filled in."""
    filled = dict(fields)
    for name in TEXT_FIELDS:
        if isinstance(filled.get(name), str):
            filled[name] = fill_text(filled[name], values)
    if filled.get("message_chain"):
        filled["message_chain"] = [
            {**turn, "message": fill_text(str(turn.get("message", "")), values)}
            for turn in filled["message_chain"]
        ]
    return filled


# --- Writes -----------------------------------------------------------------------------------------


def _add_version(*, template: PromptTemplate, fields: dict, note: str, user) -> PromptTemplateVersion:
    number = (template.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = PromptTemplateVersion.objects.create(
        template=template, number=number, fields=fields, note=note[:300], created_by=_person(user)
    )
    PromptTemplate.objects.filter(pk=template.pk).update(updated_at=timezone.now())
    return version


def _person(user):
    return user if user is not None and user.pk else None


def _check_name(name: str, *, exclude_pk=None) -> str:
    name = name.strip()
    if not name:
        raise TemplateNameError("Give the template a name.")
    if len(name) > NAME_MAX_LENGTH:
        raise TemplateNameError(f"A template name has at most {NAME_MAX_LENGTH} characters.")
    clash = PromptTemplate.objects.filter(name__iexact=name)
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise TemplateNameError(_taken(name))
    return name


def _taken(name: str) -> str:
    return f"A template named “{name}” already exists."


@transaction.atomic
def template_create(
    *, name: str, provider: str, fields: dict, user, description: str = "", note: str = ""
) -> PromptTemplate:
    """A new template with its first version."""
    template = PromptTemplate.objects.create(
        name=_check_name(name), provider=provider, description=description, created_by=_person(user)
    )
    _add_version(template=template, fields=fields, note=note or "First version", user=user)
    return template


@transaction.atomic
def template_edit(*, template: PromptTemplate, fields: dict, user, note: str = "") -> PromptTemplateVersion:
    """Record an edit as the template's next version; earlier versions are kept unchanged."""
    template = PromptTemplate.objects.select_for_update().get(pk=template.pk)
    if template.archived_at is not None:
        raise TemplateError("This template is archived; restore it before editing.")
    return _add_version(template=template, fields=fields, note=note, user=user)


def _suffixed(name: str, suffix: str) -> str:
    """`name` ending in `suffix`, cut so that the whole is a name a template may have."""
    return name[: NAME_MAX_LENGTH - len(suffix)].rstrip() + suffix


@transaction.atomic
def template_duplicate(*, template: PromptTemplate, user, name: str = "") -> PromptTemplate:
    """A new template starting from the source's current version."""
    current = template.versions.order_by("-number").first()
    candidate, n = name.strip() or _suffixed(template.name, " (copy)"), 2
    while not name.strip() and PromptTemplate.objects.filter(name__iexact=candidate).exists():
        candidate, n = _suffixed(template.name, f" (copy) {n}"), n + 1
    return template_create(
        name=candidate,
        provider=template.provider,
        description=template.description,
        fields=dict(current.fields) if current else {},
        note=f"Duplicated from {template.name} v{current.number}" if current else "",
        user=user,
    )


@transaction.atomic
def template_rename(*, template: PromptTemplate, name: str, description: str, user) -> PromptTemplate:
    """Change a template's name and description. No version is added: versions hold the fields only.

    The name follows a new template's rules (given, at most NAME_MAX_LENGTH characters, unique ignoring
    case); an archived template is refused, as its edits are.
    """
    template = PromptTemplate.objects.select_for_update().get(pk=template.pk)
    if template.archived_at is not None:
        raise TemplateError("This template is archived; restore it before editing.")
    name = _check_name(name, exclude_pk=template.pk)
    description = description.strip()
    if (name, description) == (template.name, template.description):
        return template
    template.name, template.description = name, description
    try:
        with transaction.atomic():
            template.save(update_fields=["name", "description", "updated_at"])
    except IntegrityError:  # another template took the name between the check and the save
        raise TemplateNameError(_taken(name)) from None
    return template


def template_archive(*, template: PromptTemplate, user, archived: bool = True) -> PromptTemplate:
    """Archive (or restore) a template; its versions and the tasks that used them are kept."""
    template.archived_at = timezone.now() if archived else None
    template.save(update_fields=["archived_at", "updated_at"])
    return template


# --- Reading ----------------------------------------------------------------------------------------


def _as_lines(fields: dict) -> list[str]:
    lines = []
    for name in sorted(fields):
        value = fields[name]
        if name == "message_chain" and isinstance(value, list):
            for i, turn in enumerate(value, start=1):
                lines.append(f"message_chain[{i}] {turn.get('role')}: {turn.get('message')}")
        else:
            lines.append(f"{name}: {json.dumps(value, ensure_ascii=False)}")
    return lines


def version_diff(old: PromptTemplateVersion, new: PromptTemplateVersion) -> list[tuple[str, str]]:
    """A line diff of two versions' fields, as (kind, line) pairs: kind is "add", "remove" or "same"."""
    result = []
    for line in difflib.ndiff(_as_lines(old.fields), _as_lines(new.fields)):
        kind = {"+ ": "add", "- ": "remove", "  ": "same"}.get(line[:2])
        if kind:
            result.append((kind, line[2:]))
    return result
