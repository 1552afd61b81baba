"""Form fields shared by several areas."""

from datetime import date

from django import forms

EARLIEST_DAY, LATEST_DAY = date(2000, 1, 1), date(2999, 12, 31)


class DayField(forms.DateField):
    """A day to filter or report on: within years that keep every day after or before it computable
    (9999-12-31 plus one day, or a previous period before year 1, would overflow)."""

    def validate(self, value):
        super().validate(value)
        if value is not None and not (EARLIEST_DAY <= value <= LATEST_DAY):
            raise forms.ValidationError(f"Give a date between {EARLIEST_DAY:%Y} and {LATEST_DAY:%Y}.")
