"""CI's PostgreSQL step: under CI=true a server that does not answer fails the run, it is not skipped."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.environment import environment_without_app_variables

SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "postgres-ready"
CLOSED = "postgres://postgres@127.0.0.1:1/test"  # nothing listens on port 1


def _ready(url: str, *, ci: bool) -> subprocess.CompletedProcess:
    env = {**environment_without_app_variables(), "PYTHON": sys.executable, "PG_START_WAIT": "0"}
    env.pop("CI", None)
    if ci:
        env["CI"] = "true"
    return subprocess.run(  # noqa: S603 - the project's own script
        [str(SCRIPT), url], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_under_ci_an_unreachable_postgresql_fails_the_run():
    result = _ready(CLOSED, ci=True)

    assert result.returncode == 1
    assert "FAILED: PostgreSQL is required under CI=true" in result.stderr


def test_outside_ci_an_unreachable_postgresql_is_a_warning_not_a_pass():
    result = _ready(CLOSED, ci=False)

    assert result.returncode == 2
    assert "NOT RUN" in result.stdout


@pytest.mark.postgres
def test_a_reachable_postgresql_is_used(settings):
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("this run is on SQLite; the PostgreSQL run covers it")
    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"

    assert _ready(url, ci=True).returncode == 0
