"""Test settings: the production settings module with a test environment around it.

DATABASE_URL from the environment is kept (CI runs the suite again on PostgreSQL).
"""

import os

from cryptography.fernet import Fernet

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-" + "0123456789abcdefghij")
os.environ.setdefault("CREDENTIAL_KEYS", Fernet.generate_key().decode())
# The production settings refuse the stand-in with DEBUG off; the tests mount it after loading them.
_SANDBOX = os.environ.get("SANDBOX_ENABLED", "1").strip().lower() in {"1", "true", "yes", "on"}
os.environ["SANDBOX_ENABLED"] = "0"
os.environ.setdefault("SANDBOX_TASK_DELAY", "0.5")
os.environ.setdefault("SANDBOX_LIVE_DELAY", "0.05")
os.environ.setdefault("ALLOWED_HOSTS", "*")
os.environ.setdefault("SECURE_COOKIES", "0")
os.environ.setdefault("TASKS_BACKEND", "django.tasks.backends.dummy.DummyBackend")

from aisa_site.settings import *  # noqa: E402, F403 - after the environment is set

os.environ["SANDBOX_ENABLED"] = "1" if _SANDBOX else "0"
SANDBOX_ENABLED = _SANDBOX
if SANDBOX_ENABLED:
    INSTALLED_APPS.append("sandbox")  # noqa: F405

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STATIC_ROOT = None
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405

# A file database, not :memory:, so live-server threads (the stand-in upstream answering over real HTTP)
# get their own connections and SQLite's WAL + IMMEDIATE locking is exercised as in production.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # One file per test run, so runs side by side (and xdist workers, which add a suffix) never collide.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-{os.getpid()}.sqlite3")}  # noqa: F405
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}  # noqa: F405
