"""The Python widget renderer (tasks/widget_rendering.py) writes what Django's widget templates write."""

import datetime
from decimal import Decimal

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates
from django.test import override_settings

from tasks.history.forms import TaskEditForm, TaskFilterForm, TaskResolveForm
from tasks.spend.forms import BudgetForm, SpendFilterForm
from tasks.team.forms import AuditFilterForm, CredentialForm, PersonForm
from tasks.widget_rendering import PythonWidgetRenderer, PythonWidgetsMixin
from tests.factories import make_batch, make_credential, make_template_version, make_user

HOSTILE = "<script>alert(\"x\")</script> & 'quoted'"


class EveryWidgetForm(forms.Form):
    text = forms.CharField(widget=forms.TextInput(attrs={"placeholder": HOSTILE, "autofocus": True}))
    hidden = forms.CharField(widget=forms.HiddenInput)
    number = forms.DecimalField(widget=forms.NumberInput(attrs={"step": "any", "disabled": False}))
    date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    when = forms.DateTimeField()
    flag = forms.BooleanField(required=False)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
    grouped = forms.ChoiceField(
        choices=[("", "None"), ("Fruit", [("a", "Apple & <pear>"), ("b", 2)]), ("c", Decimal("1.5"))]
    )
    many = forms.MultipleChoiceField(choices=[("x", "X"), ("y", HOSTILE), ("z", "Z")])
    password = forms.CharField(widget=forms.PasswordInput(render_value=True))


def _both(form_class, *args, **kwargs) -> list[tuple[str, str, str]]:
    pairs = []
    for name in form_class(*args, **kwargs).fields:
        django_html = str(form_class(*args, renderer=DjangoTemplates(), **kwargs)[name])
        python_html = str(form_class(*args, renderer=PythonWidgetRenderer(), **kwargs)[name])
        pairs.append((name, django_html, python_html))
    return pairs


def _assert_same(pairs):
    assert pairs
    for name, django_html, python_html in pairs:
        assert python_html == django_html, name


@pytest.mark.parametrize(
    "data",
    [
        None,
        {
            "text": HOSTILE,
            "hidden": HOSTILE,
            "number": "1.25",
            "date": "2026-02-30",
            "when": "2026-01-02 03:04",
            "flag": "on",
            "body": f"line one\n{HOSTILE}",
            "grouped": "b",
            "many": ["y", "z"],
            "password": HOSTILE,
        },
    ],
)
def test_every_plain_widget_renders_as_django_renders_it(data):
    _assert_same(_both(EveryWidgetForm, data))


def test_initial_values_of_other_types_render_as_django_renders_them():
    initial = {"number": Decimal("12.5"), "date": datetime.date(2026, 1, 2), "body": 42, "flag": True}
    _assert_same(_both(EveryWidgetForm, initial=initial))


@pytest.mark.django_db
def test_the_products_forms_render_as_django_renders_them():
    make_user("ann<b>")
    make_credential(name=HOSTILE)
    make_template_version(name=HOSTILE)
    make_batch(name=HOSTILE)
    filter_data = {"q": HOSTILE, "provider": "claude", "status": "nope", "date_from": "x", "stale": "on"}
    for form_class, args in [
        (TaskFilterForm, ()),
        (TaskFilterForm, (filter_data,)),
        (TaskEditForm, ({"labels": HOSTILE, "note": HOSTILE},)),
        (TaskResolveForm, ()),
        (SpendFilterForm, ({"period": "custom", "date_from": HOSTILE},)),
        (BudgetForm, ()),
        (CredentialForm, ()),
        (PersonForm, ()),
        (AuditFilterForm, ()),
    ]:
        _assert_same(_both(form_class, *args))


def test_a_project_override_of_a_widget_template_is_still_used(tmp_path):
    override = tmp_path / "django" / "forms" / "widgets"
    override.mkdir(parents=True)
    (override / "text.html").write_text('<input class="overridden" name="{{ widget.name }}">')
    from django.forms.renderers import TemplatesSetting

    class ProjectTemplates(PythonWidgetsMixin, TemplatesSetting):
        pass

    settings_templates = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [tmp_path]}]
    with override_settings(TEMPLATES=settings_templates):
        html = str(EveryWidgetForm(renderer=ProjectTemplates())["text"])
    assert html == '<input class="overridden" name="text">'


def test_the_site_renders_forms_with_the_python_renderer(settings):
    from django.forms.renderers import get_default_renderer

    get_default_renderer.cache_clear()
    try:
        assert isinstance(get_default_renderer(), PythonWidgetRenderer)
    finally:
        get_default_renderer.cache_clear()


def test_templates_are_parsed_once_through_the_cached_loader():
    from django.template import engines
    from django.template.loaders.cached import Loader

    loaders = engines["django"].engine.template_loaders
    assert len(loaders) == 1
    assert isinstance(loaders[0], Loader)
