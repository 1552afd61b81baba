"""Collect the static files into STATIC_ROOT unless they are already there, unchanged.

`bin/entrypoint web` runs it before gunicorn, so a checkout started outside Docker serves its CSS with
DEBUG off (the hashed, compressed copies whitenoise serves exist only after collectstatic). A stamp in
STATIC_ROOT holds a digest of every source file's path and content (and the storage backend); when it
matches, nothing is written, which also keeps the Docker image's read-only STATIC_ROOT untouched (the
image runs this at build time).
"""

import hashlib
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.finders import get_finders
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

STAMP = ".collected-from"
IGNORE = ["CVS", ".*", "*~"]  # collectstatic's own default ignore patterns


def static_sources_digest() -> str:
    digest = hashlib.sha256(settings.STORAGES["staticfiles"]["BACKEND"].encode())
    found = {}
    for finder in get_finders():
        for path, storage in finder.list(IGNORE):
            prefix = getattr(storage, "prefix", None) or ""
            found.setdefault(f"{prefix}/{path}" if prefix else path, storage.path(path))
    for name in sorted(found):
        digest.update(name.encode() + b"\0")
        with open(found[name], "rb") as source:
            digest.update(hashlib.sha256(source.read()).digest())
    return digest.hexdigest()


class Command(BaseCommand):
    help = "Run collectstatic when the static files changed since the last collection (fast otherwise)."

    def handle(self, *args, **options):
        if not settings.STATIC_ROOT:
            raise CommandError("STATIC_ROOT is not set: there is nowhere to collect the static files to.")
        stamp = Path(settings.STATIC_ROOT) / STAMP
        digest = static_sources_digest()
        if stamp.exists() and stamp.read_text().strip() == digest:
            self.stdout.write("Static files unchanged since the last collection.")
            return
        call_command("collectstatic", interactive=False, verbosity=0)
        stamp.write_text(digest + "\n")
        self.stdout.write(f"Static files collected into {settings.STATIC_ROOT}.")
