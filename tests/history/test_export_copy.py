"""On PostgreSQL the task list's CSV export is written by the server (`COPY ... TO STDOUT`, each cell
formatted in SQL): a download must be byte for byte what the Python writer (`export_csv_rows`, SQLite's
path) gives for the same filtered, ordered set, hostile values included."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from itertools import cycle

import pytest
from django.db import connection
from django.http import QueryDict
from django.urls import reverse

from tasks.csv_export import csv_lines
from tasks.history import selectors
from tasks.history.export import EXPORT_COLUMNS, export_csv, export_csv_copy, export_csv_rows
from tasks.history.forms import TaskFilterForm
from tasks.models import Provider, SendChunk, Task
from tests.factories import make_batch, make_credential, make_task, make_user

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="COPY ... TO STDOUT is PostgreSQL's; set DATABASE_URL=postgres://… to run these",
    ),
]

HOSTILE = [
    "=1+1",
    "+SUM(A1)",
    "-2",
    "@cmd",
    "\tTab",
    "\rcr",
    "\nlf",
    "\r\nboth",
    'a "quoted", value',
    '"',
    "line\nbreak",
    "cr\rinside",
    "trailing\n",
    "\\.",
    "\\N",
    "back\\slash",
    "NULL",
    " leading space",
    "trailing space ",
    "semi;colon",
    "comma,",
    "ünïcödé — 日本語 ✓ 🙂",
    "'already quoted",
    "",
]


def _queryset(query: str = "") -> "QuerySet[Task]":  # noqa: F821
    form = TaskFilterForm(QueryDict(query) if query else None)
    if not form.is_bound:
        return selectors.task_export_queryset(filters={})
    assert form.is_valid(), form.errors
    return selectors.task_export_queryset(filters=form.filters(), sort=form.sort_value)


def _python(tasks) -> bytes:
    return "".join(csv_lines(EXPORT_COLUMNS, export_csv_rows(tasks), cells=True)).encode()


def _copy(tasks) -> bytes:
    return b"".join(piece if isinstance(piece, bytes) else piece.encode() for piece in export_csv(tasks))


@pytest.fixture
def hostile_tasks():
    people = cycle([make_user("=alice"), make_user('bob "the" builder'), None, make_user("ünï")])
    credentials = cycle([make_credential("-minus credential"), make_credential("plain, with comma")])
    batch = make_batch()
    statuses = cycle(Task.Status.values)
    providers = cycle(Provider.values)
    modes = cycle(Task.Mode.values)
    money = cycle([None, Decimal("0"), Decimal("-0.500000"), Decimal("0.000317"), Decimal("123456.789012")])
    for i, text in enumerate(HOSTILE * 2):
        task = make_task(
            events=[],
            submitted_by=next(people),
            credential=next(credentials),
            provider=next(providers),
            mode=next(modes),
            status=next(statuses),
            user_prompt=text or "x",
            model_name=text or "gpt-4.1",
            tag=text,
            labels=[text or "lbl", "@second", "b, with comma"] if i % 2 else [],
            created_at=datetime(2026, 3, 1, 12, i % 60, i % 7, i * 1000 if i % 2 else 0, tzinfo=UTC),
        )
        # Written past the factory's consistency rules: the export must cope with any stored value.
        Task.objects.filter(pk=task.pk).update(
            status_message=text,
            answer_text=text * (1 + i % 3),
            resolved_model_name=text,
            upstream_task_id=f"{text}{i}" if i % 3 else None,  # unique per task
            batch=batch if i % 2 else None,
            charged=next(money),
            cost=next(money),
            money_spent=next(money),
            spend=next(money) or Decimal("-0.000001"),
            spend_is_final=bool(i % 2),
            input_tokens=i if i % 2 else None,
            output_tokens=0 if i % 5 == 0 else None,
            reasoning_tokens=2**31 - 1 if i == 3 else None,
            status_code=-i if i % 4 == 0 else (None if i % 4 == 1 else 20000 + i),
        )
    # Queued tasks as their rows and pages show them: being sent (a worker has claimed their chunk, which
    # they read "Sending"), waiting in a planned chunk, or in no chunk at all (both read "Queued").
    queued = Task.objects.filter(status=Task.Status.QUEUED).order_by("created_at", "pk")
    for task, state in zip(queued, cycle([SendChunk.State.SENDING, SendChunk.State.PLANNED, None])):
        if state:
            chunk = SendChunk.objects.create(
                credential=task.credential,
                provider=task.provider,
                task_count=1,
                state=state,
                not_before=datetime(2026, 3, 1, tzinfo=UTC),
            )
            Task.objects.filter(pk=task.pk).update(chunk=chunk)


def _statuses(body: bytes) -> dict[str, str]:
    return {row["id"]: row["status"] for row in csv.DictReader(io.StringIO(body.decode(), newline=""))}


def test_copy_writes_the_python_writers_bytes_for_hostile_values(hostile_tasks):
    tasks = _queryset()
    python = _python(tasks)

    assert _copy(tasks) == python
    # The comparison is not vacuous: every kind of cell the guard and the quoting treat is in it.
    for expected in [
        b"'=1+1",
        b"'-0.500000",
        b"'@second",
        b"'\tTab",
        b'"\'\rcr"',
        b'"a ""quoted"", value"',
        b"True",
    ]:
        assert expected in python, expected
    assert python.count(b"\r\n") > len(HOSTILE) * 2
    assert b"\\." in python and "日本語".encode() in python


def test_both_writers_say_sending_for_a_queued_task_being_sent_as_its_row_does(hostile_tasks):
    being_sent = {
        str(pk)
        for pk in Task.objects.filter(chunk__state=SendChunk.State.SENDING).values_list("pk", flat=True)
    }
    waiting = {str(pk) for pk in Task.objects.filter(status=Task.Status.QUEUED).values_list("pk", flat=True)}
    waiting -= being_sent
    tasks = _queryset()

    for body in (_copy(tasks), _python(tasks)):
        statuses = _statuses(body)
        assert being_sent and {statuses[pk] for pk in being_sent} == {"sending"}
        assert waiting and {statuses[pk] for pk in waiting} == {"queued"}


@pytest.mark.parametrize(
    "query",
    [
        "provider=claude&status=completed",
        "sort=-cost",
        "sort=cost",
        "sort=created&tag=%3D1%2B1",
        "q=quoted&mode=live",
        "cost_min=0&cost_max=1",
        "label=%40second",
        "status=sending",  # a subquery on the chunks being sent (selectors.status_shown_q)
        "status=queued",
        "status=in_progress",  # every status not final (selectors.status_shown_q)
    ],
)
def test_copy_keeps_the_filters_and_order_of_the_list(hostile_tasks, query):
    tasks = _queryset(query)
    python = _python(tasks)

    assert _copy(tasks) == python
    assert python.count(b"\n") >= 1  # the header at least; most filters keep some rows


def test_the_csv_download_is_written_by_copy_with_the_same_bytes(hostile_tasks, member_client):
    url = reverse("history:task_export", args=["csv"]) + "?provider=chat_gpt"

    response = member_client.get(url)
    body = b"".join(response.streaming_content)

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].endswith('.csv"')
    assert body == _python(_queryset("provider=chat_gpt"))
    assert body.count(b"\r\n") > 10


def test_an_empty_export_is_the_header_alone():
    assert _copy(_queryset()) == _python(_queryset()) == (",".join(EXPORT_COLUMNS) + "\r\n").encode()


def test_a_download_abandoned_midway_leaves_the_connection_usable(hostile_tasks, monkeypatch):
    monkeypatch.setattr("tasks.history.export.COPY_ROWS_PER_PIECE", 2)
    pieces = export_csv_copy(_queryset())
    next(pieces)

    pieces.close()  # what the server does when the client goes away

    assert Task.objects.count() == len(HOSTILE) * 2
