"""The one CSV writer: no exported cell runs as a spreadsheet formula, in any column of any export, and
money is written the same way everywhere (a plain decimal with 6 places)."""

import csv
import io
import json
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.csv_export import FORMULA_STARTS, cell, csv_lines, money
from tests.factories import make_credential, make_task, make_template_version, make_user

MONEY = re.compile(r"^\d+\.\d{6}$")


def _rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()
    return list(csv.reader(io.StringIO(body)))


def _assert_no_formula(rows: list[list[str]]) -> None:
    header = rows[0]
    for row in rows[1:]:
        for name, value in zip(header, row, strict=True):
            assert not value.startswith(FORMULA_STARTS), f"{name} = {value!r}"


@pytest.fixture
def hostile_task(db):
    """A task whose every text value (and every name it points to) starts like a formula."""
    person = make_user("@person")
    credential = make_credential("=Credential")
    version = make_template_version("+Template")
    task = make_task(
        submitted_by=person,
        credential=credential,
        template_version=version,
        model_name="-model",
        tag="=1+1",
        labels=["=1+1", "@SUM(A1)"],
        user_prompt="+prompt",
        answer_text="\tanswer",
        money_spent=Decimal("0.1"),
    )
    task.__class__.objects.filter(pk=task.pk).update(
        resolved_model_name="\rresolved",
        status_message="\nmessage",
        upstream_task_id="=HYPERLINK(1)",
        provider="=provider",
        mode="@mode",
    )
    return task


@pytest.mark.parametrize(
    "value",
    ["=1+1", "+1", "-1+2", "@SUM(A1)", "\tcmd", "\rcmd", "\ncmd", '=HYPERLINK("http://x")'],
)
def test_a_text_cell_that_starts_like_a_formula_gets_an_apostrophe(value):
    assert cell(value) == "'" + value


def test_a_list_is_one_cell_guarded_as_a_whole():
    assert cell(["=1+1", "b"]) == "'=1+1, b"
    assert cell(["a", "=b"]) == "a, =b"


def test_money_is_a_plain_decimal_with_six_places():
    assert money(Decimal("0E-6")) == "0.000000"
    assert money(Decimal("0.0288")) == "0.028800"
    assert money(Decimal("1E+3")) == "1000.000000"
    assert money(None) == ""


def test_task_list_export_guards_every_column(member_client, hostile_task):
    rows = _rows(member_client.get(reverse("history:task_export", args=["csv"])))

    _assert_no_formula(rows)
    record = dict(zip(rows[0], rows[1], strict=True))
    assert record["labels"] == "'=1+1, @SUM(A1)"
    assert record["tag"] == "'=1+1"
    for name in ("charged", "cost", "money_spent", "spend"):
        assert MONEY.match(record[name]), (name, record[name])


def test_a_zero_figure_is_written_as_a_plain_decimal_in_every_export(member_client):
    make_task(status="failed")  # charged and spend are 0

    rows = _rows(member_client.get(reverse("history:task_export", args=["csv"])))
    record = json.loads(
        b"".join(member_client.get(reverse("history:task_export", args=["json"])).streaming_content)
    )[0]

    assert dict(zip(rows[0], rows[1], strict=True))["spend"] == "0.000000"
    assert record["spend"] == "0.000000"
    assert record["charged"] == "0.000000"
    assert record["cost"] is None


def test_spend_export_guards_every_column(team_admin_client, hostile_task):
    rows = _rows(team_admin_client.get(reverse("spend:export")))

    _assert_no_formula(rows)
    groups = {row[1] for row in rows[1:]}
    assert {"'@person", "'=Credential", "'-model", "'=1+1", "'+Template"} <= groups
    for row in rows[1:]:
        for value in (row[3], row[4]):
            assert MONEY.match(value), row
        assert row[6] == "" or MONEY.match(row[6]), row


def test_admin_csv_action_guards_every_column(client, hostile_task):
    admin = make_user("staff", is_staff=True)
    admin.groups.add(Group.objects.get(name="Admins"))
    client.force_login(admin)

    response = client.post(
        reverse("admin:tasks_task_changelist"),
        {"action": "export_tasks_csv", "_selected_action": [str(hostile_task.pk)]},
    )

    rows = _rows(response)
    _assert_no_formula(rows)
    record = dict(zip(rows[0], rows[1], strict=True))
    assert record["tag"] == "'=1+1"
    assert record["resolved_model_name"] == "'\rresolved"
    for name in ("estimated_charge", "charged", "cost", "spend"):
        assert MONEY.match(record[name]), (name, record[name])


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.text(), st.lists(st.text(), max_size=3)), min_size=1, max_size=5))
def test_no_written_text_cell_begins_with_a_formula_character(values):
    lines = "".join(csv_lines([f"c{i}" for i in range(len(values))], [values]))
    rows = list(csv.reader(io.StringIO(lines, newline="")))

    for written in rows[1]:
        assert not written.startswith(FORMULA_STARTS)
    for value, written in zip(values, rows[1], strict=True):
        text = ", ".join(value) if isinstance(value, list) else value
        assert written in (text, "'" + text)
