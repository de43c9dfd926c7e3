"""The holiday and 调休 data: what is shipped, and reloads that keep what the admin changed."""

from __future__ import annotations

from datetime import date
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from incidents import calendar
from incidents.models import CalendarDay, CalendarDayKind, TimeUnit
from incidents.services import HOLIDAYS_FILE, calendar_day_save, calendar_load
from tests.incidents.clock import at

pytestmark = pytest.mark.django_db

OFFICIAL_MAKEUP_DAYS = {
    # 国办发明电〔2024〕12号
    date(2025, 1, 26),
    date(2025, 2, 8),
    date(2025, 4, 27),
    date(2025, 9, 28),
    date(2025, 10, 11),
    # 国务院办公厅关于2026年部分节假日安排的通知 (2025-11-04)
    date(2026, 1, 4),
    date(2026, 2, 14),
    date(2026, 2, 28),
    date(2026, 5, 9),
    date(2026, 9, 20),
    date(2026, 10, 10),
}


def _makeup(year: int) -> set[date]:
    return set(
        CalendarDay.objects.filter(
            kind=CalendarDayKind.MAKEUP_WORKDAY, date__year=year
        ).values_list("date", flat=True)
    )


def _holidays(year: int, name: str) -> list[date]:
    return list(
        CalendarDay.objects.filter(
            kind=CalendarDayKind.HOLIDAY, date__year=year, name=name
        ).values_list("date", flat=True)
    )


def test_the_official_2025_and_2026_arrangements_are_loaded(holidays):
    assert _makeup(2025) | _makeup(2026) == OFFICIAL_MAKEUP_DAYS
    spring_2025 = _holidays(2025, "春节")
    assert (spring_2025[0], spring_2025[-1], len(spring_2025)) == (
        date(2025, 1, 28),
        date(2025, 2, 4),
        8,
    )
    national_2025 = _holidays(2025, "国庆节、中秋节")
    assert (national_2025[0], national_2025[-1]) == (date(2025, 10, 1), date(2025, 10, 8))
    spring_2026 = _holidays(2026, "春节")
    assert (spring_2026[0], spring_2026[-1], len(spring_2026)) == (
        date(2026, 2, 15),
        date(2026, 2, 23),
        9,
    )
    assert not CalendarDay.objects.filter(date__year__in=[2025, 2026], provisional=True).exists()
    assert "国办发明电〔2024〕12号" in CalendarDay.objects.get(date=date(2025, 1, 28)).source


def test_2027_is_provisional_and_says_so(holidays):
    days_2027 = CalendarDay.objects.filter(date__year=2027)
    assert days_2027.exists()
    assert not days_2027.filter(provisional=False).exists()
    assert all("暂定" in day.note for day in days_2027)
    assert holidays.provisional_years == [2027]
    # Spring Festival 2027 starts on 除夕 (Friday 5 February) as the 2025 rules prescribe.
    assert _holidays(2027, "春节")[0] == date(2027, 2, 5)


def test_every_make_up_day_is_a_weekend_day(holidays):
    for day in CalendarDay.objects.filter(kind=CalendarDayKind.MAKEUP_WORKDAY):
        assert day.date.weekday() >= 5, day


def test_loading_the_calendar_twice_changes_nothing(holidays):
    count = CalendarDay.objects.count()
    again = calendar_load()
    assert CalendarDay.objects.count() == count == holidays.days.created
    assert (again.days.created, again.days.updated, again.days.removed) == (0, 0, 0)
    assert again.days.unchanged == count


def test_the_command_names_the_provisional_years():
    out = StringIO()
    call_command("incidents_load_calendar", stdout=out)
    assert "PROVISIONAL" in out.getvalue() and "2027" in out.getvalue()


def test_a_day_corrected_in_the_admin_is_kept_until_reset(holidays, admin_user):
    day = CalendarDay.objects.get(date=date(2027, 2, 20))
    day.kind, day.name = CalendarDayKind.HOLIDAY, "春节（已按通知更正）"
    calendar_day_save(day=day, by=admin_user)
    report = calendar_load()
    assert report.days.kept_edited == 1
    day.refresh_from_db()
    assert day.kind == CalendarDayKind.HOLIDAY
    calendar_load(reset=True)
    day.refresh_from_db()
    assert (day.kind, day.edited_at) == (CalendarDayKind.MAKEUP_WORKDAY, None)


def test_a_replaced_arrangement_leaves_no_stale_make_up_day(holidays, tmp_path: Path):
    # The official 2027 notice moves a make-up day: the provisional one must disappear.
    lines = HOLIDAYS_FILE.read_text(encoding="utf-8").splitlines()
    replaced = [
        line.replace("2027-05-08,makeup_workday", "2027-04-25,makeup_workday") for line in lines
    ]
    official = tmp_path / "holidays.csv"
    official.write_text("\n".join(replaced) + "\n", encoding="utf-8")
    friday = at(2027, 5, 7, 17, 30)
    assert calendar.deadline(friday, 1, TimeUnit.WORKING_HOURS) == at(2027, 5, 8, 9, 0)

    report = calendar_load(path=official)
    assert (report.days.created, report.days.removed) == (1, 1)
    assert not CalendarDay.objects.filter(date=date(2027, 5, 8)).exists()
    assert CalendarDay.objects.get(date=date(2027, 4, 25)).kind == CalendarDayKind.MAKEUP_WORKDAY
    assert calendar.deadline(friday, 1, TimeUnit.WORKING_HOURS) == at(2027, 5, 10, 9, 0)


def test_bad_rows_are_refused_with_the_line(tmp_path: Path):
    bad = tmp_path / "holidays.csv"
    bad.write_text(
        "date,kind,name,provisional,source,note\n2026-03-10,makeup_workday,错误,0,,\n",
        encoding="utf-8",
    )
    with pytest.raises(CommandError, match="line 2: make-up workday 2026-03-10"):
        call_command("incidents_load_calendar", "--file", str(bad), verbosity=0)
    assert not CalendarDay.objects.exists()


def test_other_processes_see_a_change_within_the_recheck_interval(holidays, settings):
    """A change made elsewhere (no signal here) is noticed by the fingerprint check."""
    settings.CITYOPS_CALENDAR_RECHECK_SECONDS = 0
    friday = at(2026, 3, 6, 10, 0)
    assert calendar.deadline(friday, 1, TimeUnit.WORKING_DAYS) == at(2026, 3, 9, 18, 0)
    # Another process adds a holiday: simulated with a write that sends no signal.
    CalendarDay.objects.bulk_create(
        [
            CalendarDay(
                date=date(2026, 3, 9),
                kind=CalendarDayKind.HOLIDAY,
                name="停工",
                updated_at=timezone.now(),
            )
        ]
    )
    assert calendar.deadline(friday, 1, TimeUnit.WORKING_DAYS) == at(2026, 3, 10, 18, 0)
