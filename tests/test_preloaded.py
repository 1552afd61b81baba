"""The tests' own Python child processes (`python -m module`, `python -c code`) started by tests/preloaded.py:
forked from a preloaded Python, or plain subprocesses with TESTS_PRELOADED=0. Both paths behave as a fresh
`python` would, as far as a test can tell: exit status, a kill, output, environment, directory, settings."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests import preloaded

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["preloaded", "plain"])
def mode(request, monkeypatch):
    monkeypatch.setenv("TESTS_PRELOADED", "1" if request.param == "preloaded" else "0")
    return request.param


def python(*args: str, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("cwd", ROOT)
    kwargs.setdefault("timeout", 60)
    return preloaded.run([sys.executable, *args], capture_output=True, text=True, **kwargs)


def test_the_launcher_in_use_is_the_one_the_environment_asks_for(mode):
    process = preloaded.popen([sys.executable, "-c", "pass"], cwd=ROOT)
    assert process.wait(timeout=60) == 0
    assert isinstance(process, preloaded.PreloadedPopen) == (mode == "preloaded")


@pytest.mark.parametrize(
    ("code", "status"),
    [("pass", 0), ("raise SystemExit(7)", 7), ("import sys; sys.exit('gone')", 1), ("1 / 0", 1)],
)
def test_exit_status_is_what_python_would_return(mode, code, status):
    assert python("-c", code).returncode == status


def test_an_uncaught_exception_prints_its_traceback_on_stderr(mode):
    result = python("-c", "print('before', flush=True)\nraise ValueError('the reason')")
    assert result.returncode == 1
    assert result.stdout == "before\n"
    assert "Traceback" in result.stderr
    assert "ValueError: the reason" in result.stderr


def test_a_process_that_kills_itself_reports_the_signal(mode):
    result = python(
        "-c", "import os, signal, sys\nprint('dying', flush=True)\nos.kill(os.getpid(), signal.SIGKILL)"
    )
    assert result.returncode == -signal.SIGKILL
    assert result.stdout == "dying\n"


@pytest.mark.parametrize(("stop", "sig"), [("kill", signal.SIGKILL), ("terminate", signal.SIGTERM)])
def test_kill_and_terminate_stop_a_running_child(mode, stop, sig):
    process = preloaded.popen(
        [sys.executable, "-c", "import time\nprint('ready', flush=True)\ntime.sleep(60)"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline() == "ready\n"
    assert process.poll() is None
    getattr(process, stop)()
    assert process.wait(timeout=10) == -sig
    process.stdout.close()


def _signals_of(pid: int) -> str:
    """The child's signal masks, to tell a blocked signal from a lost one if the wait below times out."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError as exc:
        return str(exc)
    return " ".join(line for line in status.splitlines() if line.startswith(("State", "Sig", "Shd")))


def test_a_signal_handler_of_the_child_runs(monkeypatch):
    """The zygote's child sets its own handlers (a plain `python` is Python's own business: a run of the
    suite once saw its wait time out with -n 4, not seen again)."""
    monkeypatch.setenv("TESTS_PRELOADED", "1")
    code = """
import signal, sys, time
signal.signal(signal.SIGUSR1, lambda *a: sys.exit(5))
print("ready", flush=True)
time.sleep(60)
"""
    process = preloaded.popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "ready\n"
    process.send_signal(signal.SIGUSR1)
    try:
        assert process.wait(timeout=10) == 5
    except subprocess.TimeoutExpired:
        pytest.fail(f"the child did not end on SIGUSR1: {_signals_of(process.pid)}")
    finally:
        process.kill()
    process.stdout.close()


def test_stdin_stdout_and_stderr_are_the_childs_own(mode):
    process = preloaded.popen(
        [
            sys.executable,
            "-c",
            "import sys\nprint(sys.stdin.read().upper())\nprint('to stderr', file=sys.stderr)",
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = process.communicate("hello\n", timeout=60)
    assert (process.returncode, out, err) == (0, "HELLO\n\n", "to stderr\n")


def test_environment_directory_and_arguments_are_the_ones_given(mode, tmp_path, monkeypatch):
    monkeypatch.setenv("ONLY_IN_THE_TEST_PROCESS", "1")
    code = "import json, os, sys\nprint(json.dumps([os.getcwd(), dict(os.environ), sys.argv, sys.path[0]]))"
    result = python("-c", code, "one", "two", cwd=tmp_path, env={"PATH": os.environ["PATH"], "CHOSEN": "é"})
    cwd, environ, argv, path = json.loads(result.stdout)
    assert cwd == str(tmp_path)
    assert environ.get("CHOSEN") == "é"
    assert "ONLY_IN_THE_TEST_PROCESS" not in environ
    assert argv == ["-c", "one", "two"]
    assert path == ""


def test_a_module_runs_as_main_from_the_directory_given(mode, tmp_path):
    (tmp_path / "probe.py").write_text(
        "import json, sys\nif __name__ == '__main__':\n    print(json.dumps([sys.argv, sys.path[0]]))\n"
    )
    result = python("-m", "probe", "--flag", "value", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    argv, path = json.loads(result.stdout)
    assert argv == [str(tmp_path / "probe.py"), "--flag", "value"]
    assert path == str(tmp_path)


def test_each_child_reads_django_settings_from_its_own_environment(mode):
    code = (
        "import django\ndjango.setup()\nfrom django.conf import settings as s\nprint(s.SENDING_LEASE_SECONDS)"
    )
    for lease in ("7.5", "2.0"):
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "SENDING_LEASE_SECONDS": lease}
        result = python("-c", code, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"{lease}\n"


def test_the_child_has_only_its_standard_streams_open(mode):
    result = python("-c", "import os\nprint(sorted(int(fd) for fd in os.listdir('/proc/self/fd')))")
    # the fourth is the directory listing itself
    assert len(json.loads(result.stdout)) == 4
    assert json.loads(result.stdout)[:3] == [0, 1, 2]


def test_the_child_is_the_test_processs_own(mode):
    assert python("-c", "import os\nprint(os.getppid())").stdout == f"{os.getpid()}\n"


def test_a_child_running_too_long_is_killed_at_the_timeout(mode):
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired) as timed_out:
        python("-c", "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(60)", timeout=2)
    assert time.monotonic() - started < 30
    assert not running(int(timed_out.value.stdout))


def test_two_children_at_once_each_report_their_own_status(mode):
    code = "import sys, time\ntime.sleep(float(sys.argv[1]))\nraise SystemExit(int(sys.argv[2]))"
    slow = preloaded.popen([sys.executable, "-c", code, "1", "3"], cwd=ROOT)
    fast = preloaded.popen([sys.executable, "-c", code, "0", "4"], cwd=ROOT)
    assert fast.wait(timeout=60) == 4
    assert slow.wait(timeout=60) == 3


OWNER = """
import os, signal, sys, time
from tests import preloaded
child = preloaded.popen([sys.executable, "-c", "pass"])
child.wait(timeout=60)
print(preloaded.zygote_pid(), flush=True)
if sys.argv[1] == "killed":
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("end", ["exits", "killed"])
def test_the_preloaded_python_ends_with_the_process_that_started_it(end):
    env = {**os.environ, "TESTS_PRELOADED": "1"}
    owner = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", textwrap.dedent(OWNER), end],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert owner.returncode == (0 if end == "exits" else -signal.SIGKILL), owner.stderr
    zygote = int(owner.stdout)
    deadline = time.monotonic() + 10
    while running(zygote) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(zygote)


def running(pid: int) -> bool:
    """Alive, not a zombie left for an init that does not reap."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
