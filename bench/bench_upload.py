"""Batch CSV uploads of 20 MB and 100 MB (and the largest file accepted): time and memory in one web worker.

    .venv/bin/python bench/bench_upload.py
    .venv/bin/python bench/bench_upload.py --sizes 20,100 --rounds 3

Each upload is a multipart body on disk (the form's fields, then a CSV file of rows of ~100 bytes), handed
to Django's WSGI handler as a stream that is read as the request is parsed, the way gunicorn hands over a
request body; the request carries a real session and CSRF token, so it takes the whole path of a browser's
POST to the batch page. Figures per size: the median wall time, the peak of Python allocations during the
request (tracemalloc, in a separate run: tracing slows the code), and the process's resident memory growth
(VmHWM, the peak RSS, reset before each request through /proc/self/clear_refs).
"""

import argparse
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

from _builder_setup import make_catalog, make_credential, make_member, setup_django

MB = 1024 * 1024
CSRF = "b" * 32
BOUNDARY = "BenchBoundary7MA4YWxkTrZu0gW"


def _body(path: Path, fields: dict[str, list[str]], file_bytes: int) -> int:
    row = b"x" * 90 + b",Paris\n"
    with open(path, "wb") as out:
        for name, values in fields.items():
            for value in values:
                disposition = f'Content-Disposition: form-data; name="{name}"'
                out.write(f"--{BOUNDARY}\r\n{disposition}\r\n\r\n{value}\r\n".encode())
        out.write(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="rows_file"; filename="rows.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n".encode()
        )
        out.write(b"dish,city\n")
        written = 0
        while written < file_bytes:
            out.write(row)
            written += len(row)
        out.write(f"\r\n--{BOUNDARY}--\r\n".encode())
        return out.tell()


def _session_cookie(user) -> str:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return f"sessionid={session.session_key}; csrftoken={CSRF}"


def _vm(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _post(handler, url: str, cookie: str, path: Path, size: int) -> tuple[int, str]:
    status = []
    with open(path, "rb") as stream:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": url,
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_COOKIE": cookie,
            "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
            "CONTENT_LENGTH": str(size),
            "wsgi.input": stream,
            "wsgi.url_scheme": "http",
            "wsgi.errors": None,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        body = b"".join(handler(environ, lambda code, headers, *exc: status.append(code)))
    return int(status[0].split()[0]), body.decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,100", help="upload sizes in MB (comma-separated)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    setup_django()
    from django.conf import settings

    # Pages link their static files; nothing was collected for this throwaway set-up.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    from django.core.handlers.wsgi import WSGIHandler
    from django.urls import reverse

    from tasks.prompt_templates.services import template_create

    make_catalog()
    user = make_member()
    credential = make_credential("http://127.0.0.1:9/unused")
    template = template_create(
        name="Bench", provider="chat_gpt", fields={"user_prompt": "Best {{dish}} in {{city}}?"}, user=user
    )
    url = reverse("prompt_templates:batch_new", args=[template.pk])
    fields = {
        "csrfmiddlewaretoken": [CSRF],
        "name": ["Bench upload"],
        "credential": [str(credential.pk)],
        "models": ["gpt-4.1"],
        "rows_text": [""],
        "idempotency_key": ["bench"],
    }
    handler = WSGIHandler()
    cookie = _session_cookie(user)
    cap = getattr(settings, "BATCH_UPLOAD_MAX_BYTES", 5 * MB)  # the default, on code without the cap
    sizes = [("largest accepted", cap - 64 * 1024)] + [
        (f"{mb} MB", int(float(mb) * MB)) for mb in args.sizes.split(",")
    ]
    tmp = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    _post(handler, url, cookie, *(lambda p: (p, _body(p, fields, 1000)))(tmp / "warm"))  # warm up
    print(f"cap BATCH_UPLOAD_MAX_BYTES = {cap / MB:g} MB; {args.rounds} rounds per size")
    for label, file_bytes in sizes:
        path = tmp / "body"
        size = _body(path, fields, file_bytes)
        times, growth = [], []
        for _ in range(args.rounds):
            rss_before = _vm("VmRSS")
            can_reset = _reset_peak_rss()
            started = time.perf_counter()
            status, html = _post(handler, url, cookie, path, size)
            times.append(time.perf_counter() - started)
            growth.append((_vm("VmHWM") if can_reset else _vm("VmRSS")) - rss_before)
        tracemalloc.start()
        _post(handler, url, cookie, path, size)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        refused = "larger than" in html
        print(
            f"{label:>17}: body {size / MB:7.1f} MB  status {status}  "
            f"{'refused at the field' if refused else 'read'}  "
            f"time median {statistics.median(times) * 1000:7.1f} ms (max {max(times) * 1000:.1f})  "
            f"peak RSS growth {max(growth) / MB:6.1f} MB  Python peak {peak / MB:6.2f} MB"
        )
        path.unlink()


if __name__ == "__main__":
    main()
