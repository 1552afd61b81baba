"""Fingerprints become keyed (HMAC under a key derived from SECRET_KEY, see tasks.crypto.fingerprint) and
secrets of 8 characters or fewer lose their "…last 4" hint.

- Each credential whose secret CREDENTIAL_KEYS can decrypt gets its keyed fingerprint and its hint anew
  (none for a short secret). One that cannot be decrypted keeps neither: its old, unkeyed fingerprint
  could be looked up, and the length of its secret, so whether its hint may be shown, is unknown.
- Audit entries: an unkeyed fingerprint of a credential's current secret becomes that secret's keyed
  fingerprint; any other (an earlier secret, which cannot be recomputed) becomes UNKEYED_REMOVED. A hint
  is kept only beside a fingerprint recognised as that of a secret longer than 8 characters; any other
  becomes HINT_REMOVED, and the "…hint" in an entry's description of a credential goes the same way.

- Task statuses, task events, credentials' last verification messages and audit entries that hold a run
  of 8 or more characters of a secret (recorded when messages were cut before secrets were removed) have
  it redacted, as tasks.upstream.outcomes.SecretRedactor does now.

Irreversible: the unkeyed fingerprints are not kept anywhere.
"""

import base64
import hashlib
import re

from django.db import migrations

UNKEYED_REMOVED = "(unkeyed, removed)"
HINT_REMOVED = "(removed)"
_REPR_HINT = re.compile(r"^(?P<head>.*), …(?P<hint>.{1,4})\)$", re.DOTALL)


def _unkeyed(secret: str) -> str:
    """The fingerprint as it was computed before this migration."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def _sides(value):
    """A change's value as {"from": …, "to": …} or a single value, as a dict of sides."""
    if isinstance(value, dict) and set(value) <= {"from", "to"}:
        return dict(value), True
    return {"value": value}, False


def _rewrite(changes, known: dict):
    """`changes` with unkeyed fingerprints replaced and hints kept only beside a recognised long secret."""
    if isinstance(changes, list):
        return [_rewrite(item, known) for item in changes]
    if not isinstance(changes, dict):
        return changes
    result = {key: _rewrite(value, known) for key, value in changes.items()}
    for key in [k for k in result if k == "fingerprint" or k.endswith("_fingerprint")]:
        sides, paired = _sides(changes[key])
        hint_key = key.removesuffix("fingerprint") + "hint"
        hints, _ = _sides(changes.get(hint_key))
        for side, old in sides.items():
            if isinstance(old, str) and old:
                keyed, hint_allowed = known.get(old, (UNKEYED_REMOVED, False))
                sides[side] = keyed
                if hint_key in changes and isinstance(hints.get(side), str) and hints[side]:
                    hints[side] = hints[side] if hint_allowed else HINT_REMOVED
        result[key] = sides if paired else sides["value"]
        if hint_key in changes:
            result[hint_key] = hints if paired else hints["value"]
    for key in [k for k in result if (k == "hint" or k.endswith("_hint")) and k in changes]:
        if key.removesuffix("hint") + "fingerprint" in changes:
            continue  # done beside its fingerprint
        sides, paired = _sides(changes[key])
        sides = {side: HINT_REMOVED if isinstance(v, str) and v else v for side, v in sides.items()}
        result[key] = sides if paired else sides["value"]
    return result


def _redacted_strings(value, redactor):
    if isinstance(value, str):
        return redactor.redact(value)
    if isinstance(value, list):
        return [_redacted_strings(item, redactor) for item in value]
    if isinstance(value, dict):
        return {key: _redacted_strings(item, redactor) for key, item in value.items()}
    return value


def forwards(apps, schema_editor):
    from django.db.models import Q

    from tasks.upstream.outcomes import SecretRedactor
    from tasks.crypto import CredentialKeyError, decrypt, fingerprint, hint

    Credential = apps.get_model("tasks", "Credential")
    AuditEntry = apps.get_model("tasks", "AuditEntry")
    Task = apps.get_model("tasks", "Task")
    TaskEvent = apps.get_model("tasks", "TaskEvent")

    known = {}  # unkeyed fingerprint -> (keyed fingerprint, whether a hint may be shown)
    hints = {}  # credential id -> its hint now ("" when none may be shown)
    secrets = []  # every secret that can be decrypted, in the forms the upstream client knows
    rows = Credential.objects.values_list("pk", "kind", "login", "secret_encrypted")
    for pk, kind, login, encrypted in rows:
        try:
            secret = decrypt(encrypted)
        except CredentialKeyError:
            secret = None
        if secret is None:
            fields = {"secret_fingerprint": "", "secret_hint": ""}
        else:
            fields = {"secret_fingerprint": fingerprint(secret), "secret_hint": hint(secret)}
            known[_unkeyed(secret)] = (fields["secret_fingerprint"], bool(fields["secret_hint"]))
            secrets.append(secret)
            if kind == "dataforseo":
                secrets.append(base64.b64encode(f"{login}:{secret}".encode()).decode("ascii"))
        hints[str(pk)] = fields["secret_hint"]
        Credential.objects.filter(pk=pk).update(**fields)

    # Messages recorded before secrets were redacted ahead of the length cut may hold part of one.
    redactor = SecretRedactor(secrets)
    needles = redactor.needles()
    for model, field in (
        (Task, "status_message"),
        (TaskEvent, "message"),
        (Credential, "last_verification_message"),
    ):
        for start in range(0, len(needles), 200):  # SQLite caps an expression's depth at 1,000
            holding = Q()
            for needle in needles[start : start + 200]:
                holding |= Q(**{f"{field}__contains": needle})
            for pk, text in list(model.objects.filter(holding).values_list("pk", field)):
                model.objects.filter(pk=pk).update(**{field: redactor.redact(text)})

    for entry in AuditEntry.objects.all().iterator():
        changes = _redacted_strings(_rewrite(entry.changes, known), redactor)
        object_repr = entry.object_repr
        match = _REPR_HINT.match(object_repr) if entry.object_type == "Credential" else None
        if match and match["hint"] != hints.get(entry.object_id):
            object_repr = f"{match['head']})"  # an earlier or short secret's hint: not shown
        if changes != entry.changes or object_repr != entry.object_repr:
            AuditEntry.objects.filter(pk=entry.pk).update(changes=changes, object_repr=object_repr)


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0011_one_time_password"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True),
    ]
