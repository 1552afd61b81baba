"""The stand-in upstream in a process of its own, as the real upstream is: its own database, its own
interpreter. Prints its base URL on the first line of stdout and serves until its stdin closes.

Run by the batch benchmark; not meant to be started by hand.
"""

import sys
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from _builder_setup import setup_django


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def main() -> None:
    setup_django()
    from django.core.wsgi import get_wsgi_application

    server = make_server(
        "127.0.0.1", 0, get_wsgi_application(), server_class=ThreadingWSGIServer, handler_class=QuietHandler
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"http://127.0.0.1:{server.server_port}", flush=True)
    sys.stdin.read()  # until the benchmark closes our stdin or exits
    server.shutdown()


if __name__ == "__main__":
    main()
