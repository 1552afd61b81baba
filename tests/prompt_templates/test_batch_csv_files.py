"""The CSV files people really have: Excel's semicolons (many European locales) and tabs ("Unicode text"),
UTF-8 with a BOM, UTF-16, Windows-1252 bytes, CRLF, quoted values holding delimiters or newlines; and the
files still unreadable, refused at the field with the rest of the form kept."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tasks.prompt_templates import batches
from tasks.prompt_templates.services import template_create
from tests.factories import make_catalog, make_member

FIELDS = {"user_prompt": "Best {{dish}} in {{city}}?", "model_name": "gpt-4.1"}


@pytest.fixture
def member(db, django_user_model):
    return make_member(django_user_model)


@pytest.fixture
def template(member):
    make_catalog()
    return template_create(name="Food", provider="chat_gpt", fields=FIELDS, user=member)


@pytest.fixture
def member_client(client, member):
    client.force_login(member)
    return client


def _post_file(client, template, credential, data: bytes, **fields):
    form = {
        "name": "Nightly run",
        "credential": str(credential.pk),
        "models": ["gpt-4.1"],
        "rows_text": "",
        "idempotency_key": "k",
        "rows_file": SimpleUploadedFile("rows.csv", data, content_type="text/csv"),
        **fields,
    }
    response = client.post(reverse("prompt_templates:batch_new", args=[template.pk]), form)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize(
    ("label", "data"),
    [
        ("Excel CSV, European locale", "dish;city\r\npho;Hanoi\r\nramen;Tokyo\r\n".encode("cp1252")),
        ("Excel CSV UTF-8 (BOM)", "\ufeffdish;city\r\npho;Hanoi\r\nramen;Tokyo\r\n".encode()),
        (
            "Excel Unicode text (UTF-16, tabs)",
            "dish\tcity\r\npho\tHanoi\r\nramen\tTokyo\r\n".encode("utf-16"),
        ),
        ("tab-separated UTF-8", b"dish\tcity\npho\tHanoi\nramen\tTokyo\n"),
        ("comma, CRLF", b"dish,city\r\npho,Hanoi\r\nramen,Tokyo\r\n"),
        ("old Mac line ends", b"dish,city\rpho,Hanoi\rramen,Tokyo\r"),
    ],
)
def test_excel_and_spreadsheet_files_are_read(member_client, template, credential, label, data):
    html = _post_file(member_client, template, credential, data)
    assert "2 tasks" in html, label
    rows = html.split('name="rows_text"')[1].split("</textarea>")[0]  # the file's rows, for the next submit
    assert "Hanoi" in rows and "Tokyo" in rows


def test_windows_1252_bytes_are_read_as_excel_wrote_them(member_client, template, credential):
    data = "dish;city\r\ncrème brûlée;Besançon\r\nsmørrebrød;København\r\n".encode("cp1252")
    html = _post_file(member_client, template, credential, data)
    assert "2 tasks" in html
    rows = html.split('name="rows_text"')[1].split("</textarea>")[0]
    assert "crème brûlée;Besançon" in rows and "smørrebrød;København" in rows


def test_quoted_values_keep_their_delimiters_and_newlines():
    text = 'dish;city\n"pho; with herbs";"Hanoi\nOld Quarter"\n"fish, chips";London\n'
    rows, errors = batches.parse_rows(text, ["dish", "city"])
    assert errors == []
    assert [(r["dish"], r["city"]) for r in rows] == [
        ("pho; with herbs", "Hanoi\nOld Quarter"),
        ("fish, chips", "London"),
    ]


def test_a_comma_header_stays_comma_separated_even_with_semicolons_in_values():
    rows, errors = batches.parse_rows("dish,city\npho;bun,Hanoi\n", ["dish", "city"])
    assert errors == [] and rows[0]["dish"] == "pho;bun"


def test_a_header_only_file_says_there_are_no_rows_and_keeps_the_form(member_client, template, credential):
    html = _post_file(member_client, template, credential, b"dish;city\r\n")
    assert "No rows below the header." in html
    assert 'value="Nightly run"' in html


def test_an_empty_file_is_refused_at_the_field_with_the_form_kept(member_client, template, credential):
    html = _post_file(member_client, template, credential, b"")
    assert "The submitted file is empty." in html
    assert 'value="Nightly run"' in html


def test_a_pipe_separated_file_says_which_separators_are_read(member_client, template, credential):
    html = _post_file(member_client, template, credential, b"dish|city\npho|Hanoi\n")
    assert "the header lacks dish, city" in html
    assert "commas, semicolons or tabs" in html


def test_bytes_in_no_encoding_it_reads_are_refused_at_the_field(member_client, template, credential):
    html = _post_file(member_client, template, credential, b"dish,city\n\x81\x8d,Hanoi\n")
    assert "UTF-8" in html and "Windows-1252" in html
    assert 'value="Nightly run"' in html


def test_blank_lines_before_the_header_are_skipped_and_lines_keep_their_numbers():
    rows, errors = batches.parse_rows("\n\r\ndish;city\npho;Hanoi\nramen\n", ["dish", "city"])
    assert [(r["_line"], r["dish"], r["city"]) for r in rows] == [("4", "pho", "Hanoi")]
    assert errors == ["Line 5: 1 value for 2 columns."]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf_16_without_its_byte_order_mark_is_read(member_client, template, credential, encoding):
    data = "dish\tcity\r\npho\tHanoi\r\nramen\tTokyo\r\n".encode(encoding)
    html = _post_file(member_client, template, credential, data)
    assert "2 tasks" in html


def test_an_excel_sep_line_names_the_delimiter_and_is_not_the_header():
    rows, errors = batches.parse_rows("sep=;\ndish;city\npho, bun;Hanoi\n", ["dish", "city"])
    assert errors == []
    assert [(r["_line"], r["dish"], r["city"]) for r in rows] == [("3", "pho, bun", "Hanoi")]
