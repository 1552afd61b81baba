"""The count a folded filter panel shows: fields holding something other than their default."""

from django import forms

from tasks.templatetags.task_tags import active_filter_count


class Filters(forms.Form):
    q = forms.CharField(required=False)
    status = forms.ChoiceField(required=False, choices=[("", "Any"), ("failed", "Failed")])
    stale = forms.BooleanField(required=False)
    period = forms.ChoiceField(
        required=False, initial="this_month", choices=[("this_month", "m"), ("last_7", "7")]
    )
    sort = forms.CharField(required=False)


def test_an_unbound_form_has_no_active_filter():
    assert active_filter_count(Filters()) == 0


def test_only_values_other_than_the_default_count():
    form = Filters({"q": "", "status": "failed", "period": "this_month", "sort": "-cost"})

    assert (
        active_filter_count(form, "sort") == 1
    )  # status; an empty box, the default period and the sort do not


def test_an_unticked_checkbox_is_not_a_filter_and_a_ticked_one_is():
    assert active_filter_count(Filters({"q": "parks"})) == 1
    assert active_filter_count(Filters({"q": "parks", "stale": "on"})) == 2
