"""People: create (invite) with a one-time password, change role, deactivate; every change is audited.

A role is one of the two groups from tasks.roles. Admins are also staff, so they can open the Django
admin (what they may do there still follows their permissions).
"""

import secrets

from axes.models import AccessAttempt
from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from tasks.models import Monitor, OneTimePassword
from tasks.roles import ADMINS, MEMBERS
from tasks.spend.budgets import month_start
from tasks.team.accounts import locked_out_addresses, locked_out_usernames
from tasks.team.audit import audit_record

ROLE_NONE = "none"
ROLES = {MEMBERS: "Member", ADMINS: "Admin"}
ROLE_CHOICES = [
    (MEMBERS, "Member — submits tasks, sees all tasks, templates and tags"),
    (ADMINS, "Admin — also spend, budgets, credentials, people and the audit log"),
]


class PersonError(Exception):
    """A change to a person that is not allowed; the message is meant for the person making it."""


USERNAME_TAKEN = "Someone with this username exists."


class UsernameTaken(PersonError):
    """The username is someone else's (perhaps taken since the form checked it: two saves at once)."""

    def __init__(self, username: str):
        super().__init__(f"Someone called “{username}” already exists.")


def person_role(user) -> str:
    """The person's role group name, or ROLE_NONE."""
    names = {g.name for g in user.groups.all()}
    if ADMINS in names:
        return ADMINS
    if MEMBERS in names:
        return MEMBERS
    return ROLE_NONE


def _one_time_password() -> str:
    return secrets.token_urlsafe(12)


def one_time_password_hours() -> int:
    """How long a one-time password works (ONE_TIME_PASSWORD_HOURS), for the pages that hand one out."""
    return round(settings.ONE_TIME_PASSWORD_MAX_AGE.total_seconds() / 3600)


def _must_change(user) -> dict:
    """Mark the password just saved as one-time: its owner must replace it, and it expires."""
    now = timezone.now()
    expires = now + settings.ONE_TIME_PASSWORD_MAX_AGE
    OneTimePassword.objects.update_or_create(user=user, defaults={"issued_at": now, "expires_at": expires})
    # (Key names without "password": the audit log drops values under such keys.)
    return {"must_change": True, "one_time_until": expires.isoformat(timespec="minutes")}


def _set_role(user, role: str) -> None:
    user.groups.remove(*Group.objects.filter(name__in=[MEMBERS, ADMINS]))
    if role in (MEMBERS, ADMINS):
        user.groups.add(Group.objects.get(name=role))
    user.is_staff = role == ADMINS or user.is_superuser
    user.save(update_fields=["is_staff"])


def username_taken(username: str, *, exclude_pk: int | None = None) -> bool:
    """Whether someone else has `username` in any case ("Ann" and "ann" are one person): the rule of
    People, create_person, bootstrap and the Django admin's user form (Django's own add form agrees)."""
    others = get_user_model().objects.filter(username__iexact=username)
    if exclude_pk is not None:
        others = others.exclude(pk=exclude_pk)
    return others.exists()


def refuse_username_taken(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    """pre_save receiver on the user model: the rule of username_taken for every way a person is saved
    (createsuperuser, the shell, any command), not only the forms that check it first. Only a new person or
    a changed name is checked, so an older account whose twin differs only in case still saves; a fixture
    being loaded (raw) is a copy of a database as it was."""
    if raw or (update_fields is not None and "username" not in update_fields):
        return
    username = instance.get_username()
    if not instance._state.adding:
        stored = sender._default_manager.filter(pk=instance.pk).values_list("username", flat=True).first()
        if stored == username:
            return
    other = sender._default_manager.filter(username__iexact=username).exclude(pk=instance.pk).first()
    if other is not None:
        raise ValidationError(
            f"Someone called “{other.get_username()}” already exists: a username is one person in any case.",
            code="unique",
        )


def person_create(*, actor, username: str, email: str = "", role: str = MEMBERS) -> tuple[object, str]:
    """Create a person with a generated one-time password; return (user, password). Show it once.

    Usernames are unique whatever their case ("Ann" and "ann" are one person), which auth.User's own
    constraint does not ensure: two saves at once are made one after the other by locking the role
    groups' rows first (on SQLite the IMMEDIATE transaction is the lock), so the second sees the first's
    person and is refused."""
    if role not in ROLES:
        raise PersonError("Choose a role: Member or Admin.")
    user_model = get_user_model()
    if username_taken(username):
        raise UsernameTaken(username)
    password = _one_time_password()
    with transaction.atomic():
        list(Group.objects.select_for_update().filter(name__in=[MEMBERS, ADMINS]).order_by("pk"))
        if username_taken(username):  # saved since the check above
            raise UsernameTaken(username)
        try:
            with transaction.atomic():  # a savepoint, so the transaction survives a refused username
                user = user_model.objects.create_user(username=username, email=email, password=password)
        except (IntegrityError, ValidationError):  # ValidationError: refuse_username_taken
            if username_taken(username):
                raise UsernameTaken(username) from None
            raise
        _set_role(user, role)
        audit_record(
            actor=actor,
            action="person.create",
            obj=user,
            changes={"username": username, "email": email, "role": ROLES[role], **_must_change(user)},
        )
    return user, password


def person_set_role(*, actor, person, role: str) -> None:
    """Make `person` a Member or an Admin. Nobody removes their own Admin role (no lock-out)."""
    if role not in ROLES:
        raise PersonError("Choose a role: Member or Admin.")
    before = person_role(person)
    if before == role:
        return
    if actor is not None and person.pk == actor.pk and before == ADMINS:
        raise PersonError("You cannot remove your own Admin role; ask another Admin.")
    with transaction.atomic():
        _set_role(person, role)
        audit_record(
            actor=actor,
            action="person.role",
            obj=person,
            changes={"role": {"from": ROLES.get(before, "No role"), "to": ROLES[role]}},
        )


def person_set_active(*, actor, person, active: bool) -> None:
    """Deactivate (cannot log in; tasks and history stay) or reactivate a person."""
    if actor is not None and person.pk == actor.pk and not active:
        raise PersonError("You cannot deactivate yourself.")
    if person.is_active == active:
        return
    with transaction.atomic():
        person.is_active = active
        person.save(update_fields=["is_active"])
        audit_record(
            actor=actor,
            action="person.activate" if active else "person.deactivate",
            obj=person,
            changes={"is_active": {"from": not active, "to": active}},
        )


def active_monitors_by_owner() -> dict[int, list[str]]:
    """The names of each person's active monitors (one query): deactivating them does not stop these,
    so the Deactivate confirm names them (docs/monitors.md, "A deactivated owner")."""
    names: dict[int, list[str]] = {}
    active = Monitor.objects.filter(state=Monitor.State.ACTIVE, owner__isnull=False).order_by("name")
    for owner_id, name in active.values_list("owner_id", "name"):
        names.setdefault(owner_id, []).append(name)
    return names


def may_reset_password(*, actor, person) -> bool:
    """Whether `actor` may give `person` a one-time password: the password is shown to the actor, so a
    superuser's only to a superuser (or the command line, actor None): an Admin's Django admin follows
    their permissions, a superuser's account has them all."""
    return actor is None or actor.is_superuser or not person.is_superuser


def person_reset_password(*, actor, person) -> str:
    """Give a person a new one-time password; return it. Show it once. They must replace it at their
    next login, before it expires (ONE_TIME_PASSWORD_HOURS). Not one's own: it would end one's session
    before the password is shown (a lock-out)."""
    if actor is not None and person.pk == actor.pk:
        raise PersonError("Change your own password on the password page, not with a one-time password.")
    if not may_reset_password(actor=actor, person=person):
        raise PersonError(
            "Only a superuser can give a superuser a one-time password (on the server: "
            "manage.py changepassword NAME)."
        )
    password = _one_time_password()
    with transaction.atomic():
        person.set_password(password)
        person.save(update_fields=["password"])
        audit_record(actor=actor, action="person.reset_password", obj=person, changes=_must_change(person))
    return password


def person_change_own_password(*, person, password: str) -> None:
    """A person sets their own password (validated by the caller's form); a one-time password ends."""
    with transaction.atomic():
        had_one_time = OneTimePassword.objects.filter(user=person).exists()
        person.set_password(password)
        person.save(update_fields=["password"])
        OneTimePassword.objects.filter(user=person).delete()
        audit_record(
            actor=person,
            action="person.change_password",
            obj=person,
            changes={"replaced_one_time": had_one_time},
        )


def person_unlock(*, actor, person) -> int:
    """Lift a login lock-out on a person's username (failures from any address); returns how many
    failed logins were cleared (axes keeps one record per address, each with its count), 0 when the
    person is not locked (lifted or expired meanwhile: nothing is changed or audited). Audited."""
    username = person.get_username()
    with transaction.atomic():
        if username not in locked_out_usernames():
            return 0
        attempts = AccessAttempt.objects.filter(username=username)
        cleared = attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
        axes_reset(username=username)
        audit_record(
            actor=actor, action="person.unlock", obj=person, changes={"failed_attempts_cleared": cleared}
        )
    return cleared


def address_unlock(*, actor, ip_address: str) -> int:
    """Lift the login lock-out on an address (failures for any username from it, the accounts' failures
    from it too, as `manage.py axes_reset_ip` does); returns how many failed logins were cleared, 0 when
    the address is not locked (lifted or expired meanwhile: nothing is changed or audited). Audited."""
    with transaction.atomic():
        address = next((a for a in locked_out_addresses() if a.ip_address == ip_address), None)
        if address is None:
            return 0
        cleared = (
            AccessAttempt.objects.filter(ip_address=ip_address).aggregate(total=Sum("failures_since_start"))[
                "total"
            ]
            or 0
        )
        axes_reset(ip=ip_address)
        audit_record(
            actor=actor, action="address.unlock", obj=address, changes={"failed_attempts_cleared": cleared}
        )
    return cleared


def case_twins(persons) -> list[list[str]]:
    """Usernames among `persons` that differ only in case (“Bob”, “bob”), each group sorted: accounts
    from before the rule, which sign in only by their exact name (tasks.team.accounts.login_account)."""
    groups: dict[str, list[str]] = {}
    for person in persons:
        groups.setdefault(person.get_username().lower(), []).append(person.get_username())
    return [sorted(names) for names in groups.values() if len(names) > 1]


def people_list() -> QuerySet:
    """Everyone, with their role groups and this month's task count and spend (one query + groups)."""
    since = month_start()
    return (
        get_user_model()
        .objects.prefetch_related("groups")
        .select_related("one_time_password")
        .annotate(
            month_tasks=Count("submitted_tasks", filter=Q(submitted_tasks__created_at__gte=since)),
            month_spend=Sum("submitted_tasks__spend", filter=Q(submitted_tasks__created_at__gte=since)),
        )
        .order_by("-is_active", "username")
    )
