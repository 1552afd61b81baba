"""Start the tests' own Python child processes (`python -m module ARGS`, `python -c CODE ARGS`) without
paying for Python, Django and the libraries to be imported again in each: `popen` and `run` stand in for
subprocess.Popen and subprocess.run, and fork the child from a preloaded Python (tests/zygote.py), one per
test process, started at the first launch. The child then sets its own environment, directory and arguments
and runs as a fresh `python` would; it reads its settings from its own environment (none are set up before
the fork).

The child is this process's own: the zygote forks twice and this process, a child subreaper for that moment,
adopts the grandchild, so the returned object is a real subprocess.Popen (waitpid, returncode -9 when killed,
pipes, communicate, timeouts). The zygote ends when this process does (its socket closes; PR_SET_PDEATHSIG).

TESTS_PRELOADED=0 launches plain subprocesses instead, to rule the launcher out.
"""

import atexit
import ctypes
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_PR_SET_CHILD_SUBREAPER, _PR_GET_CHILD_SUBREAPER = 36, 37
_libc = ctypes.CDLL(None, use_errno=True)


def enabled() -> bool:
    return os.environ.get("TESTS_PRELOADED", "1") != "0"


def popen(args: list[str], **kwargs) -> subprocess.Popen:
    """subprocess.Popen of `[sys.executable, "-m" | "-c", ...]`: from the zygote, or plain when disabled."""
    return (PreloadedPopen if enabled() else subprocess.Popen)(args, **kwargs)


def run(args: list[str], *, timeout: float | None = None, capture_output: bool = False, **kwargs):
    """subprocess.run (without `input` and `check`) of `[sys.executable, "-m" | "-c", ...]`."""
    if capture_output:
        kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
    with popen(args, **kwargs) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


class PreloadedPopen(subprocess.Popen):
    """A subprocess.Popen whose child is forked by the zygote instead of exec'ing a new Python."""

    def _execute_child(  # subprocess.Popen's own signature
        self, args, executable, preexec_fn, close_fds, pass_fds, cwd, env, startupinfo, creationflags, shell,
        p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite, restore_signals, gid, gids, uid, umask,
        start_new_session, process_group,
    ):  # fmt: skip
        args = [os.fspath(arg) for arg in args]
        unsupported = shell or executable or preexec_fn or pass_fds or start_new_session
        unsupported = (
            unsupported or process_group not in (None, -1) or {gid, gids, uid} != {None} or umask != -1
        )
        if unsupported or len(args) < 3 or args[0] != sys.executable or args[1] not in ("-m", "-c"):
            raise ValueError(f"only [sys.executable, '-m' | '-c', ...] with pipes, cwd and env: {args[:3]}")
        request = {
            "argv": args[1:],
            "cwd": os.path.abspath(cwd if cwd is not None else os.getcwd()),
            "env": dict(env if env is not None else os.environ),
        }
        fds = [p2cread, c2pwrite, errwrite]
        fds = [fd if fd != -1 else standard for standard, fd in enumerate(fds)]
        self.pid = _zygote.launch(request, fds)
        self._child_created = True
        self._close_pipe_fds(p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite)


class _Zygote:
    """The preloaded Python of this process, started at the first launch (and again if it ever died)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.process: subprocess.Popen | None = None
        self.socket: socket.socket | None = None
        self.owner = 0

    def launch(self, request: dict, fds: list[int]) -> int:
        with self.lock:
            if self.owner != os.getpid() or self.process.poll() is not None:
                self._start()
            adopting = _libc_int(_PR_GET_CHILD_SUBREAPER) == 0
            if adopting:
                _prctl(_PR_SET_CHILD_SUBREAPER, 1)
            try:
                socket.send_fds(self.socket, [json.dumps(request).encode()], fds)
                reply = self.socket.recv(1 << 16)
            finally:
                if adopting:
                    _prctl(_PR_SET_CHILD_SUBREAPER, 0)
            if not reply:
                raise RuntimeError(f"the preloaded Python ended: {self._ended()}")
            answer = json.loads(reply)
            if "error" in answer:
                raise OSError(answer["error"])
            return answer["pid"]

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # no settings before the fork: each child reads its own environment
        env = {name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"}
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "tests.zygote", str(theirs.fileno()), str(os.getpid())],
            cwd=ROOT, env=env, pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        theirs.close()
        self.socket, self.owner = ours, os.getpid()
        if ours.recv(16) != b"ready":
            raise RuntimeError(f"the preloaded Python did not start: {self._ended()}")

    def _ended(self) -> str:
        self.process.wait(timeout=10)
        return f"status {self.process.returncode}, {self.process.stderr.read().decode()[-3000:]}"

    def stop(self) -> None:
        if self.owner == os.getpid():
            self.socket.close()
            self.process.wait(timeout=10)
            self.process.stderr.close()


def zygote_pid() -> int | None:
    """The preloaded Python's process id, once started."""
    return _zygote.process.pid if _zygote.owner == os.getpid() else None


def _prctl(option: int, value: int) -> None:
    if _libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl")


def _libc_int(option: int) -> int:
    value = ctypes.c_int(0)
    if _libc.prctl(option, ctypes.byref(value), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl")
    return value.value


_zygote = _Zygote()
atexit.register(_zygote.stop)
