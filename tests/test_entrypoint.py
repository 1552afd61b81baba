"""bin/entrypoint, the one launcher behind the Docker image and `make run`, run as those would run it."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from tests.environment import environment_without_app_variables

BASE_DIR = Path(__file__).resolve().parent.parent
PRODUCTION_SECRET_KEY = "a-production-secret-key-for-this-test-only-7Qm2xV9pLr4TzW8k"
ENTRYPOINT = BASE_DIR / "bin" / "entrypoint"

# Each test runs the entrypoint or `make run` in subprocesses on a SQLite file in tmp_path (or reads a file):
# what DATABASE_URL points the suite at does not change them, so .ci/run's PostgreSQL pass leaves them out.
pytestmark = pytest.mark.own_database


def clean_env(tmp_path: Path, **values: str) -> dict[str, str]:
    """The environment of a fresh container: none of the app's variables but those given."""
    env = environment_without_app_variables()
    env.update(PYTHON=sys.executable, DATA_DIR=str(tmp_path / "data"))
    env.update(values)
    return env


def production_env(tmp_path: Path, port: int) -> dict[str, str]:
    return clean_env(
        tmp_path,
        SECRET_KEY=PRODUCTION_SECRET_KEY,
        CREDENTIAL_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        STATIC_ROOT=str(tmp_path / "static"),
        SANDBOX_ENABLED="0",
        SECURE_COOKIES="0",
        PORT=str(port),
        BIND="127.0.0.1",
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="2",
    )


def entrypoint(*args: str, env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own script
        [str(ENTRYPOINT), *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=timeout
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, timeout: float = 60) -> requests.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"The server exited with {process.returncode} before answering:\n{output}")
        try:
            # The port opens before the workers have loaded Django: the first answer can take a while.
            return requests.get(url, timeout=10, allow_redirects=False)
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
    pytest.fail(f"No answer from {url} within {timeout}s")


def processes_in_group(pgid: int) -> list[str]:
    """Command lines of the live processes in a process group (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(cmdline)
    return found


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, *, timeout: float = 20) -> str:
    """Stop a server started in its own session; returns what it printed."""
    try:
        process.send_signal(sig)
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"The server did not stop on signal {sig}:\n{output}")
    return output


def start_run_local(env: dict[str, str], launcher: list[str] | None = None) -> subprocess.Popen:
    """`bin/entrypoint run-local` (what `make run` starts) in its own session, output captured."""
    return subprocess.Popen(  # noqa: S603 - our own script
        [*(launcher or []), str(ENTRYPOINT), "run-local"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_check_config_refuses_production_without_secrets(tmp_path):
    result = entrypoint("check-config", env=clean_env(tmp_path, ALLOWED_HOSTS="example.com"))

    assert result.returncode != 0
    assert "Configuration error: SECRET_KEY must be set when DEBUG is off." in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_refuses_production_without_credential_keys(tmp_path):
    env = clean_env(tmp_path, SECRET_KEY=PRODUCTION_SECRET_KEY, ALLOWED_HOSTS="example.com")

    result = entrypoint("check-config", env=env)

    assert result.returncode != 0
    assert "Configuration error: CREDENTIAL_KEYS must be set when DEBUG is off" in result.stderr


def test_check_config_refuses_a_credential_key_that_is_not_a_fernet_key(tmp_path):
    env = clean_env(
        tmp_path, SECRET_KEY=PRODUCTION_SECRET_KEY, CREDENTIAL_KEYS="not-a-key", ALLOWED_HOSTS="example.com"
    )

    result = entrypoint("check-config", env=env)

    assert result.returncode != 0
    assert "CREDENTIAL_KEYS entry 1 is not a Fernet key" in result.stderr


def test_check_config_accepts_a_complete_production_configuration(tmp_path):
    result = entrypoint("check-config", env=production_env(tmp_path, port=8000))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "DEBUG=False" in result.stdout


@pytest.mark.parametrize("weak", ["short", "x" * 60, "django-insecure-" + "k3y" * 20])
def test_check_config_refuses_a_weak_secret_key(tmp_path, weak):
    env = production_env(tmp_path, port=8000)
    env["SECRET_KEY"] = weak

    result = entrypoint("check-config", env=env)

    assert result.returncode != 0
    assert "Configuration error: SECRET_KEY is too weak for production" in result.stderr
    assert weak not in result.stderr + result.stdout  # the key itself is never printed
    assert "Traceback" not in result.stderr


def test_check_config_refuses_the_sandbox_in_production(tmp_path):
    env = production_env(tmp_path, port=8000)
    env["SANDBOX_ENABLED"] = "1"

    result = entrypoint("check-config", env=env)

    assert result.returncode != 0
    assert "Configuration error: SANDBOX_ENABLED must be off when DEBUG is off" in result.stderr


@pytest.mark.long
def test_web_outside_docker_collects_the_static_files_itself(tmp_path):
    """A checkout started with `bin/entrypoint web` and DEBUG off: no collectstatic was run by hand."""
    port = free_port()
    env = production_env(tmp_path, port)
    assert not (tmp_path / "static").exists()

    def serve() -> tuple[str, str]:
        server = subprocess.Popen(  # noqa: S603 - our own script
            [str(ENTRYPOINT), "web"],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            login = wait_for(f"{base}/accounts/login/", server)
            assert login.status_code == 200
            stylesheet = re.search(r'<link rel="stylesheet" href="([^"]+)"', login.text).group(1)
            assert re.fullmatch(r"/static/css/app\.[0-9a-f]{12}\.css", stylesheet), stylesheet
            css = requests.get(f"{base}{stylesheet}", timeout=5)
            assert css.status_code == 200
            assert css.headers["Content-Type"].startswith("text/css")
        finally:
            output = stop(server)
        return login.text, output

    _, first = serve()
    _, second = serve()

    assert "Static files collected into" in first
    assert "Static files unchanged since the last collection." in second


def test_compose_publishes_the_web_port_on_localhost_and_requires_the_database_password():
    import yaml

    compose = yaml.safe_load((BASE_DIR / "compose.yaml").read_text())
    services = compose["services"]

    (port,) = services["web"]["ports"]
    assert port.startswith("${WEB_BIND:-127.0.0.1}:"), port
    assert services["db"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    database_url = services["web"]["environment"]["DATABASE_URL"]
    assert "${POSTGRES_PASSWORD:?" in database_url
    everything = (BASE_DIR / "compose.yaml").read_text()
    assert "POSTGRES_PASSWORD:-" not in everything  # no default password anywhere


def test_an_unknown_command_is_refused_with_the_usage(tmp_path):
    result = entrypoint("serve", env=clean_env(tmp_path))

    assert result.returncode == 64
    assert "bin/entrypoint web" in result.stderr


@pytest.mark.long
def test_web_serves_the_login_page_and_static_files_as_in_the_image(tmp_path):
    port = free_port()
    env = production_env(tmp_path, port)
    collected = entrypoint("manage", "collectstatic", "--noinput", env=env)
    assert collected.returncode == 0, collected.stderr

    server = subprocess.Popen(  # noqa: S603 - our own script
        [str(ENTRYPOINT), "web"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        login = wait_for(f"{base}/accounts/login/", server)
        assert login.status_code == 200
        stylesheet = re.search(r'<link rel="stylesheet" href="([^"]+)"', login.text).group(1)
        assert re.fullmatch(r"/static/css/app\.[0-9a-f]{12}\.css", stylesheet), stylesheet
        css = requests.get(f"{base}{stylesheet}", timeout=5)
        assert css.status_code == 200
        assert css.headers["Content-Type"].startswith("text/css")
        assert "max-age=315360000" in css.headers["Cache-Control"]
        assert requests.get(f"{base}/static/css/app.css", timeout=5).status_code == 200
        assert requests.get(f"{base}/sandbox/", timeout=5).status_code == 404
    finally:
        output = stop(server)
    assert "Using worker: gthread" in output
    assert '"GET /accounts/login/ HTTP/1.1" 200' in output


@pytest.mark.long
def test_run_local_serves_with_a_worker_and_stops_both_on_ctrl_c(tmp_path):
    port = free_port()
    env = clean_env(tmp_path, PORT=str(port), WEB_CONCURRENCY="1", GUNICORN_THREADS="2")
    # As from a terminal: SIGINT not ignored, even if this test runs under a parent that ignores it.
    restore_sigint = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
        "os.execv(sys.argv[1], sys.argv[1:])"
    )
    server = start_run_local(env, [sys.executable, "-c", restore_sigint])
    try:
        login = wait_for(f"http://127.0.0.1:{port}/accounts/login/", server)
        assert login.status_code == 200
        children = " ".join(processes_in_group(server.pid))
        assert "gunicorn" in children
        assert "db_worker" in children
        assert "run_monitors --loop" in children  # the monitors' scheduler
    finally:
        output = stop(server, signal.SIGINT)

    assert processes_in_group(server.pid) == []
    assert re.search(rf"Log in at http://127\.0\.0\.1:{port} as admin / \S+ — shown only once", output)
    secrets = json.loads((tmp_path / "data" / "dev-secrets.json").read_text())
    assert secrets["SECRET_KEY"] not in output


def _environ_in_group(pgid: int, marker: str) -> dict[str, str]:
    """The environment of the live process of the group whose command line contains `marker`."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if fields[0] == "Z" or int(fields[2]) != pgid or marker not in cmdline:
                continue
            pairs = (stat.parent / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        return dict(pair.decode().split("=", 1) for pair in pairs if b"=" in pair)
    return {}


@pytest.mark.long
def test_run_local_lets_every_process_use_local_alert_webhooks(tmp_path):
    """README: `make run` allows alert webhooks on loopback addresses. The monitor page's form (the web
    server) checks the URL when a destination is added and its Test button sends from there, so the web
    server and the worker need it as much as the scheduler."""
    port = free_port()
    env = clean_env(tmp_path, PORT=str(port), WEB_CONCURRENCY="1", GUNICORN_THREADS="2")
    server = start_run_local(env)
    try:
        wait_for(f"http://127.0.0.1:{port}/accounts/login/", server)
        for marker in ("gunicorn", "db_worker", "run_monitors"):
            environ = _environ_in_group(server.pid, marker)
            assert environ, marker
            assert environ.get("ALERT_WEBHOOKS_ALLOW_PRIVATE") == "1", marker
    finally:
        stop(server)


def test_the_image_runs_the_entrypoint_as_a_non_root_user():
    instructions = [
        line.split(None, 1)
        for line in (BASE_DIR / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#") and not line.startswith(" ")
    ]
    by_name: dict[str, list[str]] = {}
    for name, *rest in instructions:
        by_name.setdefault(name.upper(), []).append(rest[0].strip() if rest else "")

    assert by_name["FROM"][-1].startswith("python:3.13-slim")
    assert json.loads(by_name["ENTRYPOINT"][-1]) == ["bin/entrypoint"]
    assert json.loads(by_name["CMD"][-1]) == ["web"]
    assert by_name["USER"][-1] not in {"root", "0", "0:0"}
    assert not any("SECRET_KEY" in value or "CREDENTIAL_KEYS" in value for value in by_name.get("ENV", []))
    assert not any("requirements-test" in value for value in by_name.get("RUN", []))


SUBMIT = """
from tasks.submission import sending
from tasks.models import Credential
from django.contrib.auth import get_user_model
(task,) = sending.submit_tasks(
    specs=[sending.TaskSpec(provider="claude", body={"user_prompt": "How do tides work?",
                                                       "model_name": "claude-sonnet-4-5", "tag": "e2e"})],
    credential=Credential.objects.get(is_default=True),
    user=get_user_model().objects.get(username="admin"),
)
print("TASK", task.pk, task.status)
"""

REPORT = """
from tasks.models import Task
task = Task.objects.get(pk="{task_id}")
kinds = ",".join(task.events.values_list("kind", flat=True))
print("STATE", task.status, task.cost, len(task.answer_text), kinds)
"""


@pytest.mark.long
def test_make_run_collects_a_submitted_task_with_its_real_worker(tmp_path):
    """The issue's end-to-end promise: a task submitted (planned) is sent to the stand-in and completes in
    the background, its answer, cost and events stored, by the worker `make run` starts (callbacks off:
    polling only)."""
    port = free_port()
    env = clean_env(
        tmp_path,
        PORT=str(port),
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="4",
        SANDBOX_TASK_DELAY="1",
        SANDBOX_DELIVER_CALLBACKS="0",
    )
    server = start_run_local(env)
    shell_env = {**env, "DEBUG": "1", "PUBLIC_BASE_URL": ""}

    def shell(code: str) -> str:
        result = subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", "shell", "-v0", "-c", code],
            cwd=BASE_DIR,
            env=shell_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    try:
        assert wait_for(f"http://127.0.0.1:{port}/accounts/login/", server).status_code == 200
        submitted = shell(SUBMIT)
        task_id, status = re.search(r"TASK (\S+) (\S+)", submitted).groups()
        assert status == "queued"  # planned: the worker `make run` started sends it, then collects it
        state = ""
        deadline = time.monotonic() + 180  # a wait, not a timing check: it ends once completed
        while time.monotonic() < deadline:
            state = shell(REPORT.format(task_id=task_id))
            if "STATE completed" in state:
                break
            time.sleep(1)
    finally:
        # Stopping is not what this test is about (the shutdown tests above time it): on a loaded machine
        # the worker may finish its current job first, so it gets longer than their 20 s.
        stop(server, signal.SIGINT, timeout=120)

    _, status, cost, answer_length, kinds = state.split()
    assert status == "completed"
    assert float(cost) > 0 and int(answer_length) > 0
    assert kinds.split(",")[0] == "posted" and kinds.split(",")[-1] == "completed"
    assert "polled" in kinds


def test_the_worker_runs_the_monitors_scheduler_beside_it_and_both_stop_on_sigterm(tmp_path):
    env = production_env(tmp_path, free_port())
    assert entrypoint("migrate", env=env).returncode == 0
    worker = subprocess.Popen(  # noqa: S603 - our own script
        [str(ENTRYPOINT), "worker"], cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        children = ""
        while time.monotonic() < deadline:
            children = " ".join(processes_in_group(worker.pid))
            if "db_worker" in children and "run_monitors --loop" in children:
                break
            time.sleep(0.5)
        assert "db_worker" in children and "run_monitors --loop" in children, children
    finally:
        output = stop(worker, signal.SIGTERM)
    assert processes_in_group(worker.pid) == [], output
