"""Changes to the incidents app's reference data: categories, stage limits, the working calendar.

Two loaders put the shipped data into the database and can be re-run at any time
(incidents_load_categories, incidents_load_calendar): they create what is missing, update what
the shipped data changed, and leave alone whatever an administrator edited in the admin — unless
asked to `reset`, which restores the shipped values. The admin saves through `category_save`,
`stage_limit_save` and `calendar_day_save`/`calendar_day_delete`, which mark rows as edited.

(Services for incidents themselves — intake, the workflow — arrive with the rest of issue 3.)
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from incidents import calendar
from incidents.catalogue import DATA_DIR, CategoryDefault, LimitDefault, read_catalogue
from incidents.models import (
    CalendarDay,
    CalendarDayKind,
    Category,
    StageLimit,
)

log = logging.getLogger(__name__)

HOLIDAYS_FILE = DATA_DIR / "holidays.csv"

# Fields of a category that come from the standard (or the local class) and are always refreshed.
CATEGORY_REFERENCE_FIELDS = (
    "name",
    "kind",
    "major_code",
    "major_name",
    "component_name",
    "is_local",
    "source",
)
# Local settings: refreshed only while nobody has edited the category (or on reset).
CATEGORY_SETTING_FIELDS = (
    "default_severity",
    "department_code",
    "department_text",
    "department_inferred",
    "active",
)
LIMIT_FIELDS = ("amount", "unit", "basis", "source_text", "note")
CALENDAR_FIELDS = ("kind", "name", "provisional", "source", "note", "from_data")


class ReferenceDataError(Exception):
    """Refused reference data (a bad holiday row, an inconsistent catalogue)."""


@dataclass
class Tally:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_edited: int = 0
    removed: int = 0

    def as_text(self, removed_label: str = "removed") -> str:
        return (
            f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.kept_edited} kept (edited in the admin), {self.removed} {removed_label}"
        )


@dataclass
class CategoryLoadReport:
    categories: Tally = field(default_factory=Tally)
    limits: Tally = field(default_factory=Tally)
    total_categories: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def as_text(self) -> str:
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(self.by_kind.items()))
        return (
            f"categories: {self.categories.as_text('deactivated')}; "
            f"stage limits: {self.limits.as_text()}; "
            f"{self.total_categories} categories in the catalogue ({kinds})"
        )


@dataclass
class CalendarLoadReport:
    days: Tally = field(default_factory=Tally)
    years: list[int] = field(default_factory=list)
    provisional_years: list[int] = field(default_factory=list)

    def as_text(self) -> str:
        text = f"calendar days: {self.days.as_text()}; years {', '.join(map(str, self.years))}"
        if self.provisional_years:
            text += (
                f"; PROVISIONAL (check against the State Council notice): "
                f"{', '.join(map(str, self.provisional_years))}"
            )
        return text


def _assign(obj: Any, values: dict[str, Any]) -> bool:
    """Set the values on obj; True if anything changed."""
    changed = False
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    return changed


def _category_values(default: CategoryDefault) -> tuple[dict[str, Any], dict[str, Any]]:
    reference = {
        "name": default.name,
        "kind": default.kind,
        "major_code": default.major_code,
        "major_name": default.major_name,
        "component_name": default.component_name,
        "is_local": default.is_local,
        "source": default.source,
    }
    settings = {
        "default_severity": default.default_severity,
        "department_code": default.department_code,
        "department_text": default.department_text,
        "department_inferred": default.department_inferred,
        "active": True,
    }
    return reference, settings


def _limit_values(default: LimitDefault) -> dict[str, Any]:
    return {name: getattr(default, name) for name in LIMIT_FIELDS}


def categories_load(*, data_dir: Path = DATA_DIR, reset: bool = False) -> CategoryLoadReport:
    """Store the shipped catalogue (97 events, 153 components, the local emergencies).

    Re-runnable: a second run changes nothing. Names and codes always follow the data; a
    category's department, severity and active flag, and each stage limit, keep the values an
    administrator set (edited_at) unless `reset`. Categories gone from the data are deactivated,
    never deleted (cases refer to them).
    """
    catalogue = read_catalogue(data_dir)
    report = CategoryLoadReport(total_categories=len(catalogue))
    for default in catalogue:
        report.by_kind[default.kind] = report.by_kind.get(default.kind, 0) + 1
    now = timezone.now()
    with transaction.atomic():
        existing = {c.code: c for c in Category.objects.select_for_update().order_by("code")}
        new_categories: list[Category] = []
        changed_categories: list[Category] = []
        for default in catalogue:
            reference, local_settings = _category_values(default)
            category = existing.get(default.code)
            if category is None:
                new_categories.append(Category(code=default.code, **reference, **local_settings))
                continue
            changed = _assign(category, reference)
            if reset or category.edited_at is None:
                changed |= _assign(category, {**local_settings, "edited_at": None})
                if category.edited_by_id is not None:
                    category.edited_by = None
                    changed = True
            else:
                report.categories.kept_edited += 1
            if changed:
                category.updated_at = now
                changed_categories.append(category)
                report.categories.updated += 1
            elif reset or category.edited_at is None:
                report.categories.unchanged += 1
        Category.objects.bulk_create(new_categories, batch_size=500)
        report.categories.created = len(new_categories)
        Category.objects.bulk_update(
            changed_categories,
            [
                *CATEGORY_REFERENCE_FIELDS,
                *CATEGORY_SETTING_FIELDS,
                "edited_at",
                "edited_by",
                "updated_at",
            ],
            batch_size=500,
        )

        wanted = {default.code for default in catalogue}
        for category in existing.values():
            if category.code not in wanted and category.active:
                if category.edited_at is not None and not reset:
                    continue
                category.active = False
                category.updated_at = now
                category.save(update_fields=["active", "updated_at"])
                report.categories.removed += 1
                log.warning("category %s is no longer in the catalogue: deactivated", category)

        report.limits = _load_limits(catalogue, reset=reset)
    return report


def _load_limits(catalogue: Iterable[CategoryDefault], *, reset: bool) -> Tally:
    tally = Tally()
    ids = dict(Category.objects.values_list("code", "id"))
    limits = {
        (limit.category_id, limit.stage): limit
        for limit in StageLimit.objects.select_for_update().order_by("id")
    }
    new_limits: list[StageLimit] = []
    changed_limits: list[StageLimit] = []
    for default in catalogue:
        category_id = ids[default.code]
        for limit_default in default.limits:
            values = _limit_values(limit_default)
            limit = limits.get((category_id, limit_default.stage))
            if limit is None:
                new_limits.append(
                    StageLimit(category_id=category_id, stage=limit_default.stage, **values)
                )
            elif limit.edited_at is not None and not reset:
                tally.kept_edited += 1
            else:
                changed = _assign(limit, {**values, "edited_at": None})
                if limit.edited_by_id is not None:
                    limit.edited_by = None
                    changed = True
                if changed:
                    changed_limits.append(limit)
                    tally.updated += 1
                else:
                    tally.unchanged += 1
    StageLimit.objects.bulk_create(new_limits, batch_size=1000)
    tally.created = len(new_limits)
    StageLimit.objects.bulk_update(
        changed_limits, [*LIMIT_FIELDS, "edited_at", "edited_by"], batch_size=1000
    )
    return tally


def category_save(*, category: Category, by: Any = None, changed: Iterable[str] = ()) -> Category:
    """Save an administrator's change to a category's local settings; marks it as edited."""
    category.full_clean()
    with transaction.atomic():
        if list(changed):
            category.edited_at = timezone.now()
            category.edited_by = by if getattr(by, "pk", None) else None
        category.save()
    return category


def stage_limit_save(
    *, limit: StageLimit, by: Any = None, changed: Iterable[str] = ()
) -> StageLimit:
    """Save an administrator's change to a stage limit; an edited limit survives reloads."""
    limit.full_clean()
    with transaction.atomic():
        if list(changed):
            limit.edited_at = timezone.now()
            limit.edited_by = by if getattr(by, "pk", None) else None
        limit.save()
    return limit


def calendar_day_save(*, day: CalendarDay, by: Any = None) -> CalendarDay:
    """Add or correct a holiday / make-up day; the calendar cache of every process follows."""
    day.full_clean()
    with transaction.atomic():
        day.edited_at = timezone.now()
        day.edited_by = by if getattr(by, "pk", None) else None
        day.save()
        calendar.invalidate_on_commit()
    return day


def calendar_day_delete(*, day: CalendarDay) -> None:
    with transaction.atomic():
        day.delete()
        calendar.invalidate_on_commit()


@dataclass(frozen=True)
class HolidayRow:
    date: date
    kind: str
    name: str
    provisional: bool
    source: str
    note: str


def read_holidays(path: Path = HOLIDAYS_FILE) -> list[HolidayRow]:
    """Rows of a holidays file (date,kind,name,provisional,source,note), checked."""
    rows: list[HolidayRow] = []
    seen: set[date] = set()
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for number, raw in enumerate(csv.DictReader(handle), start=2):
            where = f"{path.name} line {number}"
            try:
                day = date.fromisoformat((raw.get("date") or "").strip())
            except ValueError:
                raise ReferenceDataError(f"{where}: {raw.get('date')!r} is not a date") from None
            kind = (raw.get("kind") or "").strip()
            if kind not in CalendarDayKind.values:
                raise ReferenceDataError(
                    f"{where}: kind {kind!r} is not one of {', '.join(CalendarDayKind.values)}"
                )
            if kind == CalendarDayKind.MAKEUP_WORKDAY and day.weekday() < 5:
                raise ReferenceDataError(f"{where}: make-up workday {day} is not a weekend day")
            if day in seen:
                raise ReferenceDataError(f"{where}: {day} appears twice")
            seen.add(day)
            provisional = (raw.get("provisional") or "0").strip().lower()
            rows.append(
                HolidayRow(
                    date=day,
                    kind=kind,
                    name=(raw.get("name") or "").strip(),
                    provisional=provisional in ("1", "true", "yes"),
                    source=(raw.get("source") or "").strip(),
                    note=(raw.get("note") or "").strip(),
                )
            )
    return rows


def calendar_load(*, path: Path = HOLIDAYS_FILE, reset: bool = False) -> CalendarLoadReport:
    """Store the holidays and make-up days of a holidays file; re-runnable.

    Days edited or added in the admin are kept unless `reset` (which restores the file's value
    for its dates; days only an admin added stay). A day that came from the file and is no
    longer in it is removed — so a provisional arrangement replaced by the official one leaves
    no stale make-up day behind.
    """
    rows = read_holidays(path)
    report = CalendarLoadReport(
        years=sorted({row.date.year for row in rows}),
        provisional_years=sorted({row.date.year for row in rows if row.provisional}),
    )
    tally = report.days
    now = timezone.now()
    with transaction.atomic():
        existing = {day.date: day for day in CalendarDay.objects.select_for_update()}
        new_days: list[CalendarDay] = []
        changed_days: list[CalendarDay] = []
        for row in rows:
            values = {
                "kind": row.kind,
                "name": row.name,
                "provisional": row.provisional,
                "source": row.source,
                "note": row.note,
                "from_data": True,
            }
            day = existing.get(row.date)
            if day is None:
                new_days.append(CalendarDay(date=row.date, **values))
            elif day.edited_at is not None and not reset:
                tally.kept_edited += 1
            else:
                changed = _assign(day, {**values, "edited_at": None})
                if day.edited_by_id is not None:
                    day.edited_by = None
                    changed = True
                if changed:
                    day.updated_at = now
                    changed_days.append(day)
                    tally.updated += 1
                else:
                    tally.unchanged += 1
        CalendarDay.objects.bulk_create(new_days)
        tally.created = len(new_days)
        CalendarDay.objects.bulk_update(
            changed_days, [*CALENDAR_FIELDS, "edited_at", "edited_by", "updated_at"]
        )
        in_file = {row.date for row in rows}
        stale = [
            day.pk
            for day in existing.values()
            if day.from_data and day.date not in in_file and (day.edited_at is None or reset)
        ]
        if stale:
            tally.removed = CalendarDay.objects.filter(pk__in=stale).delete()[0]
        # bulk writes send no signals: drop the cached calendar explicitly.
        calendar.invalidate_on_commit()
    return report
