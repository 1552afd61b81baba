"""Views of credentials, people and the audit log (admins only; each view checks its permission itself)."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from tasks.fragments import wants_fragment
from tasks.models import Credential
from tasks.roles import ADMINS, MEMBERS
from tasks.team import people
from tasks.team.accounts import locked_out_addresses, locked_out_usernames
from tasks.team.audit import audit_change_lines, audit_entries
from tasks.team.credentials import (
    CredentialNameTaken,
    credential_create,
    credential_disable,
    credential_enable,
    credential_replace_secret,
    credential_secret_check,
    credential_set_default,
    credential_update,
    credential_verify_audited,
)
from tasks.team.forms import (
    NAME_TAKEN,
    AddressUnlockForm,
    AuditFilterForm,
    CredentialForm,
    CredentialSecretForm,
    CredentialSettingsForm,
    PersonForm,
    RoleForm,
)


def _credentials_context() -> dict:
    return {"credentials": Credential.objects.order_by("-is_active", "-is_default", "name")}


@permission_required("tasks.manage_credentials", raise_exception=True)
@require_GET
def credential_list(request):
    template = (
        "tasks/team/credentials.html#table" if wants_fragment(request) else "tasks/team/credentials.html"
    )
    return render(request, template, _credentials_context())


@permission_required("tasks.manage_credentials", raise_exception=True)
@require_http_methods(["GET", "POST"])
def credential_add(request):
    offer_unverified = False
    if request.method == "POST":
        form = CredentialForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            check = None
            if not data["save_unverified"]:
                check = credential_secret_check(
                    kind=data["kind"],
                    secret=data["secret"],
                    login=data["login"].strip(),
                    base_url=data["base_url"],
                )
                offer_unverified = _refuse_unless_accepted(form, check)
            if not form.errors:
                try:
                    credential = credential_create(
                        actor=request.user,
                        name=data["name"],
                        kind=data["kind"],
                        secret=data["secret"],
                        base_url=data["base_url"],
                        login=data["login"].strip(),
                        price_multiplier=data["price_multiplier"],
                        calls_per_minute=data["calls_per_minute"],
                        is_default=data["is_default"],
                        check=check,
                    )
                except CredentialNameTaken:  # taken since the form checked it (two saves at once)
                    form.add_error("name", NAME_TAKEN)
                else:
                    messages.success(
                        request,
                        f"Credential “{credential.name}” saved{_ends_in(credential, 'its secret ends in')}. "
                        + _check_outcome(check),
                    )
                    if request.htmx:
                        return HttpResponseClientRedirect(reverse("team:credential_list"))
                    return redirect("team:credential_list")
    else:
        form = CredentialForm()
    template = "tasks/team/credential_form.html"
    context = {"form": form, "offer_unverified": offer_unverified or form["save_unverified"].value()}
    return render(request, template + ("#form" if wants_fragment(request) else ""), context)


def _refuse_unless_accepted(form, check) -> bool:
    """Put a refused secret check on the form; return whether to offer saving without verifying."""
    if check.ok:
        return False
    if check.upstream_down:
        form.add_error(None, f"Not saved: the secret could not be checked. {check.message}")
        return True
    form.add_error("secret", f"Not saved: the upstream did not accept it. {check.message}")
    return False


def _ends_in(credential, words: str) -> str:
    """ "; <words> …WXYZ" for a long secret; nothing for one of 8 characters or fewer (never shown)."""
    return f"; {words} {credential.secret_ending}" if credential.secret_hint else ""


def _check_outcome(check) -> str:
    if check is None:
        return "It was saved without verifying: verify it once the upstream answers."
    return "The upstream accepted it."


@permission_required("tasks.manage_credentials", raise_exception=True)
@require_http_methods(["GET", "POST"])
def credential_edit(request, pk: int):
    credential = get_object_or_404(Credential, pk=pk)
    settings_form = CredentialSettingsForm(credential=credential)
    secret_form = CredentialSecretForm(credential=credential)
    offer_unverified = False
    if request.method == "POST":
        if request.POST.get("form") == "secret":
            secret_form = CredentialSecretForm(request.POST, credential=credential)
            if secret_form.is_valid():
                data = secret_form.cleaned_data
                login = (data.get("login") or "").strip() or None
                check = None
                if not data["save_unverified"]:
                    check = credential_secret_check(
                        kind=credential.kind,
                        secret=data["secret"],
                        login=login or credential.login,
                        base_url=credential.base_url,
                    )
                    offer_unverified = _refuse_unless_accepted(secret_form, check)
                if not secret_form.errors:
                    credential_replace_secret(
                        actor=request.user,
                        credential=credential,
                        secret=data["secret"],
                        login=login,
                        check=check,
                    )
                    messages.success(
                        request,
                        f"The secret of “{credential.name}” was replaced"
                        + _ends_in(credential, "it now ends in")
                        + ". "
                        + _check_outcome(check),
                    )
                    return _back_to_credentials(request)
        else:
            settings_form = CredentialSettingsForm(request.POST, credential=credential)
            if settings_form.is_valid():
                data = settings_form.cleaned_data
                try:
                    credential_update(
                        actor=request.user,
                        credential=credential,
                        name=data["name"],
                        base_url=data["base_url"],
                        login=credential.login,
                        price_multiplier=data["price_multiplier"],
                        calls_per_minute=data["calls_per_minute"],
                    )
                except CredentialNameTaken:
                    credential.refresh_from_db()
                    settings_form.add_error("name", NAME_TAKEN)
                else:
                    messages.success(request, f"“{credential.name}” saved.")
                    return _back_to_credentials(request)
    context = {
        "credential": credential,
        "settings_form": settings_form,
        "secret_form": secret_form,
        "offer_unverified": offer_unverified or secret_form["save_unverified"].value(),
    }
    template = "tasks/team/credential_edit.html"
    return render(request, template + ("#forms" if wants_fragment(request) else ""), context)


def _back_to_credentials(request):
    if request.htmx:
        return HttpResponseClientRedirect(reverse("team:credential_list"))
    return redirect("team:credential_list")


def _credential_row(request, credential: Credential):
    """htmx: the credential's updated row; otherwise back to the list (PRG)."""
    if request.htmx:
        credential.refresh_from_db()
        return render(request, "tasks/team/credentials.html#row", {"credential": credential})
    return redirect("team:credential_list")


@permission_required("tasks.manage_credentials", raise_exception=True)
@require_POST
def credential_verify(request, pk: int):
    credential = get_object_or_404(Credential, pk=pk)
    ok, message = credential_verify_audited(actor=request.user, credential=credential)
    if not request.htmx:
        (messages.success if ok else messages.error)(request, f"{credential.name}: {message}")
    return _credential_row(request, credential)


@permission_required("tasks.manage_credentials", raise_exception=True)
@require_POST
def credential_default(request, pk: int):
    credential = get_object_or_404(Credential, pk=pk)
    if not credential.is_active:
        messages.error(request, "A disabled credential cannot be the default; enable it first.")
    elif credential_set_default(actor=request.user, credential=credential):
        messages.success(request, f"“{credential.name}” is now the default credential.")
    else:
        messages.info(request, f"“{credential.name}” was already the default credential: nothing changed.")
    return _back_to_credentials(request)


@permission_required("tasks.manage_credentials", raise_exception=True)
@require_POST
def credential_disable_view(request, pk: int):
    credential = get_object_or_404(Credential, pk=pk)
    if request.POST.get("enable"):
        if credential_enable(actor=request.user, credential=credential):
            messages.success(request, f"“{credential.name}” is enabled again.")
        else:
            messages.info(request, f"“{credential.name}” was already enabled: nothing changed.")
    elif credential_disable(actor=request.user, credential=credential):
        messages.success(request, f"“{credential.name}” is disabled: it can no longer be used for new tasks.")
    else:
        messages.info(request, f"“{credential.name}” was already disabled: nothing changed.")
    return _back_to_credentials(request)


SESSION_NEW_PASSWORD = "people.one_time_password"  # noqa: S105 - a session key, not a password


@permission_required("tasks.manage_people", raise_exception=True)
@require_GET
def people_page(request):
    persons = list(people.people_list())
    locked = locked_out_usernames()
    now = timezone.now()
    monitors = people.active_monitors_by_owner()
    for person in persons:
        person.active_monitors = monitors.get(person.pk, [])
        person.role = people.person_role(person)
        person.role_label = people.ROLES.get(person.role, "No role")
        person.locked_out = person.get_username() in locked
        one_time = getattr(person, "one_time_password", None)
        person.one_time_until = one_time.expires_at if one_time else None
        person.one_time_expired = bool(one_time) and one_time.expires_at <= now
        person.may_reset_password = people.may_reset_password(actor=request.user, person=person)
    context = {
        "persons": persons,
        "case_twins": people.case_twins(persons),
        # Shown once: popped from the session as it is displayed.
        "new_password": request.session.pop(SESSION_NEW_PASSWORD, None),
        "one_time_hours": people.one_time_password_hours(),
        "role_choices": [(MEMBERS, "Member"), (ADMINS, "Admin")],
        "locked_addresses": locked_out_addresses(),
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cooloff_minutes": round(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
        if settings.AXES_COOLOFF_TIME
        else None,
    }
    template = "tasks/team/people.html#table" if wants_fragment(request) else "tasks/team/people.html"
    response = render(request, template, context)
    if context["new_password"]:
        response["Cache-Control"] = "no-store"
    return response


@permission_required("tasks.manage_people", raise_exception=True)
@require_http_methods(["GET", "POST"])
def person_create(request):
    if request.method == "POST":
        form = PersonForm(request.POST)
        if form.is_valid():
            try:
                user, password = people.person_create(
                    actor=request.user,
                    username=form.cleaned_data["username"],
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                )
            except people.UsernameTaken:  # taken since the form checked it (two saves at once)
                form.add_error("username", people.USERNAME_TAKEN)
            except people.PersonError as exc:
                form.add_error(None, str(exc))
            else:
                request.session[SESSION_NEW_PASSWORD] = {"username": user.username, "password": password}
                if request.htmx:
                    return HttpResponseClientRedirect(reverse("team:people"))
                return redirect("team:people")
    else:
        form = PersonForm()
    template = "tasks/team/person_form.html"
    context = {"form": form, "one_time_hours": people.one_time_password_hours()}
    return render(request, template + ("#form" if wants_fragment(request) else ""), context)


@permission_required("tasks.manage_people", raise_exception=True)
@require_POST
def person_role(request, pk: int):
    person = get_object_or_404(get_user_model(), pk=pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role: Member or Admin.")
    else:
        try:
            people.person_set_role(actor=request.user, person=person, role=form.cleaned_data["role"])
            messages.success(request, f"{person.username} is now {people.ROLES[form.cleaned_data['role']]}.")
        except people.PersonError as exc:
            messages.error(request, str(exc))
    return _back_to_people(request)


@permission_required("tasks.manage_people", raise_exception=True)
@require_POST
def person_active(request, pk: int):
    person = get_object_or_404(get_user_model(), pk=pk)
    active = request.POST.get("active") == "1"
    try:
        people.person_set_active(actor=request.user, person=person, active=active)
        messages.success(request, f"{person.username} is {'active again' if active else 'deactivated'}.")
    except people.PersonError as exc:
        messages.error(request, str(exc))
    return _back_to_people(request)


@permission_required("tasks.manage_people", raise_exception=True)
@require_POST
def person_password(request, pk: int):
    person = get_object_or_404(get_user_model(), pk=pk)
    try:
        password = people.person_reset_password(actor=request.user, person=person)
    except people.PersonError as exc:
        messages.error(request, str(exc))
    else:
        request.session[SESSION_NEW_PASSWORD] = {"username": person.username, "password": password}
    return _back_to_people(request)


@permission_required("tasks.manage_people", raise_exception=True)
@require_POST
def person_unlock(request, pk: int):
    person = get_object_or_404(get_user_model(), pk=pk)
    if people.person_unlock(actor=request.user, person=person):
        messages.success(request, f"{person.username} can log in again (failed attempts cleared).")
    else:
        messages.info(request, f"{person.username} is not locked (any more): nothing changed.")
    return _back_to_people(request)


@permission_required("tasks.manage_people", raise_exception=True)
@require_POST
def address_unlock(request):
    form = AddressUnlockForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a locked address under Sign-in locks.")
        return _back_to_people(request)
    ip_address = form.cleaned_data["ip_address"]
    if people.address_unlock(actor=request.user, ip_address=ip_address):
        messages.success(request, f"{ip_address} can log in again (its failed attempts cleared).")
    else:
        messages.info(request, f"{ip_address} is not locked (any more): nothing changed.")
    return _back_to_people(request)


def _back_to_people(request):
    if request.htmx:
        return HttpResponseClientRedirect(reverse("team:people"))
    return redirect("team:people")


@permission_required("tasks.view_audit", raise_exception=True)
@require_GET
def audit_log(request):
    form = AuditFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_bound and form.is_valid() else {}
    entries = audit_entries(
        actor_id=filters["actor"].pk if filters.get("actor") else None,
        action=filters.get("action") or "",
        object_type=filters.get("object_type") or "",
        date_from=filters.get("date_from"),
        date_to=filters.get("date_to"),
        q=filters.get("q") or "",
    )
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    for entry in page:
        entry.change_lines = audit_change_lines(entry)
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode(), "now": timezone.now()}
    template = "tasks/team/audit.html#entries" if wants_fragment(request) else "tasks/team/audit.html"
    return render(request, template, context)
