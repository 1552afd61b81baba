"""Shared set-up for the builder benchmarks: a throwaway database and settings, the stand-in's catalog."""

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django(database_url: str = "", *, migrate: bool = True) -> Path:
    """Point Django at a fresh SQLite database in a temp dir (or at `database_url`), migrate it, and
    return the dir."""
    data_dir = Path(tempfile.mkdtemp(prefix="bench-builder-"))
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))  # bench_settings
    from cryptography.fernet import Fernet

    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench_settings",
            "DATA_DIR": str(data_dir),
            "DATABASE_URL": database_url,
            "DEBUG": "0",
            "SECRET_KEY": "bench-secret-key-" + "0123456789abcdefghijklmnopqrstuvwxyz",
            "CREDENTIAL_KEYS": Fernet.generate_key().decode(),
            "SANDBOX_TASK_DELAY": "3600",
            "ALLOWED_HOSTS": "*",
            "SECURE_COOKIES": "0",
            "LOG_LEVEL": "WARNING",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    if migrate:
        call_command("migrate", verbosity=0)
    return data_dir


def make_catalog() -> None:
    """The stand-in's catalog as ProviderModel rows (the same helper the builder's tests use)."""
    from tests.factories import make_catalog as make_test_catalog

    make_test_catalog()


def make_member():
    from django.contrib.auth.models import Group, User

    from tasks.roles import MEMBERS

    user = User.objects.create_user("bench", password="bench-password")
    user.groups.add(Group.objects.get(name=MEMBERS))
    return user


def make_credential(base_url: str):
    from tasks.models import Credential

    credential = Credential(name="Stand-in", kind=Credential.Kind.AISA, base_url=base_url, is_default=True)
    credential.set_secret("sandbox-key")
    credential.save()
    return credential


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
