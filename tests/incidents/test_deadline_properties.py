"""Properties of deadline arithmetic over the shipped 2025–2027 calendar, checked by Hypothesis:
more time never ends earlier, a later start never ends earlier, working-time limits end inside
working time and contain exactly the working time they promise."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incidents import calendar
from incidents.models import WORKING_UNITS, TimeUnit
from tests.incidents.clock import SHANGHAI

pytestmark = pytest.mark.django_db

# Starts within the years the shipped calendar covers; limits up to what a real limit might be.
starts = st.datetimes(
    min_value=datetime(2025, 1, 1),
    max_value=datetime(2027, 10, 31),
    timezones=st.just(SHANGHAI),
)
AMOUNTS = {
    TimeUnit.WORKING_HOURS: st.integers(1, 120),
    TimeUnit.WORKING_DAYS: st.integers(1, 40),
    TimeUnit.CALENDAR_HOURS: st.integers(1, 240),
    TimeUnit.CALENDAR_MINUTES: st.integers(1, 600),
}
limits = st.sampled_from(list(AMOUNTS)).flatmap(
    lambda unit: st.tuples(st.just(unit), AMOUNTS[unit], AMOUNTS[unit])
)


def test_deadlines_are_monotonic_and_working_limits_end_in_working_time(holidays):
    cal = calendar.working_calendar()

    @settings(max_examples=400, deadline=None, database=None)
    @given(start=starts, limit=limits, later_by=st.integers(0, 7 * 24 * 60))
    def check(start: datetime, limit: tuple[str, int, int], later_by: int) -> None:
        unit, first, second = limit
        small, large = sorted((first, second))
        end_small = cal.deadline(start, small, unit)
        end_large = cal.deadline(start, large, unit)
        assert start < end_small
        assert end_small <= end_large
        if small < large:
            assert end_small < end_large
        # A later start never ends earlier.
        later = start + timedelta(minutes=later_by)
        assert cal.deadline(later, small, unit) >= end_small
        # The limit is used up exactly at the deadline.
        assert cal.elapsed_fraction(start, end_small, end_small, unit=unit) == pytest.approx(1.0)
        if unit in WORKING_UNITS:
            assert cal.is_working_time(end_small), (start, small, unit, end_small)
            assert cal.is_working_day(end_small.date())
        if unit == TimeUnit.WORKING_HOURS:
            assert cal.working_seconds(start, end_small) == pytest.approx(small * 3600)
        if unit == TimeUnit.WORKING_DAYS:
            # Ends at the close of the small-th working day after the start's day.
            day, counted = start.date(), 0
            while day < end_small.date():
                day += timedelta(days=1)
                counted += cal.is_working_day(day)
            assert counted == small
            assert end_small.timetz().replace(tzinfo=None) == cal.periods[-1][1]

    check()


def test_a_deadline_is_never_moved_by_holidays_on_the_calendar_clock(holidays):
    cal = calendar.working_calendar()

    @settings(max_examples=200, deadline=None, database=None)
    @given(start=starts, hours=st.integers(1, 240))
    def check(start: datetime, hours: int) -> None:
        assert cal.deadline(start, hours, TimeUnit.CALENDAR_HOURS) == start + timedelta(hours=hours)

    check()
