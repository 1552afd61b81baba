"""The data migration that makes stored fingerprints keyed and drops what could reveal a secret."""

import hashlib

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader

from tasks import crypto
from tasks.models import AuditEntry, Credential, Task, TaskEvent

pytestmark = pytest.mark.django_db(transaction=True)


def _this_migration() -> tuple[list, list]:
    """([the migration before], [this one]), found by name: migrations may be renumbered on merge."""
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    (node,) = [
        key for key in graph.nodes if key[0] == "tasks" and key[1].endswith("_keyed_secret_fingerprints")
    ]
    (parent,) = [parent.key for parent in graph.node_map[node].parents if parent.key[0] == "tasks"]
    return [parent], [node]


BEFORE, _ = _this_migration()

LONG = "aisa-live-0123456789abcdefWXYZ"
SHORT = "nope"
REPLACED = "aisa-live-replaced-long-ago-OLD1"


def unkeyed(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


@pytest.fixture
def old_state():
    """The database as 0010 left it, with fingerprints and hints written the old way; 0011 applied after."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    yield apps
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def old_credential(apps, name, secret, *, encrypted=None):
    return apps.get_model("tasks", "Credential").objects.create(
        name=name,
        kind="aisa",
        secret_encrypted=encrypted or crypto.encrypt(secret),
        secret_hint=secret[-4:],
        secret_fingerprint=unkeyed(secret),
    )


def migrate_forward():
    """This migration and every later one, so the current models can read what it left."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_fingerprints_become_keyed_and_hints_of_short_or_unknown_secrets_go(old_state):
    apps = old_state
    long = old_credential(apps, "Long", LONG)
    short = old_credential(apps, "Short", SHORT)
    lost_key = Fernet(Fernet.generate_key()).encrypt(b"aisa-live-unreadable-QQQQ").decode()
    lost = old_credential(apps, "Lost key", "aisa-live-unreadable-QQQQ", encrypted=lost_key)
    entries = apps.get_model("tasks", "AuditEntry").objects
    created = entries.create(
        action="credential.create",
        object_type="Credential",
        object_id=str(long.pk),
        object_repr="Long (AIsa, …WXYZ)",
        changes={"name": "Long", "secret_fingerprint": unkeyed(LONG), "secret_hint": "WXYZ"},
    )
    replaced = entries.create(
        action="credential.replace_secret",
        object_type="Credential",
        object_id=str(long.pk),
        object_repr="Long (AIsa, …WXYZ)",
        changes={
            "secret_fingerprint": {"from": unkeyed(REPLACED), "to": unkeyed(LONG)},
            "secret_hint": {"from": "OLD1", "to": "WXYZ"},
        },
    )
    short_created = entries.create(
        action="credential.create",
        object_type="Credential",
        object_id=str(short.pk),
        object_repr="Short (AIsa, …nope)",
        changes={"secret_fingerprint": unkeyed(SHORT), "secret_hint": "nope"},
    )
    lost_verified = entries.create(
        action="credential.verify",
        object_type="Credential",
        object_id=str(lost.pk),
        object_repr="Lost key (AIsa, …QQQQ)",
        changes={
            "ok": False,
            "message": "bad key",
            "secret_fingerprint": unkeyed("aisa-live-unreadable-QQQQ"),
        },
    )

    migrate_forward()

    long, short, lost = (Credential.objects.get(pk=c.pk) for c in (long, short, lost))
    assert (long.secret_fingerprint, long.secret_hint) == (crypto.fingerprint(LONG), "WXYZ")
    assert (short.secret_fingerprint, short.secret_hint) == (crypto.fingerprint(SHORT), "")
    assert (lost.secret_fingerprint, lost.secret_hint) == ("", "")

    created, replaced, short_created, lost_verified = (
        AuditEntry.objects.get(pk=e.pk) for e in (created, replaced, short_created, lost_verified)
    )
    assert created.changes == {
        "name": "Long",
        "secret_fingerprint": long.secret_fingerprint,
        "secret_hint": "WXYZ",
    }
    assert created.object_repr == "Long (AIsa, …WXYZ)"
    assert replaced.changes == {
        "secret_fingerprint": {"from": "(unkeyed, removed)", "to": long.secret_fingerprint},
        "secret_hint": {"from": "(removed)", "to": "WXYZ"},
    }
    assert short_created.changes == {
        "secret_fingerprint": short.secret_fingerprint,
        "secret_hint": "(removed)",
    }
    assert short_created.object_repr == "Short (AIsa)"
    assert lost_verified.changes["secret_fingerprint"] == "(unkeyed, removed)"
    assert lost_verified.object_repr == "Lost key (AIsa)"
    every_old_fingerprint = {unkeyed(s) for s in (LONG, SHORT, REPLACED, "aisa-live-unreadable-QQQQ")}
    stored = str(list(AuditEntry.objects.values_list("changes", flat=True)))
    assert not any(fingerprint in stored for fingerprint in every_old_fingerprint)


def test_messages_that_kept_part_of_a_key_are_redacted(old_state):
    apps = old_state
    credential = old_credential(apps, "Long", LONG)
    leaked = f"Not sent: AIsa rejected the request (HTTP 401): {'x' * 200} {LONG[:21]}…"
    task = apps.get_model("tasks", "Task").objects.create(
        provider="chat_gpt",
        credential=credential,
        request_body={},
        user_prompt="hi",
        model_name="gpt-4.1-mini",
        status="failed",
        status_message=leaked,
    )
    apps.get_model("tasks", "TaskEvent").objects.create(task=task, kind="error", message=leaked)
    clean = apps.get_model("tasks", "TaskEvent").objects.create(task=task, kind="failed", message="Not sent.")
    apps.get_model("tasks", "Credential").objects.filter(pk=credential.pk).update(
        last_verification_message=f"Invalid key {LONG}"
    )

    migrate_forward()

    task = Task.objects.get(pk=task.pk)
    assert LONG[:21] not in task.status_message
    assert task.status_message.endswith(" [redacted]…")
    assert [e.message for e in TaskEvent.objects.filter(task=task).order_by("pk")] == [
        task.status_message,
        "Not sent.",
    ]
    assert TaskEvent.objects.get(pk=clean.pk).message == "Not sent."
    assert Credential.objects.get(pk=credential.pk).last_verification_message == "Invalid key [redacted]"
