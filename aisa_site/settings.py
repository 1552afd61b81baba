"""Settings, read from the environment.

Production (DEBUG off) refuses to start without SECRET_KEY and CREDENTIAL_KEYS, with a weak SECRET_KEY, or
with the stand-in upstream (SANDBOX_ENABLED) mounted. `make run` turns DEBUG on
and mounts the stand-in upstream; secrets for that local run are generated once into var/.
"""

import json
import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("DATA_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _local_dev_secrets() -> dict[str, str]:
    """Secrets for a DEBUG run, generated once and kept in var/ (never committed)."""
    path = DATA_DIR / "dev-secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    from cryptography.fernet import Fernet

    values = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CREDENTIAL_KEYS": Fernet.generate_key().decode(),
    }
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


DEBUG = env_bool("DEBUG")

SECRET_KEY = os.environ.get("SECRET_KEY", "")
CREDENTIAL_KEYS = env_list("CREDENTIAL_KEYS")
if DEBUG and (not SECRET_KEY or not CREDENTIAL_KEYS):
    _dev = _local_dev_secrets()
    SECRET_KEY = SECRET_KEY or _dev["SECRET_KEY"]
    CREDENTIAL_KEYS = CREDENTIAL_KEYS or [_dev["CREDENTIAL_KEYS"]]
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
if not DEBUG and (
    len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH
    or len(set(SECRET_KEY)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
    or SECRET_KEY.startswith(SECRET_KEY_INSECURE_PREFIX)
):
    # Django's own deployment check (security.W009) only warns; a guessable key forges sessions.
    raise ImproperlyConfigured(
        f"SECRET_KEY is too weak for production: use at least {SECRET_KEY_MIN_LENGTH} random characters "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )
if not CREDENTIAL_KEYS:
    raise ImproperlyConfigured(
        "CREDENTIAL_KEYS must be set when DEBUG is off (comma-separated Fernet keys; "
        "generate one with: python -c 'from cryptography.fernet import Fernet; "
        "print(Fernet.generate_key().decode())')."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# Where the upstream can reach our callback endpoints; empty means no callbacks, poll only.
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "").rstrip("/")

# The local stand-in of the upstream API, mounted under /sandbox/. On for `make run` and tests.
SANDBOX_ENABLED = env_bool("SANDBOX_ENABLED", default=DEBUG)
if SANDBOX_ENABLED and not DEBUG:
    raise ImproperlyConfigured(
        "SANDBOX_ENABLED must be off when DEBUG is off: the stand-in upstream answers anyone who calls "
        "/sandbox/ with made-up results. Unset it (or set SANDBOX_ENABLED=0) in production."
    )
# Seconds before a task posted to the stand-in is ready.
SANDBOX_TASK_DELAY = float(os.environ.get("SANDBOX_TASK_DELAY", "3"))
# How long the stand-in takes to answer a live call (the upstream takes seconds, up to 120 s).
SANDBOX_LIVE_DELAY = float(os.environ.get("SANDBOX_LIVE_DELAY", "2"))
# How long its reply to a task_post is on its way (the round trip to a real upstream; 0 answers at once).
SANDBOX_POST_DELAY = float(os.environ.get("SANDBOX_POST_DELAY", "0"))
# --- Stand-in upstream: accounts and switches (read by the sandbox app only; see docs/sandbox.md). ---
# Bearer keys its AIsa-style routes accept (comma-separated).
SANDBOX_API_KEYS = env_list("SANDBOX_API_KEYS", "sandbox-key")
# The HTTP Basic login its DataForSEO-style routes accept.
SANDBOX_LOGIN = os.environ.get("SANDBOX_LOGIN", "sandbox@example.com")
SANDBOX_PASSWORD = os.environ.get("SANDBOX_PASSWORD", "sandbox-password")
# Whether finished tasks call their pingback_url/postback_url.
SANDBOX_DELIVER_CALLBACKS = env_bool("SANDBOX_DELIVER_CALLBACKS", default=True)
# Made-up starting balance (USD) that /v3/appendix/user_data reports, before charges.
SANDBOX_BALANCE = float(os.environ.get("SANDBOX_BALANCE", "100"))
# --- end of stand-in settings ---

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_tasks_db",
    "axes",
    "tasks",
]
if SANDBOX_ENABLED:
    INSTALLED_APPS.append("sandbox")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # 400 for a NUL in the path, query or a posted form: no field takes one (PostgreSQL cannot).
    "tasks.middleware.RefuseNulMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "tasks.prompt_templates.uploads.OversizedFormMiddleware",
    "tasks.team.accounts.PasswordChangeRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Vary: HX-Request on every response: any page may answer htmx with a fragment of itself.
    "tasks.fragments.VaryOnHtmxMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the login page with its message.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "aisa_site.urls"
WSGI_APPLICATION = "aisa_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tasks.context_processors.navigation",
            ],
        },
    },
]
# Plain widgets built in Python with the templates' HTML (tasks/widget_rendering.py): a filter form's
# <select>s otherwise render one template per option.
FORM_RENDERER = "tasks.widget_rendering.PythonWidgetRenderer"


def _database_config() -> dict:
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{DATA_DIR / 'db.sqlite3'}"
    config = dj_database_url.parse(url, conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            # WAL lets the worker write while pages read; IMMEDIATE takes the write lock up front,
            # so concurrent writers queue on `timeout` instead of failing mid-transaction.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    return config


DATABASES = {"default": _database_config()}
# Covering indexes (INCLUDE) serve PostgreSQL; SQLite builds the same index without the extra columns.
SILENCED_SYSTEM_CHECKS = ["models.W040"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TASKS = {
    "default": {
        "BACKEND": os.environ.get("TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out login before any password is hashed.
    "tasks.team.accounts.LoginThrottleBackend",
    # Django's password check, for the username in any case ("bob" logs in as "Bob").
    "tasks.team.accounts.CaseInsensitiveModelBackend",
]
# Login throttling (django-axes): after LOGIN_FAILURE_LIMIT failures for a username, or from an address,
# that username (from anywhere) and that address (for any username) are locked for LOGIN_COOLOFF_MINUTES
# (0: until an Admin unlocks them on the People page or with manage.py axes_reset_username/axes_reset_ip).
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
_cooloff_minutes = float(os.environ.get("LOGIN_COOLOFF_MINUTES", "30"))
AXES_COOLOFF_TIME = timedelta(minutes=_cooloff_minutes) if _cooloff_minutes > 0 else None
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_LOCKOUT_CALLABLE = "tasks.team.accounts.lockout_response"
AXES_CLIENT_IP_CALLABLE = "tasks.team.accounts.client_ip"
AXES_USERNAME_CALLABLE = "tasks.team.accounts.login_username"
AXES_VERBOSE = False  # no start-up banner; failure logs name only the username and address
# Proxies in front of the app that append to X-Forwarded-For (0: the client is REMOTE_ADDR).
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
# A password an Admin sets (invite, new one-time password) works this long, and only to set one's own.
ONE_TIME_PASSWORD_MAX_AGE = timedelta(hours=float(os.environ.get("ONE_TIME_PASSWORD_HOURS", "72")))

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "history:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# `make run` serves static files straight from static/ (no collectstatic); production serves the
# hashed, compressed copies collected at build time.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# Security headers. No inline scripts or styles anywhere: everything is a file or carries the nonce.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=False)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0"))

# Uploads: a batch's CSV file larger than this is refused at the field without being read
# (tasks/prompt_templates/uploads.py).
BATCH_UPLOAD_MAX_BYTES = int(float(os.environ.get("BATCH_UPLOAD_MAX_MB", "5")) * 1024 * 1024)
# A checked upload's rows come back in the page's rows field, and Submit posts them as text: as UTF-8 with
# CRLF line ends, up to twice the file's bytes, with the form's other fields. Django reads at most this.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * BATCH_UPLOAD_MAX_BYTES + 64 * 1024
FILE_UPLOAD_HANDLERS = [
    "tasks.prompt_templates.uploads.CappedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# Upstream HTTP timeouts (seconds): connect, read.
UPSTREAM_CONNECT_TIMEOUT = float(os.environ.get("UPSTREAM_CONNECT_TIMEOUT", "5"))
UPSTREAM_READ_TIMEOUT = float(os.environ.get("UPSTREAM_READ_TIMEOUT", "60"))
# How long a worker owns a chunk it claimed (tasks/submission/chunks.py); empty: computed from the
# timeouts above (the longest a POST can take, plus a margin). Shorter only for tests.
SENDING_LEASE_SECONDS = float(os.environ.get("SENDING_LEASE_SECONDS") or 0) or None
# The same for a poll of a task (tasks/submission/collection.py): a poll whose worker was killed holds
# its task this long before another chain polls it. Shorter only for tests.
COLLECT_LEASE_SECONDS = float(os.environ.get("COLLECT_LEASE_SECONDS") or 0) or None
# Live calls one worker keeps in flight at once (tasks/submission/live.py); the upstream allows 30 per
# provider per account, which the claims enforce across workers whatever this says.
LIVE_SENDING_THREADS = int(os.environ.get("LIVE_SENDING_THREADS") or 10)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Monitors' alerts (docs/monitors.md) ---
# Django's mailers; the console backend (alerts printed in the log) unless EMAIL_BACKEND is set, with
# EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD and EMAIL_USE_TLS for SMTP.
_EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
MAILERS = {"default": {"BACKEND": _EMAIL_BACKEND, "OPTIONS": {}}}
if _EMAIL_BACKEND.endswith("smtp.EmailBackend"):
    MAILERS["default"]["OPTIONS"] = {
        "host": os.environ.get("EMAIL_HOST", "localhost"),
        "port": int(os.environ.get("EMAIL_PORT", "25")),
        "username": os.environ.get("EMAIL_HOST_USER", ""),
        "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
        "use_tls": env_bool("EMAIL_USE_TLS"),
    }
if "EMAIL_BACKEND" not in os.environ:
    # The console backend is the documented default (alert emails in the log) until one is chosen.
    SILENCED_SYSTEM_CHECKS = [*SILENCED_SYSTEM_CHECKS, "mail.E001"]
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "alerts@localhost")
# Webhooks on private or internal addresses are refused (SSRF) unless this is on: local runs and tests only.
ALERT_WEBHOOKS_ALLOW_PRIVATE = env_bool("ALERT_WEBHOOKS_ALLOW_PRIVATE", default=False)
