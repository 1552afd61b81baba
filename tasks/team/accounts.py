"""Logging in: usernames in any case, throttling (django-axes), one-time passwords that must be replaced,
the login form.

- Usernames: `login_account` finds the account what was typed means ("bob" → "Bob" when only "Bob"
  exists), once per login request; `CaseInsensitiveModelBackend` checks its password, and axes counts
  failures under its name (`username_canonical`), so "BOB", "bob" and "Bob" are one account's failures,
  one lock and one Unlock button.

- Throttling: `LoginThrottleBackend` (axes' backend, first in AUTHENTICATION_BACKENDS) refuses a locked-out
  login before any password is hashed; `lockout_response` answers it with the login page and a message;
  `client_ip` is the address axes counts failures for; `locked_out_usernames` and `locked_out_addresses`
  tell the People page.
- One-time passwords (tasks.models.OneTimePassword): a person logged in with one can only reach the
  password-change page and log out until they choose their own (`PasswordChangeRequiredMiddleware`,
  from a mark put in the session at login); an expired one no longer logs in. Any password change
  removes the row (`clear_one_time_password_on_change`, a post_save receiver), so `manage.py
  changepassword` works as expected too.
"""

from dataclasses import dataclass
from datetime import datetime

from axes.backends import AxesStandaloneBackend
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, logout
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.core.exceptions import ValidationError
from django.db.models import Case, Max, Sum, When
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from django_htmx.http import HttpResponseClientRedirect

from tasks.models import OneTimePassword

SESSION_CHANGE_BY = "accounts.one_time_password_expires"
# What a person who must change their password may still open.
OPEN_WHILE_CHANGE_REQUIRED = ("password_change", "password_change_done", "logout", "login")


# --- Usernames ------------------------------------------------------------------------------------


LOGIN_ACCOUNTS = "_login_accounts"  # request attribute: the accounts this login request looked up


def login_account(request, username: str):
    """The account `username` means: the one with exactly that name, else the one person who has it in
    another case, else None (no one has it, or two older accounts differ only in case and it is neither's
    exact name: never one of them at random). One read of the people table per login request: axes'
    lock check, the password check and axes' failure count all ask, so the answer is kept on the request."""
    accounts = getattr(request, LOGIN_ACCOUNTS, None)
    if accounts is None:
        accounts = {}
        if request is not None:
            setattr(request, LOGIN_ACCOUNTS, accounts)
    if username not in accounts:
        user_model = get_user_model()
        field = user_model.USERNAME_FIELD
        exact_first = Case(When(**{field: username}, then=0), default=1)
        found = list(
            user_model._default_manager.filter(**{f"{field}__iexact": username}).order_by(exact_first)[:2]
        )
        exact = bool(found) and found[0].get_username() == username
        accounts[username] = found[0] if exact or len(found) == 1 else None
    return accounts[username]


def username_canonical(username: str, request=None) -> str:
    """The stored username that `username` means (login_account's), else as typed."""
    account = login_account(request, username)
    return username if account is None else account.get_username()


class CaseInsensitiveModelBackend(ModelBackend):
    """Django's password check for the username in any case (createsuperuser and People refuse a second
    "BOB", but an account may be "Bob" while the person types "bob"), on the account login_account read."""

    @sensitive_variables("password")
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        user = login_account(request, str(username))
        if user is None:
            get_user_model()().set_password(password)  # as long as a wrong password: no name is told apart
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None


# --- Throttling -----------------------------------------------------------------------------------


class LoginThrottleBackend(AxesStandaloneBackend):
    """axes' lock check for logins from a request (the login pages); code that authenticates without one
    (a management command, a test's Client.login) has no address or page to throttle."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def client_ip(request) -> str:
    """The address a login comes from: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies the address
    the outermost trusted proxy saw (its entry in X-Forwarded-For; entries before it can be forged)."""
    count = settings.TRUSTED_PROXY_COUNT
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if count > 0 and forwarded:
        return forwarded[-min(count, len(forwarded))]
    return request.META.get("REMOTE_ADDR", "")


# AccessAttempt.username is a 255-character column (PostgreSQL refuses longer); no account name is longer.
USERNAME_LIMIT = 255


def login_username(request, credentials: dict | None = None) -> str | None:
    """The username axes counts failures for: the account's stored name whatever the case typed (one lock
    per account, not one per spelling), cut to what its table holds: a 5,000-character name typed at the
    login page is a failed login like any other, not a database error."""
    username = (credentials or getattr(request, "POST", {})).get("username")
    return None if username is None else username_canonical(str(username)[:USERNAME_LIMIT], request)


def lockout_message(*, account: bool) -> str:
    """Why the login was refused and who can lift it: an account's lock has a button on People, an
    address's lock (many usernames tried from one address) is lifted on the server."""
    cooloff = settings.AXES_COOLOFF_TIME
    until = f"for {round(cooloff.total_seconds() / 60)} minutes" if cooloff else "until an Admin unlocks it"
    if account:
        return (
            f"Too many failed logins for this account: logging in is locked {until}. "
            "An Admin can unlock it on the People page."
        )
    return (
        f"Too many failed logins from this address: logging in from it is locked {until}. "
        "An Admin can unlock it under Sign-in locks on the People page."
    )


def lockout_response(request, original_response=None, credentials=None):
    """The login page again, with the username kept and the lock explained (HTTP 429)."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    form = LoginForm(request, initial={"username": username})
    account = login_username(request, credentials) in locked_out_usernames()
    context = {
        "form": form,
        "lockout_message": lockout_message(account=account),
        "next": request.POST.get("next", ""),
    }
    return render(request, "registration/login.html", context, status=429)


def _recent_attempts():
    """axes' failure records that still count (within the cool-off, as axes reads them)."""
    attempts = AccessAttempt.objects.all()
    if settings.AXES_COOLOFF_TIME:
        attempts = attempts.filter(attempt_time__gte=timezone.now() - settings.AXES_COOLOFF_TIME)
    return attempts


def locked_out_usernames() -> set[str]:
    """Usernames whose recent failures reached the limit (what the People page offers to unlock)."""
    attempts = _recent_attempts().exclude(username__isnull=True)
    totals = attempts.values("username").annotate(failures=Sum("failures_since_start"))
    return {row["username"] for row in totals if row["failures"] >= settings.AXES_FAILURE_LIMIT}


@dataclass(frozen=True)
class Address:
    """An address locked out of logging in (for any username), as People's Sign-in locks list it."""

    ip_address: str
    failures: int
    last_failure: datetime

    def __str__(self) -> str:
        return self.ip_address


def locked_out_addresses() -> list[Address]:
    """Addresses whose recent failures reached the limit, latest failure first. Not the usernames tried:
    a password typed into the username box would be among them."""
    attempts = _recent_attempts().exclude(ip_address__isnull=True)
    totals = attempts.values("ip_address").annotate(
        failures=Sum("failures_since_start"), last_failure=Max("attempt_time")
    )
    locked = [Address(**row) for row in totals if row["failures"] >= settings.AXES_FAILURE_LIMIT]
    return sorted(locked, key=lambda address: address.last_failure, reverse=True)


# --- One-time passwords ---------------------------------------------------------------------------


class LoginForm(AuthenticationForm):
    """Django's login form; an expired one-time password is refused with its own message."""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        record = OneTimePassword.objects.filter(user=user).first()
        if record is not None and record.expires_at <= timezone.now():
            raise ValidationError(
                "This one-time password has expired. Ask an Admin for a new one.", code="expired"
            )


class OwnPasswordChangeForm(PasswordChangeForm):
    """Django's password change; the new password must differ from the current one, so a one-time
    password an Admin handed out cannot be kept as one's own. After logging in with one, the current
    password is asked for by that name (the person never had an "old" one)."""

    def __init__(self, user, *args, one_time: bool = False, **kwargs):
        super().__init__(user, *args, **kwargs)
        if one_time:
            self.fields["old_password"].label = "One-time password"
            self.error_messages = {
                **self.error_messages,
                "password_incorrect": "The one-time password you were given was entered incorrectly. "
                "Please enter it again.",
            }

    def clean(self):
        data = super().clean()
        new = data.get("new_password2")
        if new and new == data.get("old_password"):
            self.add_error("new_password2", "Choose a new password, not the one you have now.")
        return data


def mark_change_required(sender, request, user, **kwargs) -> None:
    """user_logged_in receiver: remember in the session that this login used a one-time password."""
    record = OneTimePassword.objects.filter(user=user).first()
    if record is not None and request is not None and hasattr(request, "session"):
        request.session[SESSION_CHANGE_BY] = record.expires_at.isoformat()


def clear_one_time_password_on_change(sender, instance, created, **kwargs) -> None:
    """post_save receiver on the user model: a password set by any route ends the one-time password
    (the service that issues one writes its row after saving the password)."""
    if not created and getattr(instance, "_password", None) is not None:
        OneTimePassword.objects.filter(user_id=instance.pk).delete()


class PasswordChangeRequiredMiddleware:
    """Someone logged in with a one-time password reaches only the password-change page (and logging
    out) until they set their own; once it has expired, they are logged out."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        expires = request.session.get(SESSION_CHANGE_BY) if hasattr(request, "session") else None
        if expires is None or not request.user.is_authenticated:
            return self.get_response(request)
        if datetime.fromisoformat(expires) <= timezone.now():
            logout(request)
            messages.error(request, "Your one-time password has expired. Ask an Admin for a new one.")
            return self._redirect(request, reverse("login"))
        try:
            name = resolve(request.path_info).url_name
        except Resolver404:
            name = None
        if name in OPEN_WHILE_CHANGE_REQUIRED:
            return self.get_response(request)
        messages.info(
            request, "Choose your own password to continue: the one you were given works only once."
        )
        return self._redirect(request, reverse("password_change"))

    @staticmethod
    def _redirect(request, url: str):
        return HttpResponseClientRedirect(url) if request.headers.get("HX-Request") else redirect(url)
