"""The audit log: who changed which credential, budget, role or person, when, and what.

Entries never hold a secret. Callers pass fingerprints and hints; as a second line of defence,
`audit_record` drops any value under a key that names a secret (password, token, secret, key).
"""

import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Model, Q, QuerySet
from django.utils import timezone
from django.utils.formats import date_format

from tasks.models import AuditEntry

# Keys whose values are safe although their names mention a secret.
_SAFE_KEYS = {"secret_hint", "secret_fingerprint", "hint", "fingerprint"}
_SECRET_WORDS = ("secret", "password", "token", "api_key", "apikey", "key")


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    if lowered in _SAFE_KEYS or lowered.endswith(("_hint", "_fingerprint")):
        return False
    return any(word in lowered for word in _SECRET_WORDS)


def _clean(value):
    if isinstance(value, dict):
        return {str(k): ("[removed]" if _is_secret_key(str(k)) else _clean(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Model):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def audit_record(*, actor, action: str, obj, changes: dict | None = None) -> AuditEntry:
    """Write one audit entry. `changes` maps a field to {"from": …, "to": …} or to a value; never a secret."""
    return AuditEntry.objects.create(
        actor=actor if actor is not None and getattr(actor, "pk", None) else None,
        action=action,
        object_type=obj._meta.verbose_name.title() if isinstance(obj, Model) else type(obj).__name__,
        object_id=str(getattr(obj, "pk", "") or "")[:64],
        object_repr=str(obj)[:200],
        changes=_clean(changes or {}),
    )


def audit_changes(before: dict, after: dict) -> dict:
    """{"field": {"from": old, "to": new}} for the fields whose value changed."""
    return {
        key: {"from": before.get(key), "to": value}
        for key, value in after.items()
        if before.get(key) != value
    }


# --- Reading ----------------------------------------------------------------------------------------


def audit_entries(
    *,
    actor_id: int | None = None,
    action: str = "",
    object_type: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
    q: str = "",
) -> QuerySet[AuditEntry]:
    """Audit entries, newest first, filtered; `date_to` is inclusive, in the site's time zone."""
    entries = AuditEntry.objects.select_related("actor").order_by("-created_at", "-id")
    if actor_id:
        entries = entries.filter(actor_id=actor_id)
    if action:
        entries = entries.filter(action=action)
    if object_type:
        entries = entries.filter(object_type=object_type)
    tz = timezone.get_current_timezone()
    if date_from:
        entries = entries.filter(created_at__gte=datetime.combine(date_from, time.min, tzinfo=tz))
    if date_to:
        entries = entries.filter(
            created_at__lt=datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=tz)
        )
    if q:
        entries = entries.filter(Q(object_repr__icontains=q) | Q(action__icontains=q))
    return entries


def audit_choices() -> tuple[list[str], list[str]]:
    """The actions and object types present in the log, for the filter form."""
    actions = AuditEntry.objects.order_by("action").values_list("action", flat=True).distinct()
    types = AuditEntry.objects.order_by("object_type").values_list("object_type", flat=True).distinct()
    return list(actions), list(types)


# How _clean stores a datetime: ISO 8601 with its offset ("2026-12-07T02:20:31.825919+00:00").
_STORED_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)")


def _shown(value) -> str:
    """A stored value as the page shows it: a stored datetime in local time, as the When column."""
    if isinstance(value, str) and _STORED_DATETIME.fullmatch(value):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        return date_format(timezone.localtime(moment), "j M Y H:i:s")
    return str(value)


def audit_change_lines(entry: AuditEntry) -> list[tuple[str, str]]:
    """An entry's changes as (field, "old → new" or value) pairs, for display."""
    lines = []
    for key, value in (entry.changes or {}).items():
        if isinstance(value, dict) and set(value) <= {"from", "to"}:
            old, new = value.get("from"), value.get("to")
            text = (
                f"{'—' if old in (None, '') else _shown(old)} → {'—' if new in (None, '') else _shown(new)}"
            )
        elif isinstance(value, list):
            text = ", ".join(_shown(v) for v in value) or "—"
        else:
            text = "—" if value in (None, "") else _shown(value)
        lines.append((key, text))
    return lines
