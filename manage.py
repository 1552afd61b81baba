#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import base64
import os
import secrets
import sys

# Commands that only read the code (models, migrations, system checks) use no secret, so in a bare
# checkout they get throwaway ones instead of the settings' refusal; every other command, the web
# server and the worker included, still refuses to start without the real ones (aisa_site/settings.py).
CODE_ONLY_COMMANDS = {"check", "makemigrations", "help"}


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aisa_site.settings")
    if len(sys.argv) > 1 and sys.argv[1] in CODE_ONLY_COMMANDS:
        os.environ["SECRET_KEY"] = os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50)
        os.environ["CREDENTIAL_KEYS"] = os.environ.get("CREDENTIAL_KEYS") or (
            base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        )
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
