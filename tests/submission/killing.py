"""Run code in a separate Python process on the test database and kill it (SIGKILL) at a chosen step: the
function named by `at` is replaced by one that kills the process, so everything before it has run and
committed, nothing after it has. No hook in the product's code: the step is patched from outside."""

import os
import signal
import sys
from pathlib import Path

from django.db import connection

from tests import preloaded

ROOT = Path(__file__).resolve().parents[2]

_PRELUDE = """
import importlib, os, signal, sys
import django
django.setup()
module_name, attribute = sys.argv[1].rsplit(":", 1)
setattr(importlib.import_module(module_name), attribute, lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL))
exec(sys.argv[2])
raise SystemExit(3)  # the step was never reached
"""


def _database_url() -> str:
    config = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{config['NAME']}"
    user = config.get("USER") or ""
    password = f":{config['PASSWORD']}" if config.get("PASSWORD") else ""
    host, port = config.get("HOST") or "127.0.0.1", config.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{config['NAME']}"


def run_killed_at(at: str, code: str, *, timeout: float = 60) -> None:
    """Run `code` (with Django set up) in a subprocess that is killed when it calls `at` ("module:name");
    asserts that it was killed there."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": _database_url()}
    process = preloaded.run(
        [sys.executable, "-c", _PRELUDE, at, code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr[-3000:]
