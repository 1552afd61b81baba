"""Batch uploads: a size cap that refuses a large file unread (at the field, the rest of the form kept), a
row limit that stops parsing, a clear page for a form too large to read, and arbitrary files that end in
a form error or a plan, never an exception."""

import codecs
import csv
import io
import tracemalloc
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.models import Task
from tasks.prompt_templates import batches
from tasks.prompt_templates import rows as rows_module
from tasks.prompt_templates.forms import BatchForm
from tasks.prompt_templates.services import template_create
from tasks.submission import callbacks
from tests.factories import make_catalog, make_member

FIELDS = {"user_prompt": "Best {{dish}} in {{city}}?", "model_name": "gpt-4.1"}
MB = 1024 * 1024


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


def _form_fields(credential) -> dict:
    """The batch form's other fields, in the order a browser sends them (before the file)."""
    return {
        "name": "Nightly run",
        "credential": str(credential.pk),
        "models": ["gpt-4.1"],
        "rows_text": "dish,city\npho,Hanoi\n",
        "idempotency_key": "k",
    }


def _post_streamed(client, url: str, path, size: int):
    """POST the multipart body in the file at `path` the way a WSGI server hands it over: a stream that
    is read as the request is parsed, never a bytes object in memory."""
    with open(path, "rb") as body:
        environ = client._base_environ(
            REQUEST_METHOD="POST",
            PATH_INFO=url,
            CONTENT_TYPE=MULTIPART_CONTENT,
            CONTENT_LENGTH=str(size),
            **{"wsgi.input": body},
        )
        return client.handler(environ)


def _write_body(path, credential, file_size: int) -> int:
    """A multipart body with the form's fields, then a CSV file of `file_size` bytes; returns its size."""
    head = encode_multipart(BOUNDARY, _form_fields(credential))
    head = head[: head.rindex(f"--{BOUNDARY}--".encode())]  # keep it open for the file part
    part = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="rows_file"; filename="rows.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    row = b"dish,city\n" + b"x" * 90 + b",y\n"
    with open(path, "wb") as out:
        out.write(head + part)
        written = 0
        while written < file_size:
            out.write(row)
            written += len(row)
        out.write(f"\r\n--{BOUNDARY}--\r\n".encode())
        return out.tell()


@pytest.mark.parametrize("file_mb", [20, 100])
def test_a_large_upload_is_refused_at_the_field_unread_and_the_rest_of_the_form_is_kept(
    member_client, template, credential, tmp_path, file_mb
):
    path = tmp_path / "body"
    size = _write_body(path, credential, file_mb * MB)
    url = reverse("prompt_templates:batch_new", args=[template.pk])
    member_client.get(url)  # templates compiled, modules imported: not part of the upload's cost

    tracemalloc.start()
    try:
        response = _post_streamed(member_client, url, path, size)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    html = response.content.decode()
    assert response.status_code == 200
    assert "This file is larger than 5 MB" in html
    assert 'value="Nightly run"' in html  # the person's other input is kept
    assert "dish,city\npho,Hanoi" in html
    assert peak < 2 * MB  # the file's content was never held: chunks pass and are dropped
    assert Task.objects.count() == 0


def test_a_file_just_over_the_cap_is_refused_too(member_client, template, credential, settings):
    settings.BATCH_UPLOAD_MAX_BYTES = 1000  # well within the room left for the form's other fields
    upload = SimpleUploadedFile("rows.csv", b"dish,city\n" + b"pho,Hanoi\n" * 150, content_type="text/csv")

    html = member_client.post(
        reverse("prompt_templates:batch_new", args=[template.pk]),
        {**_form_fields(credential), "rows_file": upload},
    ).content.decode()

    assert "This file is larger than 1000 bytes" in html
    assert 'value="Nightly run"' in html


def test_a_file_under_the_cap_is_read(member_client, template, credential):
    upload = SimpleUploadedFile("rows.csv", b"dish,city\npho,Hanoi\nramen,Tokyo\n", content_type="text/csv")

    html = member_client.post(
        reverse("prompt_templates:batch_new", args=[template.pk]),
        {**_form_fields(credential), "rows_file": upload},
    ).content.decode()

    assert "2 tasks" in html


def test_a_file_with_nul_bytes_is_refused_at_the_field(member_client, template, credential):
    upload = SimpleUploadedFile("rows.csv", b"dish,city\npho\x00,Hanoi\n", content_type="text/csv")

    html = member_client.post(
        reverse("prompt_templates:batch_new", args=[template.pk]),
        {**_form_fields(credential), "rows_file": upload},
    ).content.decode()

    assert "NUL bytes" in html


def test_parsing_stops_at_the_row_limit(template, credential):
    version = template.versions.get()
    limit = rows_module.MAX_BATCH_TASKS
    text = "dish,city\n" + "pho,Hanoi\n" * (limit * 3)

    plan = batches.batch_plan(version=version, rows_text=text, models=["gpt-4.1"], credential=credential)

    assert len(plan.rows) == limit
    assert plan.errors == [
        f"Line {limit + 2}: more than {limit} rows; reading stopped here "
        f"(a batch runs at most {limit} tasks)."
    ]


def test_the_row_limit_counts_every_model(template, credential):
    version = template.versions.get()
    half = rows_module.MAX_BATCH_TASKS // 2
    text = "dish,city\n" + "pho,Hanoi\n" * (half + 500)

    plan = batches.batch_plan(
        version=version, rows_text=text, models=["gpt-4.1", "gpt-4.1-mini"], credential=credential
    )

    assert len(plan.rows) == half
    assert f"more than {half} rows" in plan.errors[0]


def test_a_form_too_large_to_read_gets_its_page_back_with_a_message(
    member_client, template, credential, settings
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    url = reverse("prompt_templates:batch_new", args=[template.pk])
    data = {**_form_fields(credential), "rows_text": "dish,city\n" + "pho,Hanoi\n" * 2000}

    response = member_client.post(url, data, follow=True)

    assert response.status_code == 200
    assert response.redirect_chain == [(url, 302)]
    assert "The form was too large to read" in response.content.decode()
    assert Task.objects.count() == 0


# --- Properties ---------------------------------------------------------------------------------------

ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]
cells = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
tables = st.lists(st.lists(cells, min_size=1, max_size=4), min_size=0, max_size=8)


def _csv_text(table, delimiter: str, header: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(table)
    return out.getvalue()


def _check(template, credential, *, rows_text: str = "", upload: bytes | None = None) -> None:
    """The form either refuses the input with a message, or its rows give a plan; never an exception."""
    version = template.versions.get()
    files = {"rows_file": SimpleUploadedFile("rows.csv", upload, content_type="text/csv")} if upload else {}
    form = BatchForm(
        {
            "credential": str(credential.pk),
            "models": ["gpt-4.1"],
            "rows_text": rows_text,
            "idempotency_key": "k",
        },
        files,
        template=template,
        version=version,
    )
    if not form.is_valid():
        assert all(messages for messages in form.errors.values())
        return
    plan = batches.batch_plan(
        version=version,
        rows_text=form.cleaned_data["rows_text"],
        models=form.cleaned_data["models"],
        credential=credential,
    )
    assert plan.ok or all(isinstance(error, str) and error for error in plan.errors)


PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY_SETTINGS
@given(data=st.binary(max_size=3000))
def test_any_uploaded_bytes_give_a_form_error_or_a_plan(template, credential, data):
    _check(template, credential, upload=data)


@PROPERTY_SETTINGS
@given(
    table=tables,
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    encoding=st.sampled_from(ENCODINGS),
    header=st.sampled_from([["dish", "city"], ["city", "dish"], ["dish"], ["Dish", "city", "extra"]]),
)
def test_any_csv_in_any_encoding_and_delimiter_gives_a_form_error_or_a_plan(
    template, credential, table, delimiter, encoding, header
):
    text = _csv_text(table, delimiter, header)
    try:
        data = codecs.encode(text, encoding)
    except UnicodeEncodeError:
        data = text.encode("utf-8")
    _check(template, credential, upload=data or b" ")
    _check(template, credential, rows_text=text)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(width=st.integers(min_value=100_000, max_value=400_000), quoted=st.booleans())
def test_a_huge_row_gives_a_form_error_or_a_plan(template, credential, width, quoted):
    value = '"' + "x" * width if quoted else "x" * width  # an unterminated quote runs to the end
    _check(template, credential, upload=f"dish,city\n{value},Paris\n".encode())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows_text=st.text(max_size=300),
    upload=st.one_of(st.none(), st.binary(max_size=500)),
    models=st.lists(st.sampled_from(["gpt-4.1", "gpt-4.1-mini", "nope", ""]), max_size=3),
    confirm=st.sampled_from(["0", "1"]),
)
def test_the_batch_page_answers_any_post_without_a_server_error(
    member_client, template, credential, rows_text, upload, models, confirm
):
    data = {
        "credential": str(credential.pk),
        "models": models,
        "rows_text": rows_text.replace("\x00", ""),  # a NUL in a form field is another helper's item
        "idempotency_key": "k",
        "confirm": confirm,
    }
    if upload is not None:
        data["rows_file"] = SimpleUploadedFile("rows.csv", upload, content_type="text/csv")

    response = member_client.post(reverse("prompt_templates:batch_new", args=[template.pk]), data)

    assert response.status_code < 500


def test_a_postback_sent_as_a_form_still_reaches_the_callback_with_its_body(client, credential):
    """The oversized-form check reads forms early; the upstream's postback (CSRF-exempt) reads its own
    body, whatever content type the upstream declares, so it must be left unread."""
    import gzip
    import json

    from tests.upstream.test_results import FINISHED

    task = Task.objects.create(
        provider="chat_gpt",
        credential=credential,
        request_body={"user_prompt": "hi", "model_name": "gpt-4.1-mini"},
        user_prompt="hi",
        model_name="gpt-4.1-mini",
        upstream_task_id="11221605-1535-0612-0000-abcdefabcdef",
        status=Task.Status.SUBMITTED,
    )
    body = {
        "status_code": 20000,
        "tasks": [{"id": task.upstream_task_id, "status_code": 20000, "cost": 0, "result": FINISHED}],
    }
    target = reverse(
        "submission:callback_postback",
        kwargs={"task_id": task.pk, "token": callbacks.callback_token(task.pk)},
    )

    response = client.post(
        target, gzip.compress(json.dumps(body).encode()), content_type="multipart/form-data; boundary=zz"
    )

    assert response.status_code == 200
    task.refresh_from_db()
    assert task.status == Task.Status.COMPLETED


def test_a_checked_upload_is_what_submit_sends(member_client, template, credential):
    """“Check rows and cost” on an uploaded file, then “Submit”: the browser does not send the file again
    (a file input is empty on the page that comes back), so the file's rows must be on that page."""
    url = reverse("prompt_templates:batch_new", args=[template.pk])
    upload = SimpleUploadedFile("rows.csv", b"dish,city\npho,Hanoi\nramen,Tokyo\n", content_type="text/csv")
    checked = member_client.post(
        url, {**_form_fields(credential), "rows_text": "dish,city\n", "rows_file": upload}
    )
    html = checked.content.decode()
    assert "2 tasks" in html
    assert "dish,city\npho,Hanoi\nramen,Tokyo" in html  # the rows the Submit button will send

    response = member_client.post(
        url, {**_form_fields(credential), "rows_text": "dish,city\npho,Hanoi\nramen,Tokyo\n", "confirm": "1"}
    )

    assert response.status_code == 302
    assert Task.objects.count() == 2


def test_the_too_large_message_names_the_batch_limit(member_client, template, credential, settings):
    settings.BATCH_UPLOAD_MAX_BYTES = 1000
    upload = SimpleUploadedFile("rows.csv", b"dish,city\n" + b"pho,Hanoi\n" * 150, content_type="text/csv")

    html = member_client.post(
        reverse("prompt_templates:batch_new", args=[template.pk]),
        {**_form_fields(credential), "rows_file": upload},
    ).content.decode()

    assert f"a batch runs at most {rows_module.MAX_BATCH_TASKS:,} tasks" in html


# --- The CSV files people really have ---------------------------------------------------------------
# Excel's semicolons (many European locales) and tabs ("Unicode text"), UTF-8 with a BOM, UTF-16,
# Windows-1252 bytes, CRLF, quoted values holding delimiters or newlines; and the files still unreadable,
# refused at the field with the rest of the form kept.


def _post_file(client, template, credential, data: bytes, **fields):
    form = {
        **_form_fields(credential),
        "rows_text": "",
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
    rows, errors = rows_module.parse_rows(text, ["dish", "city"])
    assert errors == []
    assert [(r["dish"], r["city"]) for r in rows] == [
        ("pho; with herbs", "Hanoi\nOld Quarter"),
        ("fish, chips", "London"),
    ]


def test_a_comma_header_stays_comma_separated_even_with_semicolons_in_values():
    rows, errors = rows_module.parse_rows("dish,city\npho;bun,Hanoi\n", ["dish", "city"])
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
    rows, errors = rows_module.parse_rows("\n\r\ndish;city\npho;Hanoi\nramen\n", ["dish", "city"])
    assert [(r["_line"], r["dish"], r["city"]) for r in rows] == [("4", "pho", "Hanoi")]
    assert errors == ["Line 5: 1 value for 2 columns."]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf_16_without_its_byte_order_mark_is_read(member_client, template, credential, encoding):
    data = "dish\tcity\r\npho\tHanoi\r\nramen\tTokyo\r\n".encode(encoding)
    html = _post_file(member_client, template, credential, data)
    assert "2 tasks" in html


def test_an_excel_sep_line_names_the_delimiter_and_is_not_the_header():
    rows, errors = rows_module.parse_rows("sep=;\ndish;city\npho, bun;Hanoi\n", ["dish", "city"])
    assert errors == []
    assert [(r["_line"], r["dish"], r["city"]) for r in rows] == [("3", "pho, bun", "Hanoi")]


def test_a_bom_before_the_first_header_of_a_file_read_as_windows_1252_still_names_it(
    member_client, template, credential
):
    # UTF-8's byte-order mark, then Windows-1252 text (a file saved by one program and edited in another):
    # the mark was read as "ï»¿", and "ï»¿dish" named no variable.
    data = codecs.BOM_UTF8 + "dish;city\r\ncrème brûlée;Besançon\r\n".encode("cp1252")
    html = _post_file(member_client, template, credential, data)
    assert "1 task" in html and "the header lacks" not in html
    rows = html.split('name="rows_text"')[1].split("</textarea>")[0]
    assert "crème brûlée;Besançon" in rows and "ï»¿" not in rows


def test_a_file_chosen_is_checked_at_once_and_nothing_is_sent(member_client, template, credential):
    """The page checks the form again as it changes (htmx, the plan's fragment): a file chosen after a
    check gives its own tasks and charge, named by the file, and a check never sends."""
    upload = SimpleUploadedFile("rows.csv", b"Dish,City\npho,Hanoi\nramen,Tokyo\npizza,Napoli\n")
    response = member_client.post(
        reverse("prompt_templates:batch_new", args=[template.pk]),
        {**_form_fields(credential), "rows_file": upload},
        headers={"HX-Request": "true"},
    )

    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith('<div id="plan"')
    assert "3 tasks" in html and "$0.0306" in html and "Submit 3 tasks" in html
    assert "Rows read from the file “rows.csv”, not from the box above, while it is chosen." in html
    assert not Task.objects.exists()


def test_a_file_that_cannot_be_read_says_why_where_the_charge_was(member_client, template, credential):
    upload = SimpleUploadedFile("rows.csv", b"dish,city\npho\x00,Hanoi\n")
    html = member_client.post(
        reverse("prompt_templates:batch_new", args=[template.pk]),
        {**_form_fields(credential), "rows_file": upload},
        headers={"HX-Request": "true"},
    ).content.decode()

    assert "Not checked:" in html and "NUL bytes" in html and "Submit" not in html


def _sent_back(html: str) -> str:
    """The rows field as the page holds it, as a browser posts it again: lines ending CRLF."""
    import html as html_module

    rows = html.split('name="rows_text"')[1].split(">", 1)[1].split("</textarea>")[0]
    return html_module.unescape(rows).replace("\n", "\r\n")


def test_the_rows_of_a_file_just_under_the_cap_come_back_with_submit(member_client, template, credential):
    """A 4.9 MB file was checked, then Submit posted its rows back in the rows field: more text than Django
    reads (2.5 MB), so the page answered “The form was too large to read” and the batch was lost."""
    notes = "n" * 4_880
    data = ("dish,city,notes\n" + "".join(f"dish{i},city{i},{notes}\n" for i in range(1_000))).encode()
    assert 4.5 * MB < len(data) < 5 * MB
    url = reverse("prompt_templates:batch_new", args=[template.pk])
    checked = member_client.post(
        url, {**_form_fields(credential), "rows_file": SimpleUploadedFile("r.csv", data)}
    )
    assert "1000 tasks" in checked.content.decode()

    again = member_client.post(
        url, {**_form_fields(credential), "rows_text": _sent_back(checked.content.decode())}
    )

    assert again.status_code == 200 and "1000 tasks" in again.content.decode()


def test_a_file_whose_rows_could_not_come_back_is_refused_at_the_field(
    member_client, template, credential, settings
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 80_000
    data = b"dish;city\r\n" + "crème brûlée;Besançon\r\n".encode("cp1252") * 4_000  # 2 bytes as UTF-8
    assert len(data) < settings.BATCH_UPLOAD_MAX_BYTES

    html = _post_file(member_client, template, credential, data)

    assert "more than the page can send with Submit" in html and "Split it" in html
    assert 'value="Nightly run"' in html
    assert "tasks (" not in html


@pytest.mark.parametrize("kind", ["xlsx", "xls"])
def test_a_spreadsheet_workbook_is_refused_with_how_to_save_it_as_csv(
    member_client, template, credential, kind
):
    # People upload the workbook itself; it was refused as "NUL bytes: not a CSV text file", or its zip
    # bytes read as Windows-1252 text.
    if kind == "xlsx":
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as workbook:
            workbook.writestr("xl/worksheets/sheet1.xml", "<worksheet>dish,city pho,Hanoi</worksheet>")
        data = out.getvalue()
    else:
        data = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"dish city pho Hanoi" * 20
    html = _post_file(member_client, template, credential, data)
    assert "a spreadsheet workbook, not a CSV file" in html
    assert "“CSV UTF-8”" in html
    assert 'value="Nightly run"' in html


def test_a_utf_8_file_with_a_stray_byte_is_refused_naming_its_line_not_read_garbled(
    member_client, template, credential
):
    # One line saved by another program: the whole file was read as Windows-1252, and "crème" was sent,
    # and paid for, as "crÃ¨me".
    data = "dish,city\ncrème,Besançon\npho,Hà Nội\n".encode() + b"ramen,T\xf6ky\xf6\n"
    html = _post_file(member_client, template, credential, data)
    assert "Line 4 holds bytes that are not UTF-8" in html
    assert "crÃ¨me" not in html and "tasks (" not in html
    assert 'value="Nightly run"' in html


def test_the_check_as_the_form_changes_says_nothing_before_any_row_is_given(
    member_client, template, credential
):
    # A model ticked on the page as it opened (the rows field holding only the header): "Nothing was sent.
    # Fix these rows first: No rows below the header." before the person had begun.
    url = reverse("prompt_templates:batch_new", args=[template.pk])
    fields = {**_form_fields(credential), "models": ["gpt-4.1", "o3-mini"]}

    for rows in ("dish,city\n", "", "\n  \n"):
        html = member_client.post(
            url, {**fields, "rows_text": rows}, headers={"HX-Request": "true"}
        ).content.decode()
        assert "alert" not in html and "Submit" not in html, rows

    html = member_client.post(
        url, {**fields, "rows_text": "dish,city\n"}
    ).content.decode()  # pressed: says why
    assert "No rows below the header." in html
    header_only = SimpleUploadedFile("rows.csv", b"dish,city\n")  # a file chosen: says why at once
    html = member_client.post(
        url, {**fields, "rows_file": header_only}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "No rows below the header." in html


def test_the_check_as_the_form_changes_does_not_say_nothing_was_sent(member_client, template, credential):
    # Nothing had been pressed: "Nothing was sent" read as if a Submit had failed.
    upload = SimpleUploadedFile("rows.csv", b"dish,city\npho\n")
    url = reverse("prompt_templates:batch_new", args=[template.pk])

    live = member_client.post(
        url, {**_form_fields(credential), "rows_file": upload}, headers={"HX-Request": "true"}
    ).content.decode()
    pressed = member_client.post(
        url, {**_form_fields(credential), "rows_text": "dish,city\npho\n"}
    ).content.decode()

    assert "Fix these rows first:" in live and "Nothing was sent" not in live
    assert "Nothing was sent. Fix these rows first:" in pressed
