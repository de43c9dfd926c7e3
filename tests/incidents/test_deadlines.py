"""Deadlines on the working calendar: holidays, 调休 make-up days, lunch breaks, evenings,
weekends, calendar-clock limits, and the fraction of a limit used (for the 80 % warning)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ImproperlyConfigured

from incidents import calendar
from incidents.calendar import WorkingCalendar, parse_working_hours
from incidents.models import TimeUnit
from tests.incidents.clock import at

pytestmark = pytest.mark.django_db

WD, WH = TimeUnit.WORKING_DAYS, TimeUnit.WORKING_HOURS
CH, CM = TimeUnit.CALENDAR_HOURS, TimeUnit.CALENDAR_MINUTES


def due(start: datetime, amount: int, unit: str) -> datetime:
    return calendar.deadline(start, amount, unit)


# --- Spring Festival 2026: 2/15–2/23 off, Saturdays 2/14 and 2/28 worked ----------------------


def test_reported_on_the_last_working_day_before_spring_festival_lands_after_it(holidays):
    # Saturday 14 February 2026 is a 调休 working day and the last one before the holiday.
    last_working_day = at(2026, 2, 14, 10, 0)
    assert due(last_working_day, 3, WD) == at(2026, 2, 26, 18, 0)  # 24, 25, 26
    assert due(last_working_day, 1, WD) == at(2026, 2, 24, 18, 0)


def test_the_make_up_saturday_before_spring_festival_counts_as_a_working_day(holidays):
    friday = at(2026, 2, 13, 16, 0)
    assert due(friday, 1, WD) == at(2026, 2, 14, 18, 0)
    assert due(friday, 3, WD) == at(2026, 2, 25, 18, 0)  # 14, 24, 25
    # Working hours too: Friday 16:00 + 4 h = 2 h on Friday, 2 h on the make-up Saturday.
    assert due(friday, 4, WH) == at(2026, 2, 14, 10, 30)


def test_working_hours_skip_the_whole_spring_festival(holidays):
    assert due(at(2026, 2, 14, 17, 0), 2, WH) == at(2026, 2, 24, 9, 30)


def test_the_make_up_saturday_after_spring_festival_is_worked(holidays):
    assert due(at(2026, 2, 26, 9, 0), 2, WD) == at(2026, 2, 28, 18, 0)  # Fri 27, Sat 28


# --- National Day 2025: 10/1–10/8 off, Sunday 9/28 and Saturday 10/11 worked -----------------


def test_national_day_2025_counts_the_make_up_sunday_and_saturday(holidays):
    friday = at(2025, 9, 26, 10, 0)
    assert due(friday, 1, WD) == at(2025, 9, 28, 18, 0)  # Sunday 28 is worked
    assert due(friday, 3, WD) == at(2025, 9, 30, 18, 0)  # 28, 29, 30
    before_holiday = at(2025, 9, 30, 15, 0)
    assert due(before_holiday, 1, WD) == at(2025, 10, 9, 18, 0)
    assert due(before_holiday, 3, WD) == at(2025, 10, 11, 18, 0)  # 9, 10, Saturday 11
    assert due(before_holiday, 4, WD) == at(2025, 10, 13, 18, 0)


def test_national_day_2025_in_working_hours(holidays):
    ordinary_saturday = at(2025, 9, 27, 10, 0)
    assert due(ordinary_saturday, 2, WH) == at(2025, 9, 28, 10, 30)  # make-up Sunday
    during_holiday = at(2025, 10, 3, 11, 0)
    assert due(during_holiday, 1, WH) == at(2025, 10, 9, 9, 30)
    assert due(at(2025, 10, 10, 17, 0), 2, WH) == at(2025, 10, 11, 9, 30)  # Saturday 11 worked


def test_a_holiday_on_a_weekday_is_not_a_working_day(holidays):
    cal = calendar.working_calendar()
    assert not cal.is_working_day(datetime(2025, 10, 8).date())  # Wednesday, holiday
    assert cal.is_working_day(datetime(2025, 9, 28).date())  # Sunday, make-up
    assert not cal.is_working_day(datetime(2025, 10, 12).date())  # ordinary Sunday


# --- working hours: lunch, evenings, weekends --------------------------------------------------


def test_working_hours_pause_for_lunch(holidays):
    monday = (2026, 3, 2)
    assert due(at(*monday, 11, 30), 1, WH) == at(*monday, 14, 30)
    assert due(at(*monday, 12, 30), 1, WH) == at(*monday, 15, 0)  # reported during lunch
    assert due(at(*monday, 9, 0), 3, WH) == at(*monday, 12, 0)  # uses up the morning exactly
    assert due(at(*monday, 12, 0), 1, WH) == at(*monday, 15, 0)


def test_working_hours_stop_overnight(holidays):
    assert due(at(2026, 3, 2, 17, 30), 2, WH) == at(2026, 3, 3, 10, 0)
    assert due(at(2026, 3, 2, 22, 0), 1, WH) == at(2026, 3, 3, 9, 30)
    assert due(at(2026, 3, 3, 7, 0), 1, WH) == at(2026, 3, 3, 9, 30)
    assert due(at(2026, 3, 2, 8, 30), 8, WH) == at(2026, 3, 3, 9, 0)  # 7.5 h a day


def test_working_hours_skip_a_weekend(holidays):
    assert due(at(2026, 3, 6, 17, 0), 2, WH) == at(2026, 3, 9, 9, 30)
    assert due(at(2026, 3, 7, 10, 0), 1, WH) == at(2026, 3, 9, 9, 30)


def test_working_days_are_counted_from_the_next_day(holidays):
    # 《民法典》第二百零一条: the day the period starts is not counted.
    assert due(at(2026, 3, 2, 8, 0), 1, WD) == at(2026, 3, 3, 18, 0)
    assert due(at(2026, 3, 2, 23, 59), 1, WD) == at(2026, 3, 3, 18, 0)
    assert due(at(2026, 3, 6, 10, 0), 1, WD) == at(2026, 3, 9, 18, 0)  # Friday → Monday
    assert due(at(2026, 3, 7, 10, 0), 1, WD) == at(2026, 3, 9, 18, 0)  # Saturday → Monday


# --- calendar clock -------------------------------------------------------------------------


def test_calendar_hours_ignore_holidays_and_nights(holidays):
    assert due(at(2026, 2, 14, 22, 0), 24, CH) == at(2026, 2, 15, 22, 0)
    assert due(at(2026, 2, 16, 3, 0), 4, CH) == at(2026, 2, 16, 7, 0)
    assert due(at(2025, 10, 1, 23, 50), 30, CM) == at(2025, 10, 2, 0, 20)


def test_deadlines_are_aware_and_in_the_district_time_zone(holidays):
    start_utc = datetime(2026, 3, 2, 3, 30, tzinfo=UTC)  # 11:30 in Shenzhen
    result = due(start_utc, 1, WH)
    assert result == at(2026, 3, 2, 14, 30)
    assert result.utcoffset() == at(2026, 3, 2).utcoffset()
    assert due(start_utc, 10, CM).tzinfo is not None


def test_naive_moments_and_empty_limits_are_refused(holidays):
    with pytest.raises(ValueError, match="aware"):
        due(datetime(2026, 3, 2, 10, 0), 1, WH)
    with pytest.raises(ValueError, match="at least 1"):
        due(at(2026, 3, 2, 10), 0, WD)
    with pytest.raises(ValueError, match="unknown time unit"):
        due(at(2026, 3, 2, 10), 1, "fortnights")


def test_a_year_without_holiday_data_counts_weekends_only_and_warns(holidays, caplog):
    cal = WorkingCalendar({})
    with caplog.at_level(logging.WARNING, logger="incidents.calendar"):
        # 1 May 2028 is a Monday: without data it is an ordinary working day.
        assert cal.deadline(at(2028, 4, 28, 10, 0), 1, WD) == at(2028, 5, 1, 18, 0)
        cal.deadline(at(2028, 4, 28, 10, 0), 2, WD)
    assert [r.message for r in caplog.records].count(
        "working calendar has no holidays for 2028: counting weekends only "
        "(load them with manage.py incidents_load_calendar)"
    ) == 1


# --- working hours setting ------------------------------------------------------------------


def test_the_working_day_comes_from_the_setting(holidays, settings):
    settings.CITYOPS_WORKING_HOURS = "09:00-17:00"
    assert due(at(2026, 3, 2, 16, 0), 2, WH) == at(2026, 3, 3, 10, 0)
    assert due(at(2026, 3, 2, 10, 0), 1, WD) == at(2026, 3, 3, 17, 0)


@pytest.mark.parametrize("text", ["", "08:30", "12:00-08:30", "08:30-12:00,11:00-18:00", "8h-12h"])
def test_a_bad_working_hours_setting_is_refused(text):
    with pytest.raises(ImproperlyConfigured):
        parse_working_hours(text)


# --- elapsed fraction -----------------------------------------------------------------------


def test_a_weekend_does_not_use_up_a_working_day_limit(holidays):
    start = at(2026, 3, 6, 10, 0)  # Friday
    end = due(start, 1, WD)  # Monday 18:00; 6 h on Friday + 7.5 h on Monday
    fraction = calendar.elapsed_fraction
    assert fraction(start, end, at(2026, 3, 6, 18, 0), unit=WD) == pytest.approx(6 / 13.5)
    assert fraction(start, end, at(2026, 3, 8, 23, 0), unit=WD) == pytest.approx(6 / 13.5)
    assert fraction(start, end, at(2026, 3, 9, 15, 18), unit=WD) == pytest.approx(0.8)
    assert fraction(start, end, end, unit=WD) == 1.0
    assert fraction(start, end, at(2026, 3, 10, 9, 30), unit=WD) > 1.0
    assert fraction(start, end, at(2026, 3, 6, 9, 0), unit=WD) == 0.0


def test_the_fraction_of_a_calendar_limit_is_wall_clock_time(holidays):
    start = at(2026, 2, 15, 8, 0)  # Spring Festival: the calendar clock keeps running
    end = due(start, 10, CH)
    assert calendar.elapsed_fraction(start, end, at(2026, 2, 15, 16, 0), unit=CH) == 0.8
    assert calendar.elapsed_fraction(start, end, at(2026, 2, 15, 19, 0), unit=CH) == 1.1


def test_a_working_limit_reported_during_the_holiday_starts_counting_after_it(holidays):
    start = at(2026, 2, 16, 9, 0)
    end = due(start, 4, WH)
    assert end == at(2026, 2, 24, 14, 30)
    assert calendar.elapsed_fraction(start, end, at(2026, 2, 23, 23, 0), unit=WH) == 0.0
    assert calendar.elapsed_fraction(start, end, at(2026, 2, 24, 11, 42), unit=WH) == 0.8
