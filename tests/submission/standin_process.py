"""The stand-in upstream in a process of its own, with its own SQLite database, as the real upstream is a
service of its own: killing the product's processes never touches it, and what reached it is counted in
its database. For the end-to-end sending test and bench/bench_durable.py.

    python -m tests.submission.standin_process DATA_DIR

Prints its base URL on the first line of stdout and serves (threaded wsgiref) until its stdin closes.
SANDBOX_TASK_DELAY and SANDBOX_DELIVER_CALLBACKS come from the environment.
"""

import os
import sys
import threading
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128


def main() -> None:
    data_dir = Path(sys.argv[1])
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": f"sqlite:///{data_dir / 'standin.sqlite3'}",
            "DATA_DIR": str(data_dir),
            "SANDBOX_ENABLED": "1",
            "LOG_LEVEL": "WARNING",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application

    call_command("migrate", verbosity=0)
    server = make_server(
        "127.0.0.1", 0, get_wsgi_application(), server_class=ThreadingWSGIServer, handler_class=QuietHandler
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"http://127.0.0.1:{server.server_port}", flush=True)
    sys.stdin.read()  # until the test closes our stdin or exits
    server.shutdown()


if __name__ == "__main__":
    main()
