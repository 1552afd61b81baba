"""The request builder's forms. Every field and rule comes from the provider's table in tasks.providers.

`TaskRequestForm` is bound the same way by the submit, the live validation and the template views, so
what the page shows as an error is exactly what the submit refuses.
"""

import uuid

from django import forms
from django.core.validators import RegexValidator
from django.http import QueryDict
from django.utils.text import normalize_newlines

from tasks.builder.fields import CallbackURLField, ChainField, ChainWidget, ModelSelect, TextField
from tasks.models import Credential, ProviderModel
from tasks.prompt_templates.services import fill_text, template_variables
from tasks.submission.own_callbacks import callback_url_is_own, without_own_callbacks
from tasks.upstream import providers
from tasks.upstream.providers import Kind, ModelFlags, ProviderRules

VARIABLE_PREFIX = "var_"
MODE_LABELS = {providers.TASK_POST: "Queue (task_post)", providers.LIVE: "Live"}


# Every upstream field the builder may carry over from a task or a template.
CARRIED_OVER = frozenset(name for rules in providers.PROVIDERS.values() for name in rules.field_names)


def model_flags(model: ProviderModel | None) -> ModelFlags | None:
    if model is None:
        return None
    return ModelFlags(
        model_name=model.model_name,
        reasoning=model.reasoning,
        web_search_supported=model.web_search_supported,
        task_post_supported=model.task_post_supported,
    )


def model_label(model: ProviderModel) -> str:
    flags = []
    if model.reasoning:
        flags.append("reasoning")
    if model.web_search_supported:
        flags.append("web search")
    if not model.task_post_supported:
        flags.append("live only")
    return f"{model.model_name} ({', '.join(flags)})" if flags else model.model_name


def catalog_for(provider: str) -> list[ProviderModel]:
    """The listed models of a provider, base names before their dated versions."""
    models = ProviderModel.objects.filter(provider=provider, is_listed=True)

    def order(model):
        base = providers.model_base_name(model.model_name)
        return (base, model.model_name != base, model.model_name)

    return sorted(models, key=order)


def _range_messages(rule) -> dict[str, str]:
    """A number out of its range in the form's words ("Must be at least 16.", "At most 255 characters"),
    not Django's "Ensure this value is less than or equal to 2.0.": the range, as typed (2, not 2.0)."""
    low, high = rule.min_value, rule.max_value
    if low is not None and high is not None:
        both = f"Must be between {low:g} and {high:g}."
        return {"min_value": both, "max_value": both}
    if high is not None:
        return {"max_value": f"Must be at most {high:g}."}
    return {"min_value": f"Must be at least {low:g}."} if low is not None else {}


class TaskRequestForm(forms.Form):
    """One task for one provider: the rules table's fields, the credential and the submission token.

    `template_mode` is for saving a template: variables need no values and the length limits are left
    for submission, when the text is filled. `credential_checked` leaves the credential out, for a
    batch's tasks: the batch's own form checked its one credential, and each task's would be a query.
    """

    provider = forms.CharField(widget=forms.HiddenInput)
    credential = forms.ModelChoiceField(
        queryset=Credential.objects.none(),
        empty_label=None,
        help_text="Whose account pays: the AIsa gateway or DataForSEO directly.",
        error_messages={"required": "Choose a credential.", "invalid_choice": "Choose an active credential."},
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    template_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(
        self,
        *args,
        rules: ProviderRules,
        catalog: list[ProviderModel],
        template_mode: bool = False,
        credential_checked: bool = False,
        **kwargs,
    ):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.rules = rules
        self.catalog = {model.model_name: model for model in catalog}
        self.template_mode = template_mode
        self.body: dict = {}
        self.values: dict = {}
        if credential_checked:
            del self.fields["credential"]
        else:
            self.fields["credential"].queryset = Credential.objects.filter(is_active=True)
        if not self.is_bound:
            self.initial.setdefault("provider", rules.slug)
            self.initial.setdefault("idempotency_key", uuid.uuid4().hex)
        for rule in rules.fields:
            self.fields[rule.name] = self._field_for(rule, catalog)
        self.variables = template_variables(self._raw_texts())
        for name in self.variables:
            self.fields[VARIABLE_PREFIX + name] = TextField(
                label=f"{{{{{name}}}}}",
                required=not template_mode,
                strip=False,
                error_messages={"required": f"Fill in {{{{{name}}}}}."},
            )
        for name, field in self.fields.items():
            field.widget.attrs.setdefault("id", f"id_{name}")

    # -- construction

    def _field_for(self, rule, catalog) -> forms.Field:
        common = {"label": rule.label, "help_text": rule.help_text, "required": rule.required}
        placeholder = {} if rule.default is None else {"placeholder": f"{rule.default:g}"}
        if rule.kind == Kind.MODE:
            choices = [(mode, MODE_LABELS[mode]) for mode in rule.choices]
            if self.rules.live_only:
                choices = [(providers.LIVE, MODE_LABELS[providers.LIVE])]
            return forms.ChoiceField(
                choices=choices,
                widget=forms.RadioSelect,
                error_messages={"invalid_choice": "Choose Queue (task_post) or Live."},
                **{**common, "required": False},
            )
        if rule.name == "model_name":
            return forms.ChoiceField(
                choices=[("", "Choose a model…")] + [(m.model_name, model_label(m)) for m in catalog],
                widget=ModelSelect(),
                error_messages={
                    "required": "Choose a model.",
                    "invalid_choice": f"Not in {self.rules.label}'s catalog; refresh the models.",
                },
                **common,
            )
        if rule.kind == Kind.CHAIN:
            return ChainField(
                max_turns=int(rule.max_value), **{k: v for k, v in common.items() if k != "required"}
            )
        if rule.kind in (Kind.TEXT, Kind.LONG_TEXT):
            widget = forms.Textarea(attrs={"rows": 4 if rule.name == "user_prompt" else 2})
            if rule.kind == Kind.TEXT:
                widget = forms.TextInput()
            field = TextField(widget=widget, **common)
            if rule.required:
                field.error_messages["required"] = f"Enter a {rule.label.lower()}."
            return field
        if rule.kind == Kind.INTEGER:
            return forms.IntegerField(
                max_value=rule.max_value,
                widget=forms.NumberInput(attrs={"step": 1, **placeholder}),
                error_messages=_range_messages(rule),
                **common,
            )
        if rule.kind == Kind.NUMBER:
            return forms.FloatField(
                min_value=rule.min_value,
                max_value=rule.max_value,
                widget=forms.NumberInput(attrs={"step": "any", **placeholder}),
                error_messages=_range_messages(rule),
                **common,
            )
        if rule.kind == Kind.BOOLEAN:
            return forms.BooleanField(**{**common, "required": False})
        if rule.kind == Kind.COUNTRY:
            if rule.choices:
                return forms.ChoiceField(
                    choices=[("", "Any country")] + [(code, code) for code in rule.choices],
                    error_messages={"invalid_choice": "Not one of the countries this provider supports."},
                    **common,
                )
            return forms.CharField(
                max_length=2,
                validators=[RegexValidator(r"^[A-Za-z]{2}$", "Enter a two-letter country code, e.g. FR.")],
                widget=forms.TextInput(attrs={"placeholder": "e.g. FR", "size": 3}),
                **common,
            )
        if rule.kind == Kind.URL:
            return CallbackURLField(
                assume_scheme="https", widget=forms.URLInput(attrs={"placeholder": "https://…"}), **common
            )
        raise ValueError(f"No form field for {rule.kind}")

    def _raw_texts(self) -> dict:
        """The texts that may hold variables, as typed (bound) or prefilled (unbound)."""
        if self.is_bound:
            return {
                "user_prompt": self.data.get("user_prompt", ""),
                "system_message": self.data.get("system_message", ""),
                "message_chain": ChainWidget().value_from_datadict(self.data, None, "message_chain"),
            }
        return {name: self.initial.get(name) for name in ("user_prompt", "system_message", "message_chain")}

    # -- reading

    @property
    def chosen_model(self) -> ProviderModel | None:
        name = self.data.get("model_name") if self.is_bound else self.initial.get("model_name")
        return self.catalog.get(name or "")

    def chain_turns(self) -> list[dict]:
        """The chain as the page should draw it: what was typed (bound; line breaks as LF, as counted)
        or prefilled."""
        if self.is_bound:
            turns = ChainWidget().value_from_datadict(self.data, None, "message_chain")
            return [{**turn, "message": normalize_newlines(str(turn["message"]))} for turn in turns]
        return list(self.initial.get("message_chain") or [])

    def variable_values(self) -> dict[str, str]:
        source = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        values = {name: source.get(VARIABLE_PREFIX + name) for name in self.variables}
        return {name: value for name, value in values.items() if value}  # unfilled ones stay {{name}}

    @property
    def mode(self) -> str:
        """task_post or live, as chosen (the provider's default when nothing valid is)."""
        if self.values:
            return providers.chosen_mode(self.rules, self.values)
        raw = self.data.get("mode") if self.is_bound else self.initial.get("mode")
        return providers.chosen_mode(self.rules, {"mode": raw})

    def error_codes(self, name: str) -> set[str]:
        return {error.code for error in self.errors.as_data().get(name, [])}

    # -- validation

    def clean_tag(self):
        tag = self.cleaned_data.get("tag") or ""
        problem = providers.tag_problem(tag)
        if problem:
            raise forms.ValidationError(problem, code="tag_characters")
        return tag

    def _person_callback(self, name: str) -> str:
        # The product's own URL (another task's, e.g. pasted) is dropped: each task gets its own.
        url = self.cleaned_data.get(name) or ""
        return "" if callback_url_is_own(url) else url

    def clean_pingback_url(self):
        return self._person_callback("pingback_url")

    def clean_postback_url(self):
        return self._person_callback("postback_url")

    def clean_web_search_country_iso_code(self):
        return (self.cleaned_data.get("web_search_country_iso_code") or "").upper()

    def clean_provider(self):
        provider = self.cleaned_data["provider"]
        if provider != self.rules.slug:
            raise forms.ValidationError("Unknown provider.", code="invalid")
        return provider

    def clean(self):
        cleaned = super().clean()
        values = {name: cleaned[name] for name in self.rules.field_names if name in cleaned}
        self.values = values
        variables = self.variable_values()
        for name, message in self._length_problems(values, variables):
            self._error(name, message, "max_length")
        self.body = self._build_body(values, variables)
        model = model_flags(self.catalog.get(values.get("model_name") or ""))
        for violation in providers.cross_field_violations(self.rules, values, model):
            for name in violation.fields:
                self._error(name, violation.message, "cross_field")
        return cleaned

    def _length_problems(self, values: dict, variables: dict) -> list[tuple[str, str]]:
        """(field, message) per text over its limit: limits apply to the text as it will be sent,
        variables filled."""
        problems = []
        for name in ("user_prompt", "system_message", "tag"):
            rule = self.rules.field(name)
            text = values.get(name)
            if not text or rule is None or rule.max_length is None:
                continue
            if self.template_mode and template_variables({"user_prompt": text}):
                continue
            filled = fill_text(text, variables) if name != "tag" else text
            if len(filled) > rule.max_length:
                extra = " with the variables filled in" if filled != text else ""
                problems.append((name, f"At most {rule.max_length} characters ({len(filled)}{extra})."))
        chain_rule = self.rules.field("message_chain")
        for i, turn in enumerate(values.get("message_chain") or [], start=1):
            if self.template_mode and template_variables({"user_prompt": turn["message"]}):
                continue
            filled = fill_text(turn["message"], variables)
            if len(filled) > chain_rule.max_length:
                problems.append(
                    (
                        "message_chain",
                        f"Turn {i}: at most {chain_rule.max_length} characters ({len(filled)}).",
                    )
                )
        return problems

    def body_with(self, variable_values: dict[str, str]) -> tuple[dict, list[tuple[str, str]]]:
        """For a valid form: the body with other values of its variables, and what is wrong with them
        ((field, message) pairs), as a form bound to the same data with those values would find. Only the
        variables' own fields, the length limits and the body depend on the values, so a batch checks
        its first row with the whole form and each further row with this (tasks/prompt_templates)."""
        if not self.is_valid():
            raise ValueError("body_with needs a valid form")
        problems = []
        variables = {}
        for name in self.variables:
            key = VARIABLE_PREFIX + name
            try:
                value = self.fields[key].clean(variable_values.get(name))
            except forms.ValidationError as exc:
                problems += [(key, message) for message in exc.messages]
                continue
            if value:
                variables[name] = value
        problems += self._length_problems(self.values, variables)
        return self._build_body(self.values, variables), problems

    def _error(self, name: str, message: str, code: str) -> None:
        if name not in self.fields:
            name = None
        if name and message in self.errors.get(name, []):
            return
        self.add_error(name, forms.ValidationError(message, code=code))

    def _build_body(self, values: dict, variables: dict) -> dict:
        """The upstream task object: only the fields that are set, in the rules' order and types."""
        body = {}
        for rule in self.rules.fields:
            value = values.get(rule.name)
            if providers.is_blank(value) or not rule.in_body:
                continue
            if rule.name in ("user_prompt", "system_message") and not self.template_mode:
                value = fill_text(value, variables)
            if rule.kind == Kind.CHAIN and not self.template_mode:
                value = [{**turn, "message": fill_text(turn["message"], variables)} for turn in value]
            body[rule.name] = value
        return body

    def template_fields(self) -> dict:
        """What a template version stores: the values in upstream names, variables unfilled."""
        return {name: value for name, value in self.values.items() if not providers.is_blank(value)}


def initial_from_body(rules: ProviderRules, body: dict) -> dict:
    """Form initial values from an upstream task object (a task's request, a template version)."""
    initial = {}
    for name, value in without_own_callbacks(body or {}).items():
        if name not in rules.field_names:
            continue
        if name == "tag" and isinstance(value, str) and value.startswith(providers.OWN_TAG_PREFIX):
            continue  # the product's own tag, not the person's
        initial[name] = value
    return initial


def initial_from_query(rules: ProviderRules, query) -> dict:
    """Values carried over in a query string (the provider switch sends the form along)."""
    initial = {}
    for rule in rules.fields:
        if rule.kind == Kind.CHAIN:
            turns = ChainWidget().value_from_datadict(query, None, rule.name)
            if turns:
                initial[rule.name] = turns
        elif rule.kind == Kind.BOOLEAN:
            if query.get(rule.name) in ("on", "true", "1"):
                initial[rule.name] = True
        elif rule.kind == Kind.COUNTRY and query.get(rule.name):
            # Another provider's box takes "fr" (sent as FR); a provider's list of countries holds FR.
            initial[rule.name] = query.get(rule.name).strip().upper()
        elif query.get(rule.name):
            initial[rule.name] = query.get(rule.name)
    for key in query:
        if key.startswith(VARIABLE_PREFIX):
            initial[key] = query.get(key)
    for key in ("credential", "template_version"):
        if query.get(key):
            initial[key] = query.get(key)
    return without_own_callbacks(initial)


def form_data_from_fields(rules: ProviderRules, fields: dict, *, credential=None) -> QueryDict:
    """Form data for upstream-named `fields`: prefilled and planned forms bind like posted ones."""
    data = QueryDict(mutable=True)
    for rule in rules.fields:
        value = fields.get(rule.name)
        if providers.is_blank(value):
            continue
        if rule.kind == Kind.CHAIN:
            for i, turn in enumerate(value):
                data[f"chain-{i}-role"] = turn.get("role", "user")
                data[f"chain-{i}-message"] = turn.get("message", "")
        elif rule.kind == Kind.BOOLEAN:
            data[rule.name] = "on"
        else:
            data[rule.name] = str(value)
    for key, value in fields.items():
        if key.startswith(VARIABLE_PREFIX):
            data[key] = value
    data["mode"] = providers.chosen_mode(rules, fields)
    data["credential"] = str(getattr(credential, "pk", credential) or "")
    data["provider"] = rules.slug
    data["idempotency_key"] = fields.get("idempotency_key") or uuid.uuid4().hex
    if fields.get("template_version"):
        data["template_version"] = str(fields["template_version"])
    return data
