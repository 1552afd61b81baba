"""A batch sent as a new user would send it, with every process real, and the web server and every worker
killed (SIGKILL) and restarted while it is being sent. Used by tests/submission/test_durable_sending.py
(a small batch, in the suite) and bench/bench_durable.py (10,000 tasks).

The processes: the stand-in upstream in a process of its own with its own database
(tests/submission/standin_process.py), the product's web server (`bin/entrypoint web`: gunicorn, the
production settings) and sending workers (`bin/entrypoint worker`: django-tasks-db's db_worker). The batch
is checked and submitted through the batch page over HTTP by a logged-in person; progress is read from the
product's database, what reached the upstream from the stand-in's.
"""

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import requests
from cryptography.fernet import Fernet

from tests.environment import environment_without_app_variables

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "bin" / "entrypoint"
PASSWORD = "durable-sending-password"
FINAL = {"completed", "failed", "unknown"}

SETUP = """
from django.contrib.auth import get_user_model
from django.urls import reverse
from tasks.models import Credential, PromptTemplate, PromptTemplateVersion
from tests.factories import make_catalog
make_catalog()
get_user_model().objects.create_superuser("admin", password={password!r})
credential = Credential(name="DataForSEO", kind=Credential.Kind.DATAFORSEO, base_url={base_url!r},
                        login="sandbox@example.com", is_default=True, calls_per_minute={calls_per_minute})
credential.set_secret("sandbox-password")
credential.save()
template = PromptTemplate.objects.create(name="Dishes by city", provider="chat_gpt")
PromptTemplateVersion.objects.create(template=template, number=1, fields={{
    "user_prompt": "Where is the best {{{{dish}}}} in {{{{city}}}}?", "model_name": "gpt-4.1-mini"}})
print("BATCH_NEW", reverse("prompt_templates:batch_new", args=[template.pk]))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Database:
    """The product's database, read directly (a process of the product may be dead at any moment)."""

    url: str

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.url.startswith("sqlite:///"):
            with sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=30) as db:
                return db.execute(sql, params).fetchall()
        import psycopg

        with psycopg.connect(self.url.replace("postgres://", "postgresql://", 1), autocommit=True) as db:
            return db.execute(sql.replace("?", "%s"), params).fetchall()


def postgres_database(base_url: str, name: str, *, drop: bool = False) -> str:
    """Create (or drop) a PostgreSQL database `name` on the server of `base_url`; its URL."""
    import psycopg

    server = base_url.rsplit("/", 1)[0]
    with psycopg.connect(
        f"{server}/postgres".replace("postgres://", "postgresql://", 1), autocommit=True
    ) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop:
            db.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


@dataclass
class DurableRun:
    directory: Path
    database_url: str  # the product's ("" for SQLite in `directory`)
    calls_per_minute: int | None = 60  # the credential's own limit (None: DataForSEO's 2,000)
    workers: int = 2
    task_delay: float = 0.5  # the stand-in's: how long a task takes upstream
    processes: dict = field(default_factory=dict)
    kills: list = field(default_factory=list)  # (chunks sent, chunks in flight) at each kill
    log: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.database_url = self.database_url or f"sqlite:///{self.directory / 'product.sqlite3'}"
        self.db = Database(self.database_url)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = environment_without_app_variables()
        self.env.update(
            PYTHON=sys.executable,
            DATA_DIR=str(self.directory / "data"),
            SECRET_KEY="durable-sending-secret-key-for-this-test-only-7Qm2xV9pLr4TzW8k",
            CREDENTIAL_KEYS=Fernet.generate_key().decode(),
            ALLOWED_HOSTS="127.0.0.1",
            DATABASE_URL=self.database_url,
            STATIC_ROOT=str(self.directory / "static"),
            SANDBOX_ENABLED="0",
            SECURE_COOKIES="0",
            PORT=str(self.port),
            BIND="127.0.0.1",
            WEB_CONCURRENCY="1",
            GUNICORN_THREADS="4",
            PUBLIC_BASE_URL=self.base,  # the stand-in's callbacks come to the web server
            SENDING_LEASE_SECONDS="5",  # a killed worker's chunks are swept after 5 s
            COLLECT_LEASE_SECONDS="5",  # and the polls it had under way are taken up after 5 s
            LOG_LEVEL="WARNING",
        )

    # -- processes

    def start_standin(self) -> None:
        env = {**os.environ, "SANDBOX_TASK_DELAY": str(self.task_delay), "SANDBOX_DELIVER_CALLBACKS": "1"}
        env.pop("DATABASE_URL", None)
        standin = subprocess.Popen(  # noqa: S603 - our own module
            [sys.executable, "-m", "tests.submission.standin_process", str(self.directory / "standin")],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        (self.directory / "standin").mkdir(exist_ok=True)
        self.processes["standin"] = standin
        self.standin_url = standin.stdout.readline().strip()
        assert self.standin_url.startswith("http://"), "the stand-in did not start"

    def setup_product(self) -> str:
        """Migrate, then a person, a credential on the stand-in and a template; the batch page's path."""
        self._entrypoint("migrate")
        code = SETUP.format(
            password=PASSWORD,
            base_url=f"{self.standin_url}/sandbox/v3",
            calls_per_minute=self.calls_per_minute,
        )
        out = self._entrypoint("manage", "shell", "-v0", "-c", code)
        return re.search(r"BATCH_NEW (\S+)", out).group(1)

    def _entrypoint(self, *args: str) -> str:
        done = subprocess.run(  # noqa: S603 - our own script
            [str(ENTRYPOINT), *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        return done.stdout

    def _spawn(self, name: str, *args: str) -> None:
        log = open(self.directory / f"{name}.log", "a")  # noqa: SIM115 - closed with the run
        self.processes[name] = subprocess.Popen(  # noqa: S603 - our own script
            [str(ENTRYPOINT), *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: gunicorn's workers die with it
        )

    def start_product(self) -> None:
        self._spawn("web", "web")
        for i in range(self.workers):
            self._spawn(f"worker{i}", "worker")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.base}/accounts/login/", timeout=5)
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise AssertionError("the web server did not answer")

    def kill_product(self) -> None:
        """SIGKILL the web server and every worker, each with its whole process group: no cleanup."""
        self.kills.append(self.chunk_states())
        for name, process in list(self.processes.items()):
            if name == "standin":
                continue
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            del self.processes[name]

    def stop(self) -> None:
        self.kill_product()
        standin = self.processes.pop("standin", None)
        if standin is not None:
            standin.stdin.close()
            standin.wait(timeout=30)

    # -- the person, over HTTP

    def login(self) -> requests.Session:
        session = requests.Session()
        page = session.get(f"{self.base}/accounts/login/", timeout=30)
        response = session.post(
            f"{self.base}/accounts/login/",
            data={"username": "admin", "password": PASSWORD, "csrfmiddlewaretoken": _csrf(page.text)},
            timeout=30,
        )
        assert "Log out" in response.text or response.url.rstrip("/") != f"{self.base}/accounts/login", (
            response.text[:500]
        )
        return session

    def submit_batch(self, session: requests.Session, path: str, rows: int) -> tuple[str, float, float]:
        """Check the rows, then confirm, as on the batch page: (the batch page's URL, seconds the check
        took, seconds the confirmation took)."""
        page = session.get(self.base + path, timeout=30).text
        key = re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1)
        credential = re.search(r'name="credential"[^>]*>\s*<option value="(\d+)"', page).group(1)
        data = {
            "csrfmiddlewaretoken": _csrf(page),
            "name": "Durable",
            "credential": credential,
            "models": "gpt-4.1-mini",
            "rows_text": "dish,city\n" + "".join(f"dish {i},City {i}\n" for i in range(rows)),
            "idempotency_key": key,
            "confirm": "0",
        }
        started = time.monotonic()
        checked = session.post(self.base + path, data=data, timeout=300)
        check_seconds = time.monotonic() - started
        assert f"Submit {rows} tasks" in checked.text, checked.text[-3000:]
        data["confirm"] = "1"
        started = time.monotonic()
        confirmed = session.post(self.base + path, data=data, timeout=300, allow_redirects=False)
        confirm_seconds = time.monotonic() - started
        assert confirmed.status_code == 302, confirmed.text[-3000:]
        return self.base + confirmed.headers["Location"], check_seconds, confirm_seconds

    # -- what the databases say

    def chunk_states(self) -> Counter:
        return Counter(dict(self.db.rows("SELECT state, COUNT(*) FROM tasks_sendchunk GROUP BY state")))

    def task_statuses(self) -> Counter:
        return Counter(dict(self.db.rows("SELECT status, COUNT(*) FROM tasks_task GROUP BY status")))

    def wait(self, until, *, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if until():
                return
            time.sleep(0.2)
        raise AssertionError(
            f"{what}: not within {timeout} s; chunks {self.chunk_states()}, tasks {self.task_statuses()}"
        )

    def tasks(self) -> list[dict]:
        rows = self.db.rows("SELECT id, status, status_code, status_message, request_body FROM tasks_task")
        tasks = []
        for pk, status, code, message, body in rows:
            body = json.loads(body) if isinstance(body, str) else body
            tasks.append(
                {"id": str(pk), "status": status, "code": code, "message": message, "tag": body["tag"]}
            )
        return tasks

    def upstream_tags(self) -> Counter:
        """How many times the stand-in accepted a task with each tag (a task's tag holds its own id)."""
        with sqlite3.connect(self.directory / "standin" / "standin.sqlite3", timeout=30) as db:
            return Counter(
                tag for (tag,) in db.execute("SELECT json_extract(data, '$.tag') FROM sandbox_sandboxtask")
            )

    def upstream_task_posts(self) -> int:
        with sqlite3.connect(self.directory / "standin" / "standin.sqlite3", timeout=30) as db:
            query = (
                "SELECT COUNT(*) FROM sandbox_sandboxrequest WHERE method = 'POST' AND function = 'task_post'"
            )
            return db.execute(query).fetchone()[0]

    def reconcile(self) -> str:
        """What an operator (or the worker's job every 10 minutes) runs: tasks_ready for lost replies."""
        return self._entrypoint("manage", "reconcile")


def _csrf(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def run_with_kills(
    run: DurableRun, *, rows: int, kill_at: tuple[float, ...] = (0.25, 0.6), timeout: float = 600
):
    """Submit `rows` tasks through the batch page; kill the web server and every worker when the given
    shares of the chunks have been sent, restarting them each time; wait until every task is final.
    Returns a report (dict) of the times and what the stand-in saw."""
    report: dict = {"rows": rows}
    run.start_standin()
    path = run.setup_product()
    run.start_product()
    session = run.login()
    batch_url, report["check_seconds"], report["accept_seconds"] = run.submit_batch(session, path, rows)
    chunks = sum(run.chunk_states().values())
    report["chunks"] = chunks
    started = time.monotonic()
    for share in kill_at:

        def sent_enough(share=share) -> bool:
            states = run.chunk_states()
            return states["sent"] + states["unknown"] + states["rejected"] >= share * chunks

        run.wait(sent_enough, timeout=timeout, what=f"{share:.0%} of the chunks sent")
        report.setdefault("killed_at", []).append(round(time.monotonic() - started, 1))
        run.kill_product()
        run.start_product()
        report.setdefault("restarted_at", []).append(round(time.monotonic() - started, 1))
    session = run.login()  # the sessions survive; a new one shows the page loads for a new login too

    def sent_all() -> bool:
        states = run.chunk_states()
        return not states["planned"] and not states["sending"]

    run.wait(sent_all, timeout=timeout, what="every chunk sent")
    report["send_seconds"] = time.monotonic() - started
    run.wait(lambda: set(run.task_statuses()) <= FINAL, timeout=timeout, what="every task final")
    report["final_seconds"] = time.monotonic() - started
    report["before_reconcile"] = dict(run.task_statuses())
    report["reconcile"] = run.reconcile().strip()
    report["statuses"] = dict(run.task_statuses())
    started = time.monotonic()
    page = session.get(batch_url, timeout=60)
    report["batch_page_seconds"] = time.monotonic() - started
    report["batch_page_status"] = page.status_code
    report["batch_page_polls"] = 'hx-trigger="every 3s"' in page.text
    report["kills"] = [dict(states) for states in run.kills]
    report["task_posts"] = run.upstream_task_posts()
    return report
