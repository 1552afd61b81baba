"""Forms of the prompt templates and batches pages."""

import uuid

from django import forms

from tasks.builder.fields import TextField
from tasks.builder.forms import catalog_for, model_label
from tasks.models import Credential, PromptTemplate, ProviderModel
from tasks.prompt_templates.services import NAME_MAX_LENGTH, template_variables
from tasks.prompt_templates.uploads import upload_rows
from tasks.upstream import providers


class TemplateDetailsForm(forms.Form):
    """A template's name and description. Whether the name is free (unique ignoring case, as for a new
    template) is for prompt_templates.template_rename to say; the view shows a refusal beside the field."""

    name = forms.CharField(max_length=NAME_MAX_LENGTH)
    description = TextField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional: what the template is for. Shown on its page and in the list.",
    )

    def __init__(self, *args, template: PromptTemplate, **kwargs):
        kwargs.setdefault("initial", {"name": template.name, "description": template.description})
        super().__init__(*args, **kwargs)


def model_checklist(first_provider: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """The models of every provider, grouped by provider (`first_provider` first), one entry per model (a
    model that cannot be queued runs live, and says so): a dated version listed beside its base name is
    shown as a hint on the base name's entry (what the upstream runs now), not as an entry of its own."""
    order = [first_provider, *(slug for slug in providers.PROVIDERS if slug != first_provider)]
    groups = []
    for slug in order:
        entries: dict[str, list[ProviderModel]] = {}
        for model in catalog_for(slug):  # base names before their dated versions
            entries.setdefault(providers.model_base_name(model.model_name), []).append(model)
        choices = []
        for shown, *dated in entries.values():
            hint = f" — now {dated[-1].model_name}" if dated else ""
            choices.append((shown.model_name, model_label(shown) + hint))
        if choices:
            groups.append((providers.provider_rules(slug).label, choices))
    return groups


class BatchForm(forms.Form):
    """A batch of one template: which models, which rows of variables, whose credential."""

    name = forms.CharField(max_length=200, required=False, help_text="Optional, to find the batch later.")
    credential = forms.ModelChoiceField(queryset=Credential.objects.none(), empty_label=None)
    models = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        help_text="Each row runs once per model; the four providers may be mixed. A model that cannot be "
        "queued (and every Perplexity model) is sent live.",
        error_messages={"required": "Choose at least one model."},
    )
    rows_text = TextField(
        label="Rows (CSV)",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text="First line: the variable names. Then one line per task. Separated by commas, "
        "semicolons or tabs.",
    )
    rows_file = forms.FileField(label="…or upload a CSV file", required=False)
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, template, version, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["credential"].queryset = Credential.objects.filter(is_active=True)
        default = self.fields["credential"].queryset.order_by("-is_default", "name").first()
        self.fields["models"].choices = model_checklist(template.provider)
        self.variables = template_variables(version.fields)
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", uuid.uuid4().hex)
            self.initial.setdefault("credential", default)
            if version.fields.get("model_name"):
                self.initial.setdefault("models", [self._listed_name(version.fields["model_name"])])
            if self.variables:
                self.initial.setdefault("rows_text", ",".join(self.variables) + "\n")

    def _listed_name(self, model_name: str) -> str:
        """The checklist's entry for a model: its base name when a dated version is listed under it."""
        base = providers.model_base_name(model_name)
        listed = {value for _group, choices in self.fields["models"].choices for value, _label in choices}
        return base if base in listed else model_name

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("rows_file")
        if upload and (text := upload_rows(self, upload)) is not None:  # size cap, NUL bytes, UTF-8
            cleaned["rows_text"] = text
        return cleaned
