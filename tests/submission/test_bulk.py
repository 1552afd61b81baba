"""tasks.submission.bulk.insert_rows stores what the ORM would store, on either database."""

import uuid
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy

from tasks.models import Task, TaskEvent
from tasks.submission.bulk import insert_rows, update_rows
from tests.factories import make_credential, make_user

pytestmark = pytest.mark.django_db

COMPARED = [
    "provider",
    "mode",
    "credential_id",
    "submitted_by_id",
    "request_body",
    "user_prompt",
    "model_name",
    "tag",
    "status",
    "estimated_charge",
    "spend",
    "spend_is_final",
    "citations",
    "fan_out_queries",
    "result",
    "poll_count",
    "upstream_task_id",
]


def test_a_row_inserted_in_bulk_reads_back_like_one_saved_by_the_orm():
    credential, user = make_credential(), make_user()
    fields = {
        "provider": "claude",
        "credential_id": credential.pk,
        "submitted_by_id": user.pk,
        "request_body": {"user_prompt": "Ünïcode “quotes”", "temperature": 0.5, "nested": [1, {"a": None}]},
        "user_prompt": "Ünïcode “quotes”",
        "model_name": "claude-sonnet-4",
        "estimated_charge": Decimal("0.0102"),
        "spend": Decimal("0.0102"),
    }
    saved = Task.objects.create(**fields)
    pk = uuid.uuid4()
    insert_rows(Task, [{"id": pk, "user_prompt": fields["user_prompt"]}], same=fields | {"user_prompt": "x"})
    inserted = Task.objects.get(pk=pk)
    for name in COMPARED:
        assert getattr(inserted, name) == getattr(saved, name), name
    assert inserted.user_prompt == "Ünïcode “quotes”"  # a row's own value wins over `same`
    assert inserted.created_at and inserted.updated_at  # auto_now_add / auto_now are filled in


def test_events_get_database_numbered_ids_and_null_json():
    task = Task.objects.create(provider="chat_gpt", credential=make_credential(), request_body={})
    insert_rows(
        TaskEvent,
        [{"task_id": task.pk, "message": f"event {i}"} for i in range(3)],
        same={"kind": TaskEvent.Kind.POSTED},
    )
    events = list(task.events.order_by("id"))
    assert [event.message for event in events] == ["event 0", "event 1", "event 2"]
    assert len({event.pk for event in events}) == 3
    assert all(event.data is None and event.kind == "posted" for event in events)


def test_text_that_is_not_a_plain_string_is_prepared_by_its_field():
    """Plain strings skip the field's calls; a lazy translation or a number in a text column still goes
    through them, as the ORM would take it."""
    task = Task.objects.create(provider="chat_gpt", credential=make_credential(), request_body={})
    insert_rows(
        TaskEvent,
        [{"task_id": task.pk, "message": message} for message in ("plain", gettext_lazy("Posted"), 20100)],
        same={"kind": TaskEvent.Kind.POSTED},
    )
    assert list(task.events.order_by("id").values_list("message", flat=True)) == ["plain", "Posted", "20100"]


def test_a_unique_field_left_to_its_default_is_refused_before_anything_is_written():
    credential = make_credential()
    with pytest.raises(ValueError, match="unique"):
        insert_rows(Task, [{"user_prompt": "a"}], same={"credential_id": credential.pk, "request_body": {}})
    assert not Task.objects.exists()


def test_an_unknown_field_is_refused():
    with pytest.raises(ValueError, match="no field colour"):
        insert_rows(TaskEvent, [{"colour": "red"}])


def test_the_database_still_enforces_its_constraints():
    credential = make_credential()
    row = {"id": uuid.uuid4(), "idempotency_key": "same-key"}
    same = {"credential_id": credential.pk, "request_body": {}}
    insert_rows(Task, [row], same=same)
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(Task, [{"id": uuid.uuid4(), "idempotency_key": "same-key"}], same=same)
    assert Task.objects.count() == 1


def test_update_rows_sets_each_rows_own_value_and_the_shared_ones_and_nothing_else():
    credential = make_credential()
    tasks = [
        Task.objects.create(credential=credential, request_body={}, user_prompt=f"p{i}", status="queued")
        for i in range(3)
    ]
    untouched = Task.objects.create(credential=credential, request_body={}, status="queued")
    update_rows(
        Task,
        [(tasks[0].pk, "up-0"), (tasks[1].pk, "up-1"), (tasks[2].pk, None)],
        each="upstream_task_id",
        same={"status": Task.Status.SUBMITTED, "charged": Decimal("0.0102"), "status_code": 20100},
    )
    for task, upstream_id in zip(tasks, ["up-0", "up-1", None], strict=True):
        task.refresh_from_db()
        assert (task.upstream_task_id, task.status, task.charged, task.status_code) == (
            upstream_id,
            Task.Status.SUBMITTED,
            Decimal("0.0102"),
            20100,
        )
    untouched.refresh_from_db()
    assert untouched.status == Task.Status.QUEUED and untouched.upstream_task_id is None


def test_a_duplicate_key_is_djangos_integrity_error_and_leaves_the_transaction_usable():
    credential = make_credential()
    Task.objects.create(credential=credential, request_body={}, upstream_task_id="up-1")
    other = Task.objects.create(credential=credential, request_body={})
    with pytest.raises(IntegrityError), transaction.atomic():
        update_rows(Task, [(other.pk, "up-1")], each="upstream_task_id", same={})
    other.refresh_from_db()
    assert other.upstream_task_id is None


def test_update_rows_past_one_statements_parameter_limit(monkeypatch):
    from django.db import connection

    monkeypatch.setattr(type(connection.features), "max_query_params", 9)  # 3 rows a statement
    credential = make_credential()
    tasks = [Task.objects.create(credential=credential, request_body={}) for _ in range(7)]
    pairs = [(task.pk, f"up-{i}") for i, task in enumerate(tasks)]

    update_rows(Task, pairs, each="upstream_task_id", same={"status_code": 20100, "status_message": "ok"})

    assert sorted(Task.objects.values_list("upstream_task_id", "status_code")) == [
        (f"up-{i}", 20100) for i in range(7)
    ]
