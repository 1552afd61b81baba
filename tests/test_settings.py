"""Production settings: refuse to start half-configured, default to safe, send the security headers."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests import preloaded
from tests.environment import environment_without_app_variables

# Each child reads the production settings with DATA_DIR in the test's tmp_path: a SQLite file of its own.
pytestmark = pytest.mark.own_database

BASE_DIR = Path(__file__).resolve().parent.parent
PRODUCTION_SECRET_KEY = "a-production-secret-key-for-this-test-only-7Qm2xV9pLr4TzW8k"


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = environment_without_app_variables()
    env.update(
        DJANGO_SETTINGS_MODULE="aisa_site.settings",
        DATA_DIR=str(tmp_path),
        STATIC_ROOT=str(tmp_path / "static"),
        SECRET_KEY=PRODUCTION_SECRET_KEY,
        CREDENTIAL_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="dashboard.example.com",
    )
    env.update(overrides)
    return {name: value for name, value in env.items() if value is not None}


def run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    """Our own interpreter with `argv`, in the repository's root."""
    return subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, *argv], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`python -c CODE` forked from the tests' preloaded Python: the settings are read in the child only."""
    return preloaded.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("missing", ["SECRET_KEY", "CREDENTIAL_KEYS"])
def test_production_settings_refuse_to_start_without_a_secret(tmp_path, missing):
    env = production_env(tmp_path)
    del env[missing]

    result = run_python("import django; django.setup()", env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{missing} must be set when DEBUG is off" in result.stderr


@pytest.mark.parametrize("weak", ["12345", "a" * 80, "django-insecure-" + "Zx9" * 20])
def test_production_settings_refuse_to_start_with_a_weak_secret_key(tmp_path, weak):
    result = run_python("import django; django.setup()", production_env(tmp_path, SECRET_KEY=weak))

    assert result.returncode != 0
    assert "SECRET_KEY is too weak for production: use at least 50 random characters" in result.stderr
    assert weak not in result.stderr


def test_production_settings_refuse_to_start_with_the_sandbox(tmp_path):
    result = run_python("import django; django.setup()", production_env(tmp_path, SANDBOX_ENABLED="1"))

    assert result.returncode != 0
    assert "SANDBOX_ENABLED must be off when DEBUG is off" in result.stderr


def test_development_settings_still_take_any_key_and_the_sandbox(tmp_path):
    result = run_python(
        "import django; django.setup(); from django.conf import settings; print(settings.SANDBOX_ENABLED)",
        production_env(tmp_path, DEBUG="1", SECRET_KEY="dev", SANDBOX_ENABLED="1"),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True"]


@pytest.mark.parametrize(
    ("variable", "value", "setting", "expected"),
    [
        ("BATCH_UPLOAD_MAX_MB", "2", "BATCH_UPLOAD_MAX_BYTES", "2097152"),
        ("LOGIN_FAILURE_LIMIT", "7", "AXES_FAILURE_LIMIT", "7"),
        ("LOGIN_COOLOFF_MINUTES", "15", "AXES_COOLOFF_TIME", "0:15:00"),
        ("LOGIN_COOLOFF_MINUTES", "0", "AXES_COOLOFF_TIME", "None"),
        ("TRUSTED_PROXY_COUNT", "2", "TRUSTED_PROXY_COUNT", "2"),
        ("ONE_TIME_PASSWORD_HOURS", "24", "ONE_TIME_PASSWORD_MAX_AGE", "1 day, 0:00:00"),
    ],
)
def test_safety_limits_are_read_from_the_environment(tmp_path, variable, value, setting, expected):
    result = run_python(
        f"import django; django.setup(); from django.conf import settings; print(settings.{setting})",
        production_env(tmp_path, **{variable: value}),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected


def test_debug_is_off_unless_asked_for(tmp_path):
    result = run_python(
        """
        import django
        django.setup()
        from django.conf import settings
        print(settings.DEBUG, settings.SANDBOX_ENABLED, settings.SESSION_COOKIE_SECURE)
        """,
        production_env(tmp_path),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "True"]


def test_the_sandbox_is_not_mounted_when_disabled(tmp_path):
    result = run_python(
        """
        import django
        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.test import Client
        from django.test.utils import setup_test_environment

        call_command("migrate", verbosity=0)
        call_command("collectstatic", verbosity=0, interactive=False)  # as the image does at build
        setup_test_environment()
        response = Client().get("/sandbox/apis/v1/dataforseo/ai_optimization/chat_gpt/llm_responses/models")
        print(response.status_code, "sandbox" in settings.INSTALLED_APPS)
        """,
        production_env(tmp_path, SANDBOX_ENABLED="0", ALLOWED_HOSTS="testserver"),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["404", "False"]


def test_pages_carry_the_security_headers(client):
    response = client.get("/accounts/login/")

    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "'nonce-" in csp
    assert "script-src 'self' 'nonce-" in csp
    assert "'unsafe-inline'" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/accounts/login/?next=/")


def test_code_only_commands_run_in_a_bare_checkout_and_the_others_still_refuse(tmp_path):
    env = production_env(tmp_path, SECRET_KEY=None, CREDENTIAL_KEYS=None)

    checked = run(env, "manage.py", "makemigrations", "--check", "--dry-run")
    assert checked.returncode == 0, checked.stderr
    assert "No changes detected" in checked.stdout

    migrated = run(env, "manage.py", "migrate")
    assert migrated.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in migrated.stderr
