"""Cadences as slots: DST-correct in the monitor's time zone, start and end dates, every N days."""

from datetime import UTC, date, datetime, time

import pytest

from tasks.monitors.cadence import Cadence, CadenceError

MARCH = datetime(2026, 3, 27, tzinfo=UTC)


def utc_hours(slots):
    return [(slot.day, slot.hour, slot.minute) for slot in slots]


def test_a_time_in_the_spring_forward_gap_runs_once_that_day():
    daily = Cadence(kind="daily", time_zone="Europe/Berlin", time_of_day=time(2, 30))
    slots = daily.slots_between(MARCH, datetime(2026, 3, 31, tzinfo=UTC))
    assert len(slots) == 4 and len({slot.date() for slot in slots}) == 4
    assert utc_hours(slots)[2] == (29, 1, 0)  # 03:00 CEST, when the clocks have moved on


def test_an_ambiguous_time_at_fall_back_runs_once():
    daily = Cadence(kind="daily", time_zone="Europe/Berlin", time_of_day=time(2, 30))
    slots = daily.slots_between(datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 27, tzinfo=UTC))
    assert utc_hours(slots) == [(24, 0, 30), (25, 0, 30), (26, 1, 30)]


def test_hourly_over_fall_back_has_25_slots_that_day():
    hourly = Cadence(kind="hourly", time_zone="Europe/Berlin", minute=15)
    slots = hourly.slots_between(
        datetime(2026, 10, 24, 22, tzinfo=UTC), datetime(2026, 10, 25, 23, tzinfo=UTC)
    )
    assert len(slots) == 25 and len(set(slots)) == 25


def test_every_n_days_counts_from_the_start_date_and_stops_after_the_end_date():
    every_three = Cadence(
        kind="every_n_days", interval_days=3, time_of_day=time(9, 0), time_zone="UTC",
        start_date=date(2026, 1, 2), end_date=date(2026, 1, 14),
    )  # fmt: skip
    slots = every_three.slots_between(datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    assert [slot.day for slot in slots] == [2, 5, 8, 11, 14]
    assert every_three.next_after(datetime(2026, 1, 14, 10, tzinfo=UTC)) is None


def test_weekdays_are_monday_based_and_in_the_time_zone():
    weekdays = Cadence(kind="weekdays", weekdays=(0, 4), time_of_day=time(8, 0), time_zone="Asia/Tokyo")
    slots = weekdays.slots_between(datetime(2026, 1, 4, tzinfo=UTC), datetime(2026, 1, 11, tzinfo=UTC))
    # Monday 5 and Friday 9 January at 08:00 in Tokyo: 23:00 UTC the day before.
    assert utc_hours(slots) == [(4, 23, 0), (8, 23, 0)]


@pytest.mark.parametrize(
    ("cadence", "message"),
    [
        (Cadence(kind="cron", cron="61 * * * *"), "is not valid"),
        (Cadence(kind="weekdays"), "at least one weekday"),
        (Cadence(kind="every_n_days"), "Every how many days"),
        (Cadence(kind="daily", time_zone="Mars/Olympus"), "Unknown time zone"),
        (Cadence(kind="daily", start_date=date(2026, 2, 1), end_date=date(2026, 1, 1)), "before the start"),
    ],
)
def test_a_cadence_that_cannot_run_is_refused_with_a_reason(cadence, message):
    with pytest.raises(CadenceError, match=message):
        cadence.check()


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago"])
@pytest.mark.parametrize("kind", ["daily", "every_n_days"])
def test_dates_at_the_calendars_ends_give_slots_or_none_never_an_overflow(zone, kind):
    def cadence(**dates):
        return Cadence(kind=kind, time_zone=zone, time_of_day=time(23, 30), interval_days=3, **dates)

    assert cadence(start_date=date.min).next_after(MARCH) is not None
    assert cadence(end_date=date.max).next_after(MARCH) is not None
    assert cadence(start_date=date.min, end_date=date.max).slots_between(
        MARCH, datetime(2026, 4, 1, tzinfo=UTC)
    )
    last = cadence(start_date=date(9999, 12, 31))
    assert last.next_after(datetime(9999, 12, 31, 23, 59, tzinfo=UTC)) is None
    assert last.next_after(MARCH) is None or last.next_after(MARCH).year == 9999
