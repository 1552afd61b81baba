"""Forms of the visibility pages."""

from django import forms

from tasks.form_fields import DayField
from tasks.models import Brand, BrandSet, Provider
from tasks.spend import periods
from tasks.spend.forms import SpendFilterForm
from tasks.visibility.extraction import domain_of, fold_term, parse_aliases, pattern_problem
from tasks.visibility.selectors import FIGURES

MAX_TAGS = 500
MAX_TEST_TEXT = 100_000
# The figures counted per brand (the others, "answers" and "ours", need none).
BRAND_FIGURES = ("mentioned", "first_paragraph", "cited", "position")
# The figures of the whole set, and the answers each shows (the answers page's heading says the same).
SET_FIGURES = {
    "answers": "every answer",
    "ours": "the answers mentioning our brands",
    "cited_ours": "the answers citing our domains",
    "cited_competitors": "the answers citing competitors' domains",
    "cited_others": "the answers citing domains of no brand",
}
PROVIDER_KEYS = ", ".join(Provider.values[:-1]) + f" or {Provider.values[-1]}"


class VisibilityFilterForm(SpendFilterForm):
    """The spend page's period and granularity (a tag's page picks its brand set with `TagSetForm`)."""


class TagSetForm(forms.Form):
    """Which of the brand sets reading a tag its page shows: the one asked for, else the first (named as
    ignored when the one asked for does not read the tag)."""

    set = forms.CharField(required=False, label="Brand set")

    def __init__(self, *args, sets: list[BrandSet], **kwargs):
        self.sets = sets
        super().__init__(*args, **kwargs)

    def clean_set(self) -> BrandSet | None:
        wanted = self.cleaned_data["set"]
        if not wanted or not self.sets:
            return None  # without a set, the page says that no set reads the tag
        chosen = next((s for s in self.sets if str(s.pk) == wanted), None)
        if chosen is None:
            raise forms.ValidationError(
                f"No brand set with this id reads this tag; showing “{self.sets[0].name}”."
            )
        return chosen

    def chosen_set(self) -> BrandSet | None:
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        return data.get("set") or (self.sets[0] if self.sets else None)


def _lines(value: str) -> list[str]:
    return list(dict.fromkeys(line.strip() for line in (value or "").splitlines() if line.strip()))


class BrandSetForm(forms.Form):
    name = forms.CharField(max_length=150)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)
    tags = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="The tags whose answers this set reads, one a line (a monitor's tasks carry its tag).",
    )

    def __init__(self, *args, instance: BrandSet | None = None, **kwargs):
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": instance.name,
                "description": instance.description,
                "tags": "\n".join(instance.tag_links.values_list("tag", flat=True)),
            }
        super().__init__(*args, **kwargs)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        others = BrandSet.objects.exclude(pk=self.instance.pk) if self.instance else BrandSet.objects.all()
        if others.filter(name=name).exists():
            raise forms.ValidationError("Another brand set has this name.")
        return name

    def clean_tags(self):
        tags = _lines(self.cleaned_data["tags"])
        if len(tags) > MAX_TAGS:
            raise forms.ValidationError(f"At most {MAX_TAGS} tags.")
        too_long = [t for t in tags if len(t) > 255]
        if too_long:
            raise forms.ValidationError("A tag has at most 255 characters.")
        return tags


class BrandForm(forms.Form):
    name = forms.CharField(max_length=100)
    is_ours = forms.BooleanField(required=False, label="Ours (not a competitor)")
    aliases = forms.CharField(
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Other names, one a line; start a line with re: for a regular expression. "
        "Matching ignores case and accents, on whole words.",
    )
    domains = forms.CharField(
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Its websites, one a line (acme.com; subdomains count).",
    )

    def __init__(self, *args, brand_set: BrandSet, instance: Brand | None = None, **kwargs):
        self.brand_set, self.instance = brand_set, instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": instance.name,
                "is_ours": instance.is_ours,
                "aliases": instance.aliases,
                "domains": instance.domains,
            }
        super().__init__(*args, **kwargs)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not parse_aliases(name, "")[0]:
            raise forms.ValidationError("Give a name with at least one letter or digit.")
        others = self.brand_set.brands.exclude(pk=self.instance.pk if self.instance else None)
        if others.filter(name=name).exists():
            raise forms.ValidationError("This set already has a brand with this name.")
        return name

    def clean_aliases(self):
        value = self.cleaned_data["aliases"]
        _, patterns = parse_aliases("x", value)
        problems = [p for p in (pattern_problem(pattern) for pattern in patterns) if p]
        if problems:
            raise forms.ValidationError(problems)
        return "\n".join(_lines(value))

    def clean(self):
        data = super().clean()
        if "name" not in data or "aliases" not in data:
            return data
        # The matcher gives a name (or alias) to one brand only: shared, the other brand is never found.
        others = self.brand_set.brands.exclude(pk=self.instance.pk if self.instance else None)
        taken = {}
        for other in others.order_by("pk"):
            for term in parse_aliases(other.name, other.aliases)[0]:
                taken.setdefault(term, other.name)
        lines = [("name", data["name"])]
        lines += [("aliases", line) for line in data["aliases"].splitlines() if not line.startswith("re:")]
        for name, line in lines:
            owner = taken.get(fold_term(line))
            if owner is not None:
                self.add_error(name, f"{owner} already goes by “{line}” (case and accents do not count).")
        return data

    def clean_domains(self):
        lines = _lines(self.cleaned_data["domains"].replace(",", "\n"))
        bad = [line for line in lines if "." not in domain_of(line)]
        if bad:
            raise forms.ValidationError(f"Not a domain: {', '.join(bad[:5])}.")
        return "\n".join(domain_of(line) for line in lines)


class MatchTestForm(forms.Form):
    text = forms.CharField(
        label="An answer", widget=forms.Textarea(attrs={"rows": 10}), max_length=MAX_TEST_TEXT, strip=False
    )


class AnswersForm(forms.Form):
    """Which answers behind a figure; a wrong value is ignored (the page lists it) and the others still apply.
    Without dates, the set's answers of this month."""

    figure = forms.ChoiceField(choices=[(f, f) for f in FIGURES], required=False)
    brand = forms.IntegerField(required=False, min_value=1)
    position = forms.IntegerField(required=False, min_value=1, max_value=1000)
    provider = forms.ChoiceField(
        choices=Provider.choices,
        required=False,
        error_messages={"invalid_choice": f"Not a provider: give {PROVIDER_KEYS}."},
    )
    model = forms.CharField(required=False, max_length=100)
    date_from = DayField(required=False, label="From")
    date_to = DayField(required=False, label="To")
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000)

    def __init__(self, *args, brand_set: BrandSet, **kwargs):
        self.brand_set = brand_set
        super().__init__(*args, **kwargs)

    def clean_brand(self) -> Brand | None:
        brand_id = self.cleaned_data["brand"]
        if brand_id is None:
            return None
        brand = self.brand_set.brands.filter(pk=brand_id).first()
        if brand is None:
            raise forms.ValidationError("No brand of this set has this id (it may have been deleted).")
        return brand

    def clean(self):
        data = super().clean()
        position_missing = data.get("position") is None and "position" not in self.errors
        if data.get("figure") == "position" and position_missing:
            self.add_error("position", "Give the position to show the answers at.")
        figure = data.get("figure")
        if figure in BRAND_FIGURES and data.get("brand") is None and "brand" not in self.errors:
            self.add_error("figure", "Give a brand for this figure; showing every answer.")
        if figure in SET_FIGURES and data.get("brand") is not None:
            self.add_error("brand", f"This figure is not about one brand; showing {SET_FIGURES[figure]}.")
        return data

    def valid_filters(self) -> dict:
        """The values that passed validation; a wrong one is left out, not the whole query."""
        self.is_valid()
        return getattr(self, "cleaned_data", {})

    def chosen_period(self) -> periods.Period:
        data = self.valid_filters()
        start, end = data.get("date_from"), data.get("date_to")
        if start or end:
            today = periods.local_today()
            return periods.period_custom(start=start or end or today, end=end or start or today)
        return periods.period_preset("this_month")

    def period_cut_note(self) -> str:
        """What the page says of dates more than three years apart (`chosen_period` keeps the last three), as
        the spend page says it."""
        data = self.valid_filters()
        start, end = data.get("date_from"), data.get("date_to")
        if not (start and end) or abs((end - start).days) < periods.MAX_PERIOD_DAYS:
            return ""
        return f"A period is at most three years: this one starts on {self.chosen_period().start:%-d %b %Y}."

    def period_note(self) -> str:
        """What the list of ignored filters adds when a date could not be read: the period shown instead
        (`chosen_period`), this month or the one day the other date gives."""
        if not any(name in self.errors for name in ("date_from", "date_to")):
            return ""
        period = self.chosen_period()
        if period.key == "this_month":
            return f"Showing this month ({period.label}) instead."
        return f"Showing {period.label} instead."
