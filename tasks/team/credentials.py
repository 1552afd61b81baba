"""Credential services: add, replace the secret, set the default, disable, enable, verify; each is audited.

Audit entries carry the secret's keyed fingerprint and (for a secret longer than 8 characters) its last four
characters, never the secret itself (tasks.crypto.fingerprint, tasks.crypto.hint).
"""

from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from tasks.models import Credential
from tasks.team.audit import audit_changes, audit_record

_AUDITED_FIELDS = (
    "name",
    "kind",
    "base_url",
    "login",
    "price_multiplier",
    "calls_per_minute",
    "is_default",
    "is_active",
)


def _snapshot(credential: Credential) -> dict:
    return {field: getattr(credential, field) for field in _AUDITED_FIELDS}


@dataclass(frozen=True)
class SecretCheck:
    """What the upstream said of a secret before it was saved."""

    ok: bool
    message: str
    upstream_down: bool = False  # it could not say: no answer, or it limits the rate; try again later


def credential_secret_check(*, kind: str, secret: str, login: str = "", base_url: str = "") -> SecretCheck:
    """Try a secret (and login) with the free `models` endpoint before it is saved; nothing is stored.

    A refusal (wrong key, wrong login, a base URL that answers something else) comes with the upstream's
    message; an upstream that does not answer is `upstream_down`, for which the person may choose to
    save without verifying.
    """
    from tasks.crypto import CredentialKeyError
    from tasks.upstream import clients
    from tasks.upstream.outcomes import UpstreamError, UpstreamRateLimited, UpstreamUnavailable

    candidate = Credential(
        kind=kind, base_url=base_url, login=login if kind == Credential.Kind.DATAFORSEO else ""
    )
    try:
        candidate.set_secret(secret)
        with clients.client_for(candidate) as client:
            count = len(client.models("chat_gpt"))
    except (UpstreamUnavailable, UpstreamRateLimited) as exc:
        return SecretCheck(ok=False, message=str(exc), upstream_down=True)
    except (UpstreamError, CredentialKeyError) as exc:
        return SecretCheck(ok=False, message=str(exc))
    return SecretCheck(ok=True, message=f"OK: the models endpoint listed {count} ChatGPT models.")


def _record_check(credential: Credential, check: SecretCheck | None) -> None:
    """The check made before saving is the credential's last verification; none leaves it unverified."""
    ok = check is not None and check.ok
    credential.last_verified_at = timezone.now() if ok else None
    credential.last_verification_ok = True if ok else None
    credential.last_verification_message = check.message[:500] if ok else ""


def credential_create(
    *,
    actor,
    name: str,
    kind: str,
    secret: str,
    base_url: str = "",
    login: str = "",
    price_multiplier: Decimal = Decimal("1"),
    calls_per_minute: int | None = None,
    is_default: bool = False,
    check: SecretCheck | None = None,
) -> Credential:
    """Store a new credential, its secret encrypted; the first active credential becomes the default.

    `check`: what `credential_secret_check` said before saving (None: saved without verifying).
    """
    with transaction.atomic():
        credential = Credential(
            name=name,
            kind=kind,
            base_url=base_url,
            login=login if kind == Credential.Kind.DATAFORSEO else "",
            price_multiplier=price_multiplier,
            calls_per_minute=calls_per_minute,
            created_by=actor if actor is not None and actor.pk else None,
        )
        credential.set_secret(secret)
        if not Credential.objects.filter(is_default=True).exists():
            is_default = True
        if is_default:
            Credential.objects.filter(is_default=True).update(is_default=False)
        credential.is_default = is_default
        _record_check(credential, check)
        _save_named(credential)
        audit_record(
            actor=actor,
            action="credential.create",
            obj=credential,
            changes={
                **_snapshot(credential),
                "secret_fingerprint": credential.secret_fingerprint,
                "secret_hint": credential.secret_hint,
                "verified": credential.last_verification_ok is True,
            },
        )
    return credential


class CredentialNameTaken(Exception):
    """Another credential took this name since the form checked it (two saves at once)."""


def _save_named(credential: Credential) -> None:
    try:
        with transaction.atomic():  # a savepoint, so the transaction survives a refused name
            credential.save()
    except IntegrityError:
        others = Credential.objects.filter(name__iexact=credential.name)
        if credential.pk is not None:
            others = others.exclude(pk=credential.pk)
        if others.exists():
            raise CredentialNameTaken(credential.name) from None
        raise


def credential_update(
    *,
    actor,
    credential: Credential,
    name: str,
    base_url: str,
    login: str,
    price_multiplier: Decimal,
    calls_per_minute: int | None = None,
) -> Credential:
    """Change a credential's settings (not its secret)."""
    with transaction.atomic():
        before = _snapshot(credential)
        credential.name = name
        credential.base_url = base_url
        credential.login = login if credential.kind == Credential.Kind.DATAFORSEO else ""
        credential.price_multiplier = price_multiplier
        credential.calls_per_minute = calls_per_minute
        _save_named(credential)
        changes = audit_changes(before, _snapshot(credential))
        if changes:
            audit_record(actor=actor, action="credential.update", obj=credential, changes=changes)
    return credential


def credential_replace_secret(
    *, actor, credential: Credential, secret: str, login: str | None = None, check: SecretCheck | None = None
) -> None:
    """Replace the stored secret (and the DataForSEO login); the last verification no longer applies:
    `check` (what `credential_secret_check` said of the new one) takes its place, or none."""
    with transaction.atomic():
        before = {"secret_fingerprint": credential.secret_fingerprint, "secret_hint": credential.secret_hint}
        old_login = credential.login
        credential.set_secret(secret)
        if login is not None and credential.kind == Credential.Kind.DATAFORSEO:
            credential.login = login
        _record_check(credential, check)
        credential.save()
        changes = audit_changes(
            before,
            {"secret_fingerprint": credential.secret_fingerprint, "secret_hint": credential.secret_hint},
        )
        if credential.login != old_login:
            changes["login"] = {"from": old_login, "to": credential.login}
        changes["verified"] = credential.last_verification_ok is True
        audit_record(actor=actor, action="credential.replace_secret", obj=credential, changes=changes)


def credential_set_default(*, actor, credential: Credential) -> bool:
    """Make `credential` the one the builder preselects; it must be active. False, and nothing
    recorded, when it already was the default (a second click, or another admin first)."""
    if not credential.is_active:
        raise ValueError("A disabled credential cannot be the default; enable it first.")
    with transaction.atomic():
        defaults = list(Credential.objects.select_for_update().filter(is_default=True))
        if [c.pk for c in defaults] == [credential.pk]:
            credential.is_default = True
            return False
        previous = [c for c in defaults if c.pk != credential.pk]
        Credential.objects.filter(pk__in=[c.pk for c in previous]).update(is_default=False)
        Credential.objects.filter(pk=credential.pk).update(is_default=True)
        credential.is_default = True
        audit_record(
            actor=actor,
            action="credential.set_default",
            obj=credential,
            changes={
                "is_default": {"from": False, "to": True},
                "previous_default": [c.name for c in previous],
            },
        )
        return True


def credential_disable(*, actor, credential: Credential) -> bool:
    """Stop a credential being used for new submissions; its tasks and history stay.

    False, and nothing recorded, when it was already disabled (a second click, or another admin first):
    the audit log only ever records a change that happened."""
    with transaction.atomic():
        row = Credential.objects.select_for_update().filter(pk=credential.pk, is_active=True).first()
        if row is None:
            credential.is_active = False
            return False
        Credential.objects.filter(pk=credential.pk).update(is_active=False, is_default=False)
        credential.is_active = False
        credential.is_default = False
        changes = {"is_active": {"from": True, "to": False}}
        if row.is_default:
            changes["is_default"] = {"from": True, "to": False}
        audit_record(actor=actor, action="credential.disable", obj=credential, changes=changes)
        return True


def credential_enable(*, actor, credential: Credential) -> bool:
    """False, and nothing recorded, when it was already enabled."""
    with transaction.atomic():
        if not Credential.objects.filter(pk=credential.pk, is_active=False).update(is_active=True):
            credential.is_active = True
            return False
        credential.is_active = True
        audit_record(
            actor=actor,
            action="credential.enable",
            obj=credential,
            changes={"is_active": {"from": False, "to": True}},
        )
        return True


def credential_verify_audited(*, actor, credential: Credential) -> tuple[bool, str]:
    """Verify with the free models endpoint (tasks.team.checks.credential_verify) and audit the outcome."""
    from tasks.team.checks import credential_verify

    ok, message = credential_verify(credential=credential)
    audit_record(
        actor=actor,
        action="credential.verify",
        obj=credential,
        changes={"ok": ok, "message": message[:300], "secret_fingerprint": credential.secret_fingerprint},
    )
    return ok, message


# --- Reading ----------------------------------------------------------------------------------------


BALANCE_MAX = Decimal("1e12")  # an account balance at or beyond this (in USD) is not believed


def credential_balances() -> list[dict]:
    """The account balance of every active DataForSEO-direct credential (appendix/user_data).

    AIsa keys have no account endpoint and are skipped. An upstream problem becomes a short message
    in the row instead of an exception, so a slow or failing upstream never breaks the spend page.
    """
    from tasks.crypto import CredentialKeyError
    from tasks.upstream.clients import client_for
    from tasks.upstream.outcomes import UpstreamError

    balances = []
    for credential in Credential.objects.filter(is_active=True, kind=Credential.Kind.DATAFORSEO).order_by(
        "name"
    ):
        row = {"credential": credential, "balance": None, "error": ""}
        try:
            with client_for(credential) as client:  # its HTTP session closed, whatever the answer
                data = client.user_data()
        except (UpstreamError, CredentialKeyError, ValueError) as exc:  # ValueError: a client it cannot make
            row["error"] = str(exc)[:200] or "The upstream did not answer."
            balances.append(row)
            continue
        try:
            balance = Decimal(str(data["money"]["balance"]))
            if not (balance.is_finite() and abs(balance) < BALANCE_MAX):
                raise ValueError("not an amount")  # NaN, Infinity, 1e30: nothing a page can show
            row["balance"] = balance
        except (KeyError, TypeError, ValueError, ArithmeticError):
            row["error"] = "The account data holds no balance."
        balances.append(row)
    return balances
