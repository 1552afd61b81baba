"""Form widgets rendered in Python, with the same HTML as Django's widget templates.

Django renders each widget through a template, and a <select> includes one more template per option: on the
task list the filter form's widgets took about a quarter of the request (issue 18, docs/performance.md). This
renderer builds the markup of the plain widget templates (inputs, checkboxes, selects and their options,
textareas) as strings, escaped as the templates escape them; any other template (and a project override of
one of these) goes through Django's template renderer as before. tests/test_widget_rendering.py compares
both renderings widget by widget.
"""

from django.forms import BoundField
from django.forms.renderers import DjangoTemplates
from django.utils.formats import localize
from django.utils.html import conditional_escape

_W = "django/forms/widgets/"
_INPUTS = {
    f"{_W}{name}.html"
    for name in (
        "input",
        "text",
        "search",
        "number",
        "email",
        "url",
        "tel",
        "password",
        "hidden",
        "date",
        "datetime",
        "time",
        "color",
        "checkbox",
    )
}


def _escaped(value) -> str:
    """`{{ value|stringformat:'s' }}`: the value as text, escaped unless already safe."""
    return conditional_escape(value if isinstance(value, str) else str(value))


def _shown(value) -> str:
    """`{{ value }}`: localized as a template shows it, then escaped."""
    return conditional_escape(value if isinstance(value, str) else localize(value))


def _attrs(attrs: dict) -> str:
    """django/forms/widgets/attrs.html."""
    parts = []
    for name, value in attrs.items():
        if value is False:
            continue
        if value is True:
            parts.append(f" {_shown(name)}")
        else:
            parts.append(f' {_shown(name)}="{_escaped(value)}"')
    return "".join(parts)


def _input(widget: dict) -> str:
    value = "" if widget["value"] is None else f' value="{_escaped(widget["value"])}"'
    kind, name = _shown(widget["type"]), _shown(widget["name"])
    return f'<input type="{kind}" name="{name}"{value}{_attrs(widget["attrs"])}>'


def _option(option: dict) -> str:
    value, label = _escaped(option["value"]), _shown(option["label"])
    return f'<option value="{value}"{_attrs(option["attrs"])}>{label}</option>'


def _select(widget: dict) -> str | None:
    parts = [f'<select name="{_shown(widget["name"])}"{_attrs(widget["attrs"])}>']
    for group_name, group_choices, _index in widget["optgroups"]:
        if group_name:
            parts.append(f'\n  <optgroup label="{_shown(group_name)}">')
        for option in group_choices:
            if option["template_name"] != f"{_W}select_option.html":
                return None
            parts.append(f"\n  {_option(option)}\n")  # the included option template ends with a newline
        if group_name:
            parts.append("\n  </optgroup>")
    parts.append("\n</select>")
    return "".join(parts)


def _textarea(widget: dict) -> str:
    value = _shown(widget["value"]) if widget["value"] else ""
    return f'<textarea name="{_shown(widget["name"])}"{_attrs(widget["attrs"])}>\n{value}</textarea>'


class PythonWidgetsMixin:
    """The plain widgets in Python, everything else (fields, forms, other widgets) as the renderer it is
    mixed into renders it."""

    def render(self, template_name, context, request=None):
        widget = context.get("widget") if isinstance(context, dict) else None
        if widget is not None and self._builtin(template_name):
            if template_name in _INPUTS:
                return _input(widget)
            if template_name == f"{_W}select.html":
                html = _select(widget)
                if html is not None:
                    return html
            elif template_name == f"{_W}select_option.html":
                return _option(widget)
            elif template_name == f"{_W}textarea.html":
                return _textarea(widget)
        return super().render(template_name, context, request=request)

    def _builtin(self, template_name: str) -> bool:
        """Only Django's own widget templates: a project override of one renders as the project wrote it."""
        cache = self.__dict__.setdefault("_builtin_cache", {})
        if template_name not in cache:
            origin = self.get_template(template_name).origin.name if template_name.startswith(_W) else ""
            cache[template_name] = f"/django/forms/templates/{_W}" in origin.replace("\\", "/")
        return cache[template_name]


class PlainLabelBoundField(BoundField):
    """A field whose label reads as written ("Name", not Django's "Name:"): the product's labels sit above or
    beside their control and never end with a colon. A field's own `label_suffix`, or one passed to
    `label_tag`, still applies."""

    def label_tag(self, contents=None, attrs=None, label_suffix=None, tag=None):
        if label_suffix is None and self.field.label_suffix is None:
            label_suffix = ""
        return super().label_tag(contents, attrs, label_suffix, tag)


class PythonWidgetRenderer(PythonWidgetsMixin, DjangoTemplates):
    """FORM_RENDERER: Django's default renderer, with the plain widgets built in Python, and every form's
    labels without a trailing colon."""

    bound_field_class = PlainLabelBoundField
