"""When a monitor runs: its cadence as slots (aware datetimes, UTC), DST-correct in its time zone.

Every cadence but "every N days" is a cron expression evaluated by `cronsim` in the monitor's zone
(hourly = "M * * * *", daily = "M H * * *", weekdays = "M H * * 1,3,5"); cronsim skips a local time
that does not exist (spring forward) and runs an ambiguous one once (fall back), as cron does. "Every N
days" counts local days from the start date at the time of day (a monitor saved without one is given the
day of its first run: `every_n_days_start`); a time in the spring-forward gap runs an hour later. Slots
before the start date or after the end date (local days) are never due."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronsim import CronSim, CronSimError

EPOCH = date(2000, 1, 1)  # what "every N days" counts from without a start date (none is saved so since 0027)
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_SEARCH_LIMIT = 400  # slots looked at before giving up (an expression such as "0 0 30 2 *" never fires)


class CadenceError(ValueError):
    """A cadence that cannot run; the message is meant for the person."""


@dataclass(frozen=True)
class Cadence:
    kind: str  # Monitor.Cadence
    time_zone: str = "UTC"
    time_of_day: time | None = None
    minute: int = 0
    weekdays: tuple[int, ...] = ()  # 0 = Monday
    interval_days: int | None = None
    cron: str = ""
    start_date: date | None = None
    end_date: date | None = None

    @classmethod
    def of(cls, monitor) -> "Cadence":
        return cls(
            kind=monitor.cadence,
            time_zone=monitor.time_zone,
            time_of_day=monitor.time_of_day,
            minute=monitor.minute or 0,
            weekdays=tuple(monitor.weekdays or ()),
            interval_days=monitor.interval_days,
            cron=monitor.cron or "",
            start_date=monitor.start_date,
            end_date=monitor.end_date,
        )

    @property
    def zone(self) -> ZoneInfo:
        return zone_of(self.time_zone)

    def expression(self) -> str | None:
        """The cron expression of the cadence; None for every N days."""
        at = self.time_of_day or time(9, 0)
        if self.kind == "hourly":
            return f"{self.minute} * * * *"
        if self.kind == "daily":
            return f"{at.minute} {at.hour} * * *"
        if self.kind == "weekdays":
            if not self.weekdays:
                raise CadenceError("Choose at least one weekday.")
            # cron counts Sunday as 0; ours is Monday = 0.
            days = ",".join(str((day + 1) % 7) for day in sorted(set(self.weekdays)))
            return f"{at.minute} {at.hour} * * {days}"
        if self.kind == "cron":
            return self.cron.strip()
        if self.kind == "every_n_days":
            return None
        raise CadenceError(f"Unknown cadence “{self.kind}”.")

    def summary(self) -> str:
        """The cadence in words, as the monitor's page says it: "Every 3 days at 09:00, counted from
        2026-12-07", "Mon, Wed, Fri at 09:00, until 2027-01-31", "Cron 0 9 * * 1-5"."""
        at = f"{self.time_of_day or time(9, 0):%H:%M}"
        if self.kind == "hourly":
            text = f"Every hour at :{self.minute:02d}"
        elif self.kind == "daily":
            text = f"Every day at {at}"
        elif self.kind == "weekdays":
            text = f"{', '.join(WEEKDAY_NAMES[day] for day in sorted(set(self.weekdays)))} at {at}"
        elif self.kind == "every_n_days":
            n = self.interval_days or 1
            text = f"{'Every day' if n == 1 else f'Every {n} days'} at {at}"
        else:
            text = f"Cron {self.cron.strip()}"
        if self.start_date is not None:
            counted = self.kind == "every_n_days"
            text += f", {'counted from' if counted else 'from'} {self.start_date:%Y-%m-%d}"
        if self.end_date is not None:
            text += f", until {self.end_date:%Y-%m-%d}"
        return text

    def check(self) -> None:
        """Raise CadenceError if the cadence cannot run at all."""
        self.zone  # noqa: B018 - raises for an unknown zone
        expression = self.expression()
        if expression is not None:
            if seconds := _seconds_field(expression):
                raise CadenceError(seconds)
            if not expression.split():
                raise CadenceError(
                    "Give a cron expression: 5 fields (minute, hour, day of month, month, day of week)."
                )
            try:
                CronSim(expression, datetime(2000, 1, 1, tzinfo=UTC))
            except CronSimError as exc:
                raise CadenceError(f"The cron expression “{expression}” is not valid: {exc}") from None
        elif not self.interval_days or self.interval_days < 1:
            raise CadenceError("Every how many days? Give a whole number of at least 1.")
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise CadenceError("The end date is before the start date.")

    def next_after(self, moment: datetime) -> datetime | None:
        """The first slot strictly after `moment` (UTC), or None if none is left before the end date (or
        before the calendar's end: no date at the ends of year 1 or 9999 overflows)."""
        zone = self.zone
        try:
            local = moment.astimezone(zone)
            if self.start_date is not None and self.start_date > local.date():
                start = datetime.combine(self.start_date, time(0), tzinfo=zone) - timedelta(microseconds=1)
                local = start.astimezone(zone)
            slot = self._next_raw(local)
            if slot is None or (self.end_date is not None and slot.date() > self.end_date):
                return None
            return slot.astimezone(UTC)
        except OverflowError:  # a slot past 9999-12-31: there is none
            return None

    def slots_between(self, after: datetime, until: datetime, *, limit: int = 10_000) -> list[datetime]:
        """The slots in (after, until], at most `limit`."""
        slots: list[datetime] = []
        slot = self.next_after(after)
        while slot is not None and slot <= until and len(slots) < limit:
            slots.append(slot)
            slot = self.next_after(slot)
        return slots

    def slot_count(self, after: datetime, until: datetime, *, exact_up_to: int = 800) -> tuple[int, bool]:
        """How many slots (after, until] holds, and whether exactly: counted one by one up to `exact_up_to`;
        past that (a cron expression firing more than once a day, e.g. every 30 minutes) reckoned per
        local day, its hours × minutes on each day it fires (noon inside the range), as counting them
        all would take seconds. A daylight-saving day may differ by an hour's slots."""
        slots = self.slots_between(after, until, limit=exact_up_to + 1)
        if len(slots) <= exact_up_to or self.expression() is None:
            return len(slots), True
        sim = CronSim(self.expression(), datetime(2000, 1, 1, tzinfo=UTC))
        per_day = len(sim.hours) * len(sim.minutes)
        zone, count = self.zone, 0
        day = after.astimezone(zone).date()
        while (noon := datetime.combine(day, time(12), tzinfo=zone)) <= until:
            fires = day.month in sim.months and sim.match_day(day)
            within = (self.start_date is None or day >= self.start_date) and (
                self.end_date is None or day <= self.end_date
            )
            if noon > after and fires and within:
                count += per_day
            day += timedelta(days=1)
        return count, False

    def latest_at_or_before(self, moment: datetime, *, since: datetime) -> tuple[datetime | None, int]:
        """The latest slot in [since, moment] and how many slots that range holds."""
        slots = self.slots_between(since - timedelta(microseconds=1), moment)
        return (slots[-1] if slots else None), len(slots)

    def _next_raw(self, local: datetime) -> datetime | None:
        expression = self.expression()
        if expression is not None:
            if _seconds_field(expression):  # saved before the form refused one: it never runs
                return None
            try:
                it = CronSim(expression, local)
                return next(it)
            except (CronSimError, StopIteration):
                return None
        return self._next_every_n_days(local)

    def _next_every_n_days(self, local: datetime) -> datetime | None:
        at = self.time_of_day or time(9, 0)
        anchor = self.start_date or EPOCH
        n = self.interval_days or 1
        day = local.date()
        offset = (day - anchor).days % n
        day -= timedelta(days=offset)  # the last cadence day on or before `local`
        for _ in range(_SEARCH_LIMIT):
            slot = _local_slot(day, at, self.zone)
            if slot > local:
                return slot
            day += timedelta(days=n)
        return None


def _seconds_field(expression: str) -> str:
    """Why a 6-field expression cannot run, or "": cronsim reads the sixth field as seconds, which would make
    the monitor due at every scheduler tick (a paid run every 30 s)."""
    if len(expression.split()) != 6:
        return ""
    return (
        f"The cron expression “{expression}” has 6 fields: give 5 (minute, hour, day of month, month, day of "
        "week); a monitor runs at most once a minute."
    )


def every_n_days_start(*, time_of_day: time | None, time_zone: str, now: datetime) -> date:
    """The day an "every N days" monitor saved at `now` without a start date counts from: today (in its
    zone) if its time of day is still ahead, else tomorrow. So its first run is the next time of day."""
    zone = zone_of(time_zone)
    local = now.astimezone(zone)
    today = local.date()
    return today if _local_slot(today, time_of_day or time(9, 0), zone) > local else today + timedelta(days=1)


def _local_slot(day: date, at: time, zone: ZoneInfo) -> datetime:
    """`day` at `at` in `zone`; a time in the spring-forward gap moves on by the gap, an ambiguous one is
    its first occurrence."""
    naive = datetime.combine(day, at)
    aware = naive.replace(tzinfo=zone, fold=0)
    # Round-trip through UTC: a non-existent wall time comes back as the real instant after the gap.
    return aware.astimezone(UTC).astimezone(zone)


def slot_label(slot: datetime, time_zone: str) -> str:
    """A slot as the monitor's cadence reads: "2026-01-01 09:00 (Europe/Paris)", in its zone, named."""
    try:
        zone = zone_of(time_zone)
    except CadenceError:
        zone, time_zone = UTC, "UTC"
    return f"{slot.astimezone(zone):%Y-%m-%d %H:%M} ({time_zone})"


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CadenceError(f"Unknown time zone “{name}”.") from None


# In the system's zone list but not IANA zones: "localtime" is the server's own zone (/etc/localtime).
NOT_ZONES = {"localtime", "posixrules"}


def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(available_timezones() - NOT_ZONES)]
