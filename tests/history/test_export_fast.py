"""The task list's CSV export writes its cells straight from plain rows (export_csv_rows): every cell,
hostile values included, must be exactly what the record-by-record writer (export_records, csv_rows and
`cell` on each value) gives."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from tasks.csv_export import csv_lines
from tasks.history.export import EXPORT_COLUMNS, csv_rows, export_csv_rows, export_records
from tasks.models import Task
from tests.factories import make_credential, make_task, make_task_being_sent, make_user

pytestmark = pytest.mark.django_db

HOSTILE = ["=1+1", "+SUM(A1)", "-2", "@cmd", "\tTab", "\rcr", "\nlf", 'a "quoted", value', "line\nbreak", ""]


def _reference() -> str:
    tasks = Task.objects.order_by("-created_at", "-pk")
    return "".join(csv_lines(EXPORT_COLUMNS, csv_rows(export_records(tasks))))


def _fast() -> str:
    tasks = Task.objects.order_by("-created_at", "-pk")
    return "".join(csv_lines(EXPORT_COLUMNS, export_csv_rows(tasks), cells=True))


def test_the_fast_csv_rows_equal_the_record_writer_on_hostile_values():
    people = [make_user("=alice"), make_user("bob"), None]
    credentials = [make_credential("-minus credential"), make_credential("plain")]
    for i, text in enumerate(HOSTILE):
        make_task(
            submitted_by=people[i % 3],
            credential=credentials[i % 2],
            user_prompt=text or "x",
            tag=text,
            labels=[text or "lbl", "@second"] if i % 2 else [],
            status_message=text,
            answer_text=text,
            resolved_model_name=text,
            upstream_task_id=(text or None) if i % 3 else None,
            money_spent=Decimal("0.000317") * i,
            input_tokens=i if i % 2 else None,
            status_code=-i if i % 4 == 0 else 20000 + i,
            created_at=datetime(2026, 3, 1, 12, 0, i, i * 1000 if i % 2 else 0, tzinfo=UTC),
        )
    Task.objects.filter(pk=Task.objects.order_by("pk").first().pk).update(
        spend=Decimal("-0.5"), cost=None, charged=Decimal("1.1")
    )
    make_task_being_sent(tag="=sent", created_at=datetime(2026, 3, 2, tzinfo=UTC))  # its row reads "Sending"

    reference = _reference()

    assert _fast() == reference
    assert "'=1+1" in reference and "'-0.500000" in reference and "'@second" in reference
    assert ",'=sent,,sending," in reference


def test_the_export_view_writes_the_fast_rows(member_client):
    make_task(user_prompt="=HYPERLINK()", tag="-t", labels=["@x"])

    response = member_client.get(reverse("history:task_export", args=["csv"]))
    body = b"".join(response.streaming_content).decode()

    assert body == _reference()
    assert "'=HYPERLINK()" in body
