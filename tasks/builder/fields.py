"""The request builder's own form fields: text whose line breaks are LF, callback URLs the upstream can call,
the model picker and the message chain (its turns posted as chain-<n>-role / chain-<n>-message pairs)."""

import re

from django import forms
from django.core.validators import URLValidator
from django.utils.text import normalize_newlines

from tasks.upstream import providers

CHAIN_KEY = re.compile(r"^chain-(\d+)-(role|message)$")


class TextField(forms.CharField):
    """A CharField whose line breaks are LF: browsers post a textarea's as CRLF, and a prompt is counted
    and sent as the person sees it (the 500-character limit counts each line break once)."""

    def to_python(self, value):
        value = super().to_python(value)
        return normalize_newlines(value) if isinstance(value, str) else value


class CallbackURLField(forms.URLField):
    """A URL the upstream calls when the task is done: http or https only (Django's URLField also takes
    ftp:// and ftps://, which the upstream refuses with 40501)."""

    default_validators = [URLValidator(schemes=["http", "https"])]
    default_error_messages = {
        "invalid": "Enter an http:// or https:// address: the upstream calls it when the task is done."
    }


class ModelSelect(forms.Select):
    """A model picker whose options that cannot be queued are shown but not selectable."""

    def __init__(self, *args, disabled_values=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.disabled_values = set(disabled_values)

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if value in self.disabled_values:
            option["attrs"]["disabled"] = True
        return option


class ChainWidget(forms.Widget):
    """The message chain arrives as chain-<n>-role / chain-<n>-message pairs; the template draws them."""

    def value_from_datadict(self, data, files, name):
        turns: dict[int, dict] = {}
        for key in data:
            match = CHAIN_KEY.match(key)
            if match:
                turns.setdefault(int(match.group(1)), {})[match.group(2)] = data.get(key)
        return [
            {"role": turn.get("role") or "user", "message": turn.get("message") or ""}
            for _, turn in sorted(turns.items())
        ]

    def value_omitted_from_data(self, data, files, name):
        return False


class ChainField(forms.Field):
    widget = ChainWidget

    def __init__(self, *, max_turns: int, **kwargs):
        self.max_turns = max_turns
        super().__init__(required=False, **kwargs)

    def to_python(self, value):
        if not value:
            return []
        if not isinstance(value, list):
            raise forms.ValidationError("Enter the earlier turns as role and message pairs.", code="invalid")
        roles = dict(providers.CHAIN_ROLES)
        turns = []
        for turn in value:
            message = normalize_newlines(str(turn.get("message") or "")).strip()
            if "\x00" in message:
                raise forms.ValidationError("Null characters are not allowed.", code="null_characters")
            if not message:
                continue  # an empty row (e.g. just added) is not a turn
            role = turn.get("role")
            if role not in roles:
                raise forms.ValidationError("A turn's role is either user or AI.", code="invalid")
            turns.append({"role": role, "message": message})
        return turns

    def validate(self, value):
        super().validate(value)
        if len(value) > self.max_turns:
            raise forms.ValidationError(
                f"At most {self.max_turns} earlier turns ({len(value)} given).", code="max_turns"
            )
