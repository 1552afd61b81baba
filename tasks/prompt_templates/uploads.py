"""Uploads: a size cap that refuses a too-large file before reading it, and a clear page for a form too
large to read at all.

`CappedUploadHandler` runs first among Django's upload handlers (settings.FILE_UPLOAD_HANDLERS). When the
request's Content-Length already exceeds BATCH_UPLOAD_MAX_BYTES (plus room for the form's other fields),
every file in it is dropped chunk by chunk as it streams past, never stored in memory or on disk, and the
form receives a `RefusedUpload` in its place, so it can say so at the field while keeping the person's
other input (the browser sends those before the file). `upload_text` turns an accepted upload into text
(UTF-8, UTF-16 with a BOM, or Windows-1252: what spreadsheets save).
"""

import codecs
import io
import re

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopFutureHandlers
from django.shortcuts import redirect
from django.urls import Resolver404, resolve
from django.utils.text import normalize_newlines
from django_htmx.http import HttpResponseClientRedirect

from tasks.prompt_templates.rows import MAX_BATCH_TASKS

# The form's other fields (CSRF token, name, credential, models, the pasted rows' header) travel in the
# same request as the file.
FORM_FIELDS_ROOM = 64 * 1024
FORM_CONTENT_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
# How a workbook file starts: a zip (.xlsx, .ods) or an OLE compound file (Excel 97-2003's .xls).
WORKBOOK_SIGNATURES = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")


def upload_limit_label() -> str:
    size = settings.BATCH_UPLOAD_MAX_BYTES
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:.3g} MB"
    return f"{size / 1024:.3g} KB" if size >= 1024 else f"{size} bytes"


class RefusedUpload(UploadedFile):
    """Stands for a file that was too large to read: no content, the request's size as its size."""

    def __init__(self, *, name: str, size: int):
        super().__init__(file=io.BytesIO(b""), name=name, size=max(size, 1))


class CappedUploadHandler(FileUploadHandler):
    """Refuses every file of a request larger than BATCH_UPLOAD_MAX_BYTES without storing any of it."""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.too_large = content_length > settings.BATCH_UPLOAD_MAX_BYTES + FORM_FIELDS_ROOM
        self.request_size = content_length
        self.refusing = False

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.refusing = self.too_large
        if self.refusing:
            raise StopFutureHandlers  # the memory and temporary-file handlers never see this file

    def receive_data_chunk(self, raw_data, start):
        return None if self.refusing else raw_data

    def file_complete(self, file_size):
        if not self.refusing:
            return None
        self.refusing = False
        return RefusedUpload(name=self.file_name, size=self.request_size)


def upload_rows(form, upload, *, rows_field: str = "rows_text", file_field: str = "rows_file") -> str | None:
    """The text of `form`'s uploaded CSV (`upload_text`), also put in its rows field: the page that comes
    back (a field to fix, or rows to check) has an empty file input, so its next submit sends the rows
    field, which then holds the file's rows. None, with the reason on the file field, when it cannot be
    used."""
    try:
        text = normalize_newlines(upload_text(upload))  # a spreadsheet's CRLF or CR line ends
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE - FORM_FIELDS_ROOM
        if (size := _sent_back_size(text)) > limit:
            raise ValidationError(
                f"Read as text, this file is {size / 1024 / 1024:.3g} MB: more than the page can send with "
                f"Submit ({limit / 1024 / 1024:.3g} MB). Split it into smaller files.",
                code="too_long",
            )
    except ValidationError as exc:
        form.add_error(file_field, exc)
        return None
    form.data = form.data.copy()
    form.data[rows_field] = text
    return text


def _sent_back_size(text: str) -> int:
    """The bytes the rows field posts `text` as: UTF-8, lines ending CRLF (as browsers send a textarea)."""
    return len(text.encode()) + text.count("\n")


def upload_text(upload) -> str:
    """The text of an uploaded CSV file, or a ValidationError that says why it cannot be used."""
    if isinstance(upload, RefusedUpload) or upload.size > settings.BATCH_UPLOAD_MAX_BYTES:
        raise ValidationError(
            f"This file is larger than {upload_limit_label()}, the most a batch upload takes; it was not "
            f"read. Split it into smaller files (a batch runs at most {MAX_BATCH_TASKS:,} tasks).",
            code="too_large",
        )
    data = upload.read()
    if data.startswith(WORKBOOK_SIGNATURES):
        raise ValidationError(
            "This is a spreadsheet workbook, not a CSV file. Save it from your spreadsheet as “CSV UTF-8” "
            "(File › Save As), then upload that file.",
            code="workbook",
        )
    text = _decoded(data)
    if "\x00" in text:
        raise ValidationError("The file holds NUL bytes: it is not a CSV text file.", code="binary")
    return text


def _decoded(data: bytes) -> str:
    """The file's text: UTF-16 with its byte-order mark (Excel's "Unicode text") or without it, UTF-8 (with or
    without a BOM), else Windows-1252 (Excel's "CSV" on Windows in Western locales); a ValidationError
    otherwise, and for UTF-8 text with a line of other bytes (no reading of it is right)."""
    try:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return data.decode("utf-16")
        if b"\x00" in data:
            return data.decode(_utf_16_without_bom(data) or "latin-1")  # else refused for its NUL bytes
        data = data.removeprefix(codecs.BOM_UTF8)  # before Windows-1252 text too, the mark, not "ï»¿"
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            if not data[: exc.start].isascii():  # UTF-8 letters before it: read as Windows-1252, garbled
                line = len(re.split(rb"\r\n|\r|\n", data[: exc.start]))
                raise ValidationError(
                    f"Line {line} holds bytes that are not UTF-8, though the lines before it are UTF-8 text: "
                    "the file mixes two encodings, and its letters would be sent garbled. Save it from your "
                    "spreadsheet as “CSV UTF-8”, or paste its rows.",
                    code="mixed_encodings",
                ) from None
            return data.decode("cp1252")
    except UnicodeDecodeError:
        raise ValidationError(
            "The file is not text in UTF-8, UTF-16 or Windows-1252. Save it from your spreadsheet as "
            "“CSV UTF-8”, or paste its rows.",
            code="encoding",
        ) from None


def _utf_16_without_bom(data: bytes) -> str | None:
    """ "utf-16-le" or "-be" when the bytes look like mostly-ASCII UTF-16 written without its mark (every
    other byte NUL), else None: a text file with a stray NUL byte is not one."""
    sample = data[:4096]
    if len(data) % 2 or len(sample) < 4:
        return None
    for encoding, high in (("utf-16-le", sample[1::2]), ("utf-16-be", sample[0::2])):
        if high.count(0) >= 0.8 * len(high):
            return encoding
    return None


class OversizedFormMiddleware:
    """A form too large for Django to read (more than DATA_UPLOAD_MAX_MEMORY_SIZE of text, or too many
    fields) gets its page back with a message instead of a bare 400.

    Placed after the message middleware; it reads the form before the CSRF check (which would read it
    anyway), and on refusal only redirects: nothing of the request is used. Views exempt from CSRF (the
    upstream's postbacks) read their own body, whatever its content type, so it is left unread for them.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            request.method == "POST"
            and request.content_type in FORM_CONTENT_TYPES
            and not _reads_its_own_body(request)
        ):
            try:
                request.POST  # noqa: B018 - parse now, so a refusal can answer with the page
            except (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent):
                messages.error(
                    request,
                    "The form was too large to read, so nothing was done. Paste less text at once, or "
                    f"upload the rows as a CSV file (up to {upload_limit_label()}).",
                )
                url = request.get_full_path()
                return HttpResponseClientRedirect(url) if request.headers.get("HX-Request") else redirect(url)
        return self.get_response(request)


def _reads_its_own_body(request) -> bool:
    try:
        view = resolve(request.path_info).func
    except Resolver404:
        return False
    return getattr(view, "csrf_exempt", False)
