"""Deadline arithmetic on the working calendar (工作日历): when is a stage limit up?

A limit is an amount and a unit (incidents.models.TimeUnit):

* 自然时间 calendar minutes/hours run day and night, weekends and holidays included: a deadline
  is the start plus that many minutes or hours of wall-clock time.
* 工作时 working hours count only the working periods of working days — by default
  08:30–12:00 and 14:00–18:00 Asia/Shanghai (7.5 hours a day), setting CITYOPS_WORKING_HOURS.
  A case reported at 11:30 with one working hour is due at 14:30; one reported on Friday
  evening starts counting on Monday 08:30 (or on a 调休 Saturday, if that Saturday is worked).
  A deadline that uses up a period exactly lands on the period's end (12:00, 18:00).
* 工作日 working days follow the rule of Chinese law for periods counted in days (《民法典》
  第二百零一条: the day the period starts is not counted): N working days end at the close of
  the N-th working day *after* the day of the start (18:00 by default). Reported on Friday with
  one working day → due Monday 18:00; on the last working day before Spring Festival → due after
  the holiday.

The 80 % warning (预警, `warning_at`) falls when 80 % of a limit has passed in the limit's own
time: working time for working hours and days (a weekend or holiday never brings it closer),
wall-clock time for calendar units. `elapsed_fraction` measures the same way.

A working day is Monday–Friday unless it is a public holiday, plus every 调休上班 make-up day
(a Saturday or Sunday worked in exchange). Those dates are incidents.models.CalendarDay rows.
Each process keeps them in memory: a write to the table (admin, loader, shell) drops this
process's copy at once, and every process re-checks the table's fingerprint (row count and
latest update) at most every CITYOPS_CALENDAR_RECHECK_SECONDS, so other processes follow within
that interval. Arithmetic is done on the server clock, in the project's time zone (TIME_ZONE,
Asia/Shanghai); callers pass and receive aware datetimes.

Years without any CalendarDay row are counted with weekends only, and a warning is logged once
per process and year: load the year's holidays before it begins (incidents_load_calendar).
"""

from __future__ import annotations

import logging
import threading
import time as time_module
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from incidents.models import WORKING_UNITS, CalendarDay, CalendarDayKind, TimeUnit

log = logging.getLogger(__name__)

# The working day of Longhua's offices (Asia/Shanghai): morning and afternoon with a lunch break.
DEFAULT_WORKING_HOURS = "08:30-12:00,14:00-18:00"
DEFAULT_RECHECK_SECONDS = 30.0
# No real calendar goes this many days without a working day; stop rather than loop forever.
MAX_DAYS_WITHOUT_WORK = 366
# 预警: the escalation worker warns once this fraction of a stage limit has passed.
WARNING_FRACTION = 0.8

Period = tuple[time, time]


def parse_working_hours(text: str) -> tuple[Period, ...]:
    """ "08:30-12:00,14:00-18:00" → ((08:30, 12:00), (14:00, 18:00)), checked and in order."""
    periods: list[Period] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            begin_text, end_text = (piece.strip() for piece in part.split("-"))
            begin, end = time.fromisoformat(begin_text), time.fromisoformat(end_text)
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"CITYOPS_WORKING_HOURS: {part!r} is not a period like 08:30-12:00"
            ) from exc
        if begin >= end:
            raise ImproperlyConfigured(f"CITYOPS_WORKING_HOURS: {part!r} ends before it begins")
        if periods and begin < periods[-1][1]:
            raise ImproperlyConfigured(
                f"CITYOPS_WORKING_HOURS: {part!r} overlaps or precedes the period before it"
            )
        periods.append((begin, end))
    if not periods:
        raise ImproperlyConfigured("CITYOPS_WORKING_HOURS names no working period")
    return tuple(periods)


def _require_aware(name: str, moment: datetime) -> None:
    if timezone.is_naive(moment):
        raise ValueError(f"{name} must be an aware datetime, got naive {moment.isoformat()}")


class WorkingCalendar:
    """Working days and hours of a set of holiday/make-up dates; pure arithmetic, no database.

    `days` maps a date to CalendarDayKind (holiday or makeup_workday); every other date is a
    working day from Monday to Friday.
    """

    def __init__(
        self,
        days: Mapping[date, str],
        *,
        periods: Sequence[Period] | None = None,
        tz: tzinfo | None = None,
    ) -> None:
        self._days: dict[date, str] = dict(days)
        self.periods: tuple[Period, ...] = tuple(
            periods if periods is not None else parse_working_hours(DEFAULT_WORKING_HOURS)
        )
        self.tz: tzinfo = tz if tz is not None else timezone.get_default_timezone()
        self.covered_years: frozenset[int] = frozenset(day.year for day in self._days)
        self.seconds_per_day = sum(
            (datetime.combine(date.min, end) - datetime.combine(date.min, begin)).total_seconds()
            for begin, end in self.periods
        )
        self._warned_years: set[int] = set()

    # --- days and moments ---------------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        kind = self._days.get(day)
        if kind == CalendarDayKind.HOLIDAY:
            return False
        if kind == CalendarDayKind.MAKEUP_WORKDAY:
            return True
        return day.weekday() < 5

    def is_working_time(self, moment: datetime) -> bool:
        """Whether the moment is inside a working period (ends included) of a working day."""
        _require_aware("moment", moment)
        local = self._local(moment)
        if not self.is_working_day(local.date()):
            return False
        clock = local.time()
        return any(begin <= clock <= end for begin, end in self.periods)

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after `day`."""
        for _ in range(MAX_DAYS_WITHOUT_WORK):
            day += timedelta(days=1)
            if self.is_working_day(day):
                return day
        raise ValueError(f"no working day within {MAX_DAYS_WITHOUT_WORK} days after {day}")

    # --- deadlines ------------------------------------------------------------------------

    def deadline(self, start: datetime, amount: int, unit: str) -> datetime:
        """When a limit of `amount` `unit`s that starts at `start` runs out (aware, local)."""
        _require_aware("start", start)
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
            raise ValueError(f"a time limit is a whole number of at least 1, not {amount!r}")
        if unit == TimeUnit.CALENDAR_MINUTES:
            return (start + timedelta(minutes=amount)).astimezone(self.tz)
        if unit == TimeUnit.CALENDAR_HOURS:
            return (start + timedelta(hours=amount)).astimezone(self.tz)
        local = self._local(start)
        if unit == TimeUnit.WORKING_DAYS:
            day = local.date()
            for _ in range(amount):
                day = self.next_working_day(day)
            end = datetime.combine(day, self.periods[-1][1])
        elif unit == TimeUnit.WORKING_HOURS:
            end = self._add_working_seconds(local, amount * 3600)
        else:
            raise ValueError(f"unknown time unit {unit!r}")
        self._warn_uncovered(local.date(), end.date())
        return end.replace(tzinfo=self.tz)

    def working_seconds(self, start: datetime, end: datetime) -> float:
        """Working time between two moments, in seconds (0 when end is not after start)."""
        _require_aware("start", start)
        _require_aware("end", end)
        if end <= start:
            return 0.0
        begin_local, end_local = self._local(start), self._local(end)
        total = 0.0
        day = begin_local.date()
        while day <= end_local.date():
            if self.is_working_day(day):
                for period_begin, period_end in self.periods:
                    lower = max(begin_local, datetime.combine(day, period_begin))
                    upper = min(end_local, datetime.combine(day, period_end))
                    if upper > lower:
                        total += (upper - lower).total_seconds()
            day += timedelta(days=1)
        return total

    def elapsed_fraction(
        self, start: datetime, deadline: datetime, now: datetime, *, unit: str
    ) -> float:
        """How much of the limit from `start` to `deadline` has passed at `now` (0 … 1, >1 late).

        Working-time limits measure working time, so a weekend does not eat a working-day limit;
        calendar limits measure wall-clock time. For working units the fraction reaches 1 exactly
        when `now` reaches the deadline.
        """
        _require_aware("now", now)
        if unit in WORKING_UNITS:
            total = self.working_seconds(start, deadline)
            done = self.working_seconds(start, now)
        else:
            _require_aware("start", start)
            _require_aware("deadline", deadline)
            total = (deadline - start).total_seconds()
            done = (now - start).total_seconds()
        if total <= 0:
            return 1.0 if now >= deadline else 0.0
        return max(0.0, done / total)

    def moment_at_fraction(
        self, start: datetime, deadline: datetime, fraction: float, *, unit: str | None
    ) -> datetime:
        """The first moment at which `fraction` (0 … 1) of the limit from `start` to `deadline`
        has passed — the inverse of elapsed_fraction (aware, local).

        Working-time limits count working time: 80 % of four working hours from Friday 16:00
        (due Monday 10:30) is Monday 09:42, not some moment of the weekend; a fraction that uses
        up a working period exactly lands on the period's end (12:00, 18:00), like a deadline.
        Calendar limits, and a clock without a limit (`unit` None), count wall-clock time.
        """
        _require_aware("start", start)
        _require_aware("deadline", deadline)
        if isinstance(fraction, bool) or not 0 <= fraction <= 1:
            raise ValueError(f"a fraction of a limit is between 0 and 1, not {fraction!r}")
        if deadline <= start:
            return deadline.astimezone(self.tz)
        if fraction == 0:
            return start.astimezone(self.tz)
        if unit in WORKING_UNITS:
            total = self.working_seconds(start, deadline)
            if total <= 0:  # no working time in between: the whole limit passes at once
                return deadline.astimezone(self.tz)
            moment = self._add_working_seconds(self._local(start), total * fraction)
            # Never past the deadline: adding the whole limit back in float seconds can come out
            # a hair over the working period that ends it, and land on the next one's start.
            return min(moment.replace(tzinfo=self.tz), deadline.astimezone(self.tz))
        return (start + (deadline - start) * fraction).astimezone(self.tz)

    # --- internals --------------------------------------------------------------------------

    def _local(self, moment: datetime) -> datetime:
        """Wall-clock time in the calendar's zone, naive (China has no daylight saving)."""
        return moment.astimezone(self.tz).replace(tzinfo=None)

    def _add_working_seconds(self, local_start: datetime, seconds: float) -> datetime:
        remaining = seconds
        day = local_start.date()
        cursor = local_start
        idle_days = 0
        while True:
            if self.is_working_day(day):
                idle_days = 0
                for period_begin, period_end in self.periods:
                    begin = datetime.combine(day, period_begin)
                    end = datetime.combine(day, period_end)
                    if cursor >= end:
                        continue
                    begin = max(cursor, begin)
                    available = (end - begin).total_seconds()
                    if remaining <= available:
                        return begin + timedelta(seconds=remaining)
                    remaining -= available
            else:
                idle_days += 1
                if idle_days > MAX_DAYS_WITHOUT_WORK:
                    raise ValueError(f"no working day within {MAX_DAYS_WITHOUT_WORK} days")
            day += timedelta(days=1)
            cursor = datetime.combine(day, time.min)

    def _warn_uncovered(self, first: date, last: date) -> None:
        for year in range(first.year, last.year + 1):
            if year not in self.covered_years and year not in self._warned_years:
                self._warned_years.add(year)
                log.warning(
                    "working calendar has no holidays for %s: counting weekends only "
                    "(load them with manage.py incidents_load_calendar)",
                    year,
                )


# --- the process-wide calendar from the database ------------------------------------------


def _working_hours_setting() -> str:
    return str(getattr(settings, "CITYOPS_WORKING_HOURS", DEFAULT_WORKING_HOURS))


def _recheck_seconds() -> float:
    return float(getattr(settings, "CITYOPS_CALENDAR_RECHECK_SECONDS", DEFAULT_RECHECK_SECONDS))


def _fingerprint() -> tuple[Any, ...]:
    summary = CalendarDay.objects.aggregate(rows=Count("id"), latest=Max("updated_at"))
    return (summary["rows"], summary["latest"])


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calendar: WorkingCalendar | None = None
        self.fingerprint: tuple[Any, ...] | None = None
        self.hours = ""
        self.timezone_name = ""
        self.checked_at = 0.0


_cache = _Cache()


def working_calendar() -> WorkingCalendar:
    """This process's calendar, re-read when the table or the working-hours setting changed."""
    hours = _working_hours_setting()
    zone = str(settings.TIME_ZONE)
    now = time_module.monotonic()
    with _cache.lock:
        current = _cache.calendar
        same_settings = _cache.hours == hours and _cache.timezone_name == zone
        if current is not None and same_settings and now - _cache.checked_at < _recheck_seconds():
            return current
    # Fingerprint first, rows second: a change in between is seen at the next check.
    fingerprint = _fingerprint()
    with _cache.lock:
        if current is not None and same_settings and _cache.fingerprint == fingerprint:
            _cache.checked_at = now
            return current
    days = dict(CalendarDay.objects.values_list("date", "kind"))
    calendar = WorkingCalendar(days, periods=parse_working_hours(hours))
    with _cache.lock:
        _cache.calendar = calendar
        _cache.fingerprint = fingerprint
        _cache.hours = hours
        _cache.timezone_name = zone
        _cache.checked_at = now
    return calendar


def invalidate() -> None:
    """Forget this process's calendar; the next use reads the table again."""
    with _cache.lock:
        _cache.calendar = None
        _cache.fingerprint = None


def invalidate_on_commit() -> None:
    """After a write: forget now (this transaction's readers) and again once it commits."""
    invalidate()
    transaction.on_commit(invalidate)


def deadline(
    start: datetime, amount: int, unit: str, *, calendar: WorkingCalendar | None = None
) -> datetime:
    """When a limit of `amount` `unit`s starting at `start` runs out (see the module docstring)."""
    return (calendar or working_calendar()).deadline(start, amount, unit)


def elapsed_fraction(
    start: datetime,
    deadline: datetime,
    now: datetime,
    *,
    unit: str,
    calendar: WorkingCalendar | None = None,
) -> float:
    """Fraction of the limit used at `now` (0.8 → the 80 % warning; ≥ 1 → breached)."""
    return (calendar or working_calendar()).elapsed_fraction(start, deadline, now, unit=unit)


def moment_at_fraction(
    start: datetime,
    deadline: datetime,
    fraction: float,
    *,
    unit: str | None,
    calendar: WorkingCalendar | None = None,
) -> datetime:
    """When `fraction` of the limit from `start` to `deadline` has passed, in the limit's own
    time (see WorkingCalendar.moment_at_fraction)."""
    return (calendar or working_calendar()).moment_at_fraction(start, deadline, fraction, unit=unit)


def warning_at(
    start: datetime,
    deadline: datetime,
    *,
    unit: str | None,
    calendar: WorkingCalendar | None = None,
) -> datetime:
    """When the 80 % warning (预警) of a clock is due: `Incident.stage_warn_at`."""
    return moment_at_fraction(start, deadline, WARNING_FRACTION, unit=unit, calendar=calendar)
