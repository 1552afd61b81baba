"""Forms of the credentials, people and audit pages."""

from decimal import Decimal
from urllib.parse import urlsplit

from django import forms
from django.contrib.auth import get_user_model

from tasks.form_fields import DayField
from tasks.models import Credential
from tasks.roles import ADMINS, MEMBERS
from tasks.team import people
from tasks.team.audit import audit_choices

# What the upstream client accepts (tasks.upstream.clients.LLMResponsesClient), checked at the field: a
# credential it refuses could neither be verified nor send anything.


def validate_base_url(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme and parts.scheme not in ("http", "https"):  # no scheme: not a URL, Django says so
        raise forms.ValidationError("Give an http:// or https:// URL.")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise forms.ValidationError("Give the base URL alone: no login, password, query or fragment.")


def secret_problem(kind: str, secret: str) -> str:
    """Why `secret` cannot be a credential of `kind`'s secret, or ""."""
    if kind == Credential.Kind.AISA and not all(0x21 <= ord(char) <= 0x7E for char in secret):
        return "An AIsa key is one word of plain characters: paste the key alone (no “Bearer”, no spaces)."
    return ""


def login_problem(login: str) -> str:
    return "A DataForSEO login cannot contain “:”." if ":" in login else ""


NAME_TAKEN = "A credential with this name exists."


class CredentialForm(forms.Form):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=Credential.Kind.choices, widget=forms.RadioSelect, initial="aisa")
    login = forms.CharField(
        max_length=200, required=False, help_text="DataForSEO direct only: the API login."
    )
    secret = forms.CharField(
        label="Secret",
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="The AIsa API key, or the DataForSEO API password. Stored encrypted; never shown again.",
    )
    base_url = forms.URLField(
        max_length=300,
        required=False,
        label="Base URL",
        help_text="Leave empty for the provider's public URL.",
        validators=[validate_base_url],
    )
    price_multiplier = forms.DecimalField(
        initial=Decimal("1"),
        min_value=Decimal("0.001"),
        max_digits=6,
        decimal_places=3,
        help_text="What this route charges relative to DataForSEO's list price (AIsa may bill 2×).",
    )
    calls_per_minute = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=100_000,
        label="Calls per minute",
        help_text="The most task_post calls a minute with this key, shared by every worker. Empty: 2,000 "
        "for DataForSEO direct; for AIsa, set the key's own limit if it has one.",
    )
    is_default = forms.BooleanField(required=False, label="Make this the default credential")
    save_unverified = forms.BooleanField(
        required=False,
        label="Save without verifying",
        help_text="The upstream did not answer, so the secret could not be checked. Tick this, type the "
        "secret again and save; verify it from the list once the upstream is back.",
    )

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if Credential.objects.filter(name__iexact=name).exists():
            raise forms.ValidationError(NAME_TAKEN)
        return name

    def clean(self):
        data = super().clean()
        login = (data.get("login") or "").strip()
        if data.get("kind") == Credential.Kind.DATAFORSEO:
            if not login:
                self.add_error("login", "DataForSEO direct needs the API login.")
            elif login_problem(login):
                self.add_error("login", login_problem(login))
        if data.get("secret") and secret_problem(data.get("kind"), data["secret"]):
            self.add_error("secret", secret_problem(data["kind"], data["secret"]))
        return data


class CredentialSettingsForm(forms.Form):
    name = forms.CharField(max_length=100)
    base_url = CredentialForm.base_fields["base_url"]
    price_multiplier = CredentialForm.base_fields["price_multiplier"]
    calls_per_minute = CredentialForm.base_fields["calls_per_minute"]

    def __init__(self, *args, credential: Credential, **kwargs):
        self.credential = credential
        kwargs.setdefault(
            "initial",
            {
                "name": credential.name,
                "base_url": credential.base_url,
                "price_multiplier": credential.price_multiplier,
                "calls_per_minute": credential.calls_per_minute,
            },
        )
        super().__init__(*args, **kwargs)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if Credential.objects.filter(name__iexact=name).exclude(pk=self.credential.pk).exists():
            raise forms.ValidationError(NAME_TAKEN)
        return name


class CredentialSecretForm(forms.Form):
    login = forms.CharField(
        max_length=200, required=False, help_text="DataForSEO direct only: the API login."
    )
    secret = forms.CharField(
        label="New secret",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    save_unverified = CredentialForm.base_fields["save_unverified"]

    def __init__(self, *args, credential: Credential, **kwargs):
        self.credential = credential
        kwargs.setdefault("initial", {"login": credential.login})
        super().__init__(*args, **kwargs)
        if credential.kind != Credential.Kind.DATAFORSEO:
            del self.fields["login"]

    def clean(self):
        data = super().clean()
        if "login" in self.fields:
            login = (data.get("login") or "").strip()
            if not login:
                self.add_error("login", "DataForSEO direct needs the API login.")
            elif login_problem(login):
                self.add_error("login", login_problem(login))
        if data.get("secret") and secret_problem(self.credential.kind, data["secret"]):
            self.add_error("secret", secret_problem(self.credential.kind, data["secret"]))
        return data


class PersonForm(forms.Form):
    username = forms.RegexField(
        regex=r"^[\w.@+-]+\Z",
        max_length=150,
        error_messages={"invalid": "Letters, digits and @ . + - _ only."},
    )
    email = forms.EmailField(required=False)
    role = forms.ChoiceField(choices=people.ROLE_CHOICES, widget=forms.RadioSelect, initial=MEMBERS)

    def clean_username(self):
        username = self.cleaned_data["username"]
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(people.USERNAME_TAKEN)
        return username


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=[(MEMBERS, "Member"), (ADMINS, "Admin")])


class AddressUnlockForm(forms.Form):
    # What axes stored as the address (tasks.team.accounts.client_ip), compared as text, not parsed.
    ip_address = forms.CharField(max_length=255)


class AuditFilterForm(forms.Form):
    actor = forms.ModelChoiceField(
        queryset=get_user_model().objects.order_by("username"), required=False, empty_label="Anyone"
    )
    action = forms.ChoiceField(required=False)
    object_type = forms.ChoiceField(required=False, label="Object")
    date_from = DayField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = DayField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    q = forms.CharField(required=False, label="Search", max_length=100)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        actions, types = audit_choices()
        self.fields["action"].choices = [("", "Any action"), *((a, a) for a in actions)]
        self.fields["object_type"].choices = [("", "Any object"), *((t, t) for t in types)]

    def clean(self):
        data = super().clean()
        date_from, date_to = data.get("date_from"), data.get("date_to")
        if date_from and date_to and date_from > date_to:
            self.add_error("date_to", "“To” is before “From”.")  # the task list's words
        return data
