"""The moment a fraction of a limit has passed (incidents.calendar.moment_at_fraction, warning_at):
in working time for working-time limits, wall-clock time otherwise — the inverse of
elapsed_fraction. The escalation worker warns at this moment (80 %)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incidents import calendar
from incidents.calendar import WorkingCalendar
from incidents.models import CalendarDayKind, TimeUnit
from tests.incidents.clock import SHANGHAI, at

WD, WH = TimeUnit.WORKING_DAYS, TimeUnit.WORKING_HOURS
CH, CM = TimeUnit.CALENDAR_HOURS, TimeUnit.CALENDAR_MINUTES

# A fixed calendar: weekends, plus a holiday on Wednesday 2026-12-02 and a make-up Saturday
# 2026-12-05 (invented for the arithmetic; the shipped calendar is tested below).
FIXED = WorkingCalendar(
    {date(2026, 12, 2): CalendarDayKind.HOLIDAY, date(2026, 12, 5): CalendarDayKind.MAKEUP_WORKDAY}
)


def warn(start: datetime, amount: int, unit: str, cal: WorkingCalendar = FIXED) -> datetime:
    return cal.moment_at_fraction(start, cal.deadline(start, amount, unit), 0.8, unit=unit)


def test_working_hours_skip_the_weekend():
    # Friday 16:00 + 4 h: due Monday 10:30; 80 % = 3 h 12 min = Friday 2 h + Monday 1 h 12 min.
    assert FIXED.deadline(at(2026, 11, 27, 16, 0), 4, WH) == at(2026, 11, 30, 10, 30)
    assert warn(at(2026, 11, 27, 16, 0), 4, WH) == at(2026, 11, 30, 9, 42)


def test_working_hours_skip_a_holiday_and_count_a_make_up_day():
    # Tuesday 17:00 + 4 h: 1 h Tuesday, Wednesday off, 3 h Thursday → 11:30; 80 % → 10:42.
    assert warn(at(2026, 12, 1, 17, 0), 4, WH) == at(2026, 12, 3, 10, 42)
    # Friday 17:00 + 2 h: 1 h Friday, the make-up Saturday 08:30 + 0.6 h → 09:06.
    assert warn(at(2026, 12, 4, 17, 0), 2, WH) == at(2026, 12, 5, 9, 6)


def test_working_hours_over_lunch_and_at_the_end_of_a_period():
    # 11:00 + 2 h = 14:00 (1 h before lunch, 1 h after); 80 % = 1 h 36 min → 14:36.
    assert warn(at(2026, 11, 30, 11, 0), 2, WH) == at(2026, 11, 30, 14, 36)
    # Half of 7 working hours from 08:30 uses up the morning exactly: 12:00, not 14:00.
    start = at(2026, 11, 30, 8, 30)
    deadline = FIXED.deadline(start, 7, WH)
    assert deadline == at(2026, 11, 30, 17, 30)
    assert FIXED.moment_at_fraction(start, deadline, 0.5, unit=WH) == at(2026, 11, 30, 12, 0)


def test_working_days_count_the_working_time_up_to_the_deadline():
    # Friday 09:00 + 1 working day → Monday 18:00: 7 h on Friday + 7.5 h on Monday = 14.5 h;
    # 80 % = 11.6 h → Monday 08:30 + 4.6 h (3.5 h morning, 1.1 h afternoon) = 15:06.
    assert warn(at(2026, 11, 27, 9, 0), 1, WD) == at(2026, 11, 30, 15, 6)
    # Reported on Saturday: none of the weekend counts; 80 % of Monday's 7.5 h is 6 h:
    # 3.5 h in the morning, 2.5 h from 14:00 → 16:30.
    assert warn(at(2026, 11, 28, 10, 0), 1, WD) == at(2026, 11, 30, 16, 30)


def test_calendar_units_run_on_the_wall_clock():
    assert warn(at(2026, 11, 27, 16, 0), 30, CM) == at(2026, 11, 27, 16, 24)
    # 24 natural hours from Friday evening: the night and the weekend count.
    assert warn(at(2026, 11, 27, 20, 0), 24, CH) == at(2026, 11, 28, 15, 12)
    # A clock without a limit (an extension granted where none was configured): wall clock.
    start, deadline = at(2026, 11, 27, 20, 0), at(2026, 11, 28, 20, 0)
    assert FIXED.moment_at_fraction(start, deadline, 0.8, unit=None) == at(2026, 11, 28, 15, 12)


def test_the_ends_of_the_range_and_bad_arguments():
    start, deadline = at(2026, 11, 27, 16, 0), at(2026, 11, 30, 10, 30)
    assert FIXED.moment_at_fraction(start, deadline, 0, unit=WH) == start
    assert FIXED.moment_at_fraction(start, deadline, 1, unit=WH) == deadline
    assert FIXED.moment_at_fraction(deadline, start, 0.8, unit=WH) == start  # nothing left
    for fraction in (-0.1, 1.5, float("nan"), True):
        with pytest.raises(ValueError, match="fraction"):
            FIXED.moment_at_fraction(start, deadline, fraction, unit=WH)
    with pytest.raises(ValueError, match="naive"):
        FIXED.moment_at_fraction(datetime(2026, 11, 27, 16, 0), deadline, 0.8, unit=WH)


def test_the_whole_limit_ends_at_the_deadline_not_at_the_next_periods_start():
    # Found by the property below: a start with microseconds, one working day; the whole of it
    # used up, in float seconds, came out a hair past 18:00 and landed on the next 08:30.
    start = datetime(2026, 11, 2, 10, 0, 0, 64936, tzinfo=SHANGHAI)
    deadline = FIXED.deadline(start, 1, WD)
    assert FIXED.moment_at_fraction(start, deadline, 1.0, unit=WD) == deadline


@settings(max_examples=200, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2026, 11, 1), max_value=datetime(2026, 12, 31)),
    amount=st.integers(min_value=1, max_value=40),
    unit=st.sampled_from([WH, WD, CH, CM]),
    fraction=st.floats(min_value=0.01, max_value=1.0),
)
def test_it_is_the_inverse_of_elapsed_fraction(
    start: datetime, amount: int, unit: str, fraction: float
):
    start = start.replace(tzinfo=SHANGHAI)
    deadline = FIXED.deadline(start, amount, unit)
    moment = FIXED.moment_at_fraction(start, deadline, fraction, unit=unit)
    assert start <= moment <= deadline
    assert FIXED.elapsed_fraction(start, deadline, moment, unit=unit) == pytest.approx(
        fraction, abs=1e-6
    )
    # The first such moment: a minute earlier, less of the limit had passed (for working
    # units, unless that minute was outside working time — then the same amount had passed).
    earlier = FIXED.elapsed_fraction(start, deadline, moment - timedelta(minutes=1), unit=unit)
    assert earlier <= fraction + 1e-9
    if unit in (CH, CM) or FIXED.is_working_time(moment - timedelta(seconds=30)):
        assert earlier < fraction


@pytest.mark.django_db
def test_warning_at_uses_the_shipped_calendar(holidays):
    # The make-up Saturday before Spring Festival 2026, 17:00, 4 working hours: 1 h that day,
    # 2/15–2/23 off, due Tuesday 2/24 11:30; the warning at 80 % is 2/24 10:42.
    start = at(2026, 2, 14, 17, 0)
    deadline = calendar.deadline(start, 4, WH)
    assert deadline == at(2026, 2, 24, 11, 30)
    assert calendar.warning_at(start, deadline, unit=WH) == at(2026, 2, 24, 10, 42)
    assert calendar.WARNING_FRACTION == 0.8
