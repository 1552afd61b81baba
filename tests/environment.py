"""The environment of a fresh machine or container, for tests that start the app in a subprocess."""

import os

# Everything the settings and bin/entrypoint read; subprocesses start from an environment without them.
APP_VARIABLES = {
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "DEBUG",
    "SECRET_KEY",
    "CREDENTIAL_KEYS",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "DATABASE_URL",
    "PUBLIC_BASE_URL",
    "SANDBOX_ENABLED",
    "SANDBOX_TASK_DELAY",
    "SANDBOX_DELIVER_CALLBACKS",
    "TASKS_BACKEND",
    "DATA_DIR",
    "STATIC_ROOT",
    "SECURE_COOKIES",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "PORT",
    "BIND",
    "WEB_CONCURRENCY",
    "GUNICORN_THREADS",
    "BATCH_UPLOAD_MAX_MB",
    "LOGIN_FAILURE_LIMIT",
    "LOGIN_COOLOFF_MINUTES",
    "TRUSTED_PROXY_COUNT",
    "ONE_TIME_PASSWORD_HOURS",
}


def environment_without_app_variables() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name not in APP_VARIABLES}
