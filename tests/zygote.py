"""The preloaded Python behind tests/preloaded.py: imports what every test child process imports and needs no
settings (Django's ORM, HTTP, forms and templates, requests, psycopg, cryptography, ...), then forks a child
for each request that arrives on its socket. Never settings, django.setup() or a database connection here:
each child reads its settings from its own environment, as a fresh `python` would.

    python -m tests.zygote SOCKET_FD PARENT_PID

A request is JSON (argv after the interpreter: `-m module ...` or `-c code ...`; cwd; env) with the child's
stdin, stdout and stderr as file descriptors. The zygote forks a middle process that forks the child and
exits, so the child is adopted by the test process (a child subreaper while it waits for the answer) and
answers the child's pid. The child returns from `serve` and runs the rest of this module's main as the new
program: SystemExit, an uncaught exception and the interpreter's exit work as in any Python. What Python reads
only when it starts (PYTHONPATH, PYTHONHASHSEED, PYTHONWARNINGS, -X options) is the zygote's, which was
started with the test process's environment.
"""

import builtins
import ctypes
import gc
import importlib
import importlib.util
import io
import json
import os
import runpy
import signal
import socket
import sys
import threading
import time
import types

_PR_SET_PDEATHSIG = 1

# What -X importtime shows a worker, a scheduler and a killed web request spend most on, importable before
# settings exist. The product's modules and Django's models need settings: the child imports them.
PRELOAD = (
    "django.db.models",
    "django.db.backends.sqlite3.base",
    "django.db.migrations",
    "django.http",
    "django.urls",
    "django.forms",
    "django.template.defaulttags",
    "django.template.defaultfilters",
    "django.template.loader_tags",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.core.management",
    "django.tasks",
    "django_tasks_db",
    "requests",
    "cryptography.fernet",
    "markdown_it",
    "sqlparse",
)


def preload() -> None:
    names = list(PRELOAD)
    if importlib.util.find_spec("psycopg") or importlib.util.find_spec("psycopg2"):
        names.append("django.db.backends.postgresql.base")
    for name in names:
        importlib.import_module(name)
    from django.apps import apps
    from django.conf import settings

    assert not settings.configured and not apps.ready, "the zygote must not set Django up"
    assert threading.active_count() == 1, "the zygote forks: no thread may hold a lock then"
    gc.freeze()  # the children's collections skip what was preloaded (fewer pages copied after the fork)


def serve(connection: socket.socket) -> dict:
    """Answer launch requests until the test process goes; returns only in a launched child, its request."""
    while True:
        message, fds, _flags, _address = socket.recv_fds(connection, 1 << 20, 3)
        if not message:
            raise SystemExit(0)  # the test process ended
        request = json.loads(message)
        try:
            pid = _fork_adopted()
        except OSError as error:
            _close(fds)
            connection.send(json.dumps({"error": str(error)}).encode())
            continue
        if pid == 0:
            connection.close()
            _become(request, fds)
            return request
        _close(fds)
        connection.send(json.dumps({"pid": pid}).encode())


def _fork_adopted() -> int:
    """Fork a child whose parent is the test process: its pid here, 0 in the child."""
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:  # never returns to the zygote's loop
        try:
            middle = os.getpid()
            child = os.fork()
        except BaseException:
            os._exit(1)
        if child == 0:
            _close([read_end, write_end])
            while os.getppid() == middle:  # until adopted: a fresh child's parent is the test process
                time.sleep(0.0005)
            return 0
        try:
            os.write(write_end, str(child).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 32)
    os.close(read_end)
    os.waitpid(middle, 0)
    if not answer:
        raise OSError("the child could not be forked")
    return int(answer)


def _become(request: dict, fds: list[int]) -> None:
    """This process becomes the requested one: its streams, directory, environment, signals."""
    for number, fd in enumerate(fds):
        os.dup2(fd, number)
    _close([fd for fd in fds if fd > 2])
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _open_standard_streams()


def _open_standard_streams() -> None:
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    for number, name, mode in ((0, "stdin", "rb"), (1, "stdout", "wb"), (2, "stderr", "wb")):
        old = getattr(sys, name)
        raw = open(number, mode, buffering=0 if unbuffered and number else -1, closefd=False)  # noqa: SIM115 - for good
        stream = io.TextIOWrapper(
            raw, encoding=old.encoding, errors=old.errors,
            line_buffering=number == 2 or (number == 1 and os.isatty(1)), write_through=unbuffered,
        )  # fmt: skip
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def run(request: dict) -> None:
    """Run the child's program as `python -m module ...` or `python -c code ...` would."""
    option, target, *arguments = request["argv"]
    if option == "-m":
        sys.argv = [target, *arguments]
        sys.path[0] = os.getcwd()
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        sys.argv = ["-c", *arguments]
        sys.path[0] = ""
        main = types.ModuleType("__main__")
        main.__builtins__ = builtins
        sys.modules["__main__"] = main
        exec(compile(target, "<string>", "exec"), main.__dict__)  # noqa: S102 - the test's own code


def _close(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def _die_with(parent: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        raise SystemExit(0)  # it was gone before the line above


if __name__ == "__main__":
    _die_with(int(sys.argv[2]))
    preload()
    sock = socket.socket(fileno=int(sys.argv[1]))
    sock.send(b"ready")
    run(serve(sock))
