"""Changes to the incidents app's reference data: categories, stage limits, the working calendar.

Two loaders put the shipped data into the database and can be re-run at any time
(incidents_load_categories, incidents_load_calendar): they create what is missing, update what
the shipped data changed, and leave alone whatever an administrator edited in the admin — unless
asked to `reset`, which restores the shipped values. The admin saves through `category_save`,
`stage_limit_save` and `calendar_day_save`/`calendar_day_delete`, which mark rows as edited.

Incidents: `incident_report` takes a case in (locates it, numbers it, gives it to its owner), and
one function per workflow action moves it (`incident_register`, `incident_dispatch`, …; the
table of actions is incidents.workflow). Each runs in one transaction: it locks the case's row,
checks the action against the table and the user's role and place *inside* the lock (so of two
concurrent actions on one case exactly one applies), changes the row, starts the next stage's
clock, writes the timeline row (IncidentTransition), the audit entry and the outbox event. They
take keyword arguments only and return the updated incident; refusals are exceptions:
IncidentInputError (a field and a reason; the API answers 400), IllegalTransition (409, with
the allowed actions), ActionNotPermitted (403 — or 404 when the user may not even see the case).
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.departments import department_short_names_text, known_departments
from accounts.models import Role, User
from audit.services import audit_record
from config.db_backends.bulk import increment_counters
from gridmap.locator import (
    InvalidCoordinates,
    Location,
    NoActiveGeneration,
    OutsideJurisdiction,
    Resolution,
    check_lonlat,
    locate,
)
from gridmap.models import STORAGE_SRID
from incidents import calendar, events, selectors, workflow
from incidents.catalogue import (
    DATA_DIR,
    CategoryDefault,
    LimitDefault,
    read_catalogue,
)
from incidents.location import point_hexewkb
from incidents.models import (
    CLOSED_STATUSES,
    FINISHED_STATUSES,
    SATISFACTION_MAX,
    SATISFACTION_MIN,
    SEVERITY_ORDER,
    CalendarDay,
    CalendarDayKind,
    Category,
    Channel,
    Incident,
    IncidentNumberCounter,
    IncidentStatus,
    IncidentSupport,
    IncidentTransition,
    OwnerLevel,
    SendBackReason,
    Severity,
    StageLimit,
)
from incidents.workflow import ActionNotPermitted, Transition
from incidents.workflow import IllegalTransition as IllegalTransition  # re-exported for callers
from realtime.outbox import publish, publish_batch

log = logging.getLogger(__name__)

# An event as publish_batch takes it: (type, payload, scopes).
Event = tuple[str, dict[str, Any], list[str]]

HOLIDAYS_FILE = DATA_DIR / "holidays.csv"

# Fields of a category that come from the standard (or the local class), with their English names
# (category_names_en.csv): always refreshed from the data, never edited in the admin.
CATEGORY_REFERENCE_FIELDS = (
    "name",
    "name_en",
    "kind",
    "major_code",
    "major_name",
    "major_name_en",
    "component_name",
    "component_name_en",
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
# What the admin may change, and so what an edit's audit entry compares.
CATEGORY_EDITABLE_FIELDS = (
    *CATEGORY_SETTING_FIELDS,
    "duplicate_radius_m",
    "duplicate_window_hours",
)
CALENDAR_EDITABLE_FIELDS = ("kind", "name", "provisional", "source", "note")


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
        "name_en": default.name_en,
        "kind": default.kind,
        "major_code": default.major_code,
        "major_name": default.major_name,
        "major_name_en": default.major_name_en,
        "component_name": default.component_name,
        "component_name_en": default.component_name_en,
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
        deactivated: list[str] = []
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
                deactivated.append(category.code)
                log.warning("category %s is no longer in the catalogue: deactivated", category)

        report.limits = _load_limits(catalogue, reset=reset)
        _audit_load(
            "incidents.categories_load",
            "incidents.category",
            reset=reset,
            tallies={"categories": report.categories, "limits": report.limits},
            codes={
                "updated": [category.code for category in changed_categories],
                "deactivated": deactivated,
            },
        )
    return report


def _audit_load(
    action: str,
    obj_type: str,
    *,
    reset: bool,
    tallies: dict[str, Tally],
    codes: dict[str, list[Any]],
) -> None:
    """One audit entry for a run of a loader that changed something (a run that changed nothing
    writes none): the counts, and which rows it updated or removed — with `reset`, those include
    the rows whose administrator's edits it replaced."""
    if not any(t.created or t.updated or t.removed for t in tallies.values()):
        return
    audit_record(
        actor=None,
        action=action,
        obj_type=obj_type,
        obj_id="*",
        before=None,
        after={
            "reset": reset,
            **{name: asdict(tally) for name, tally in tallies.items()},
            **{name: values for name, values in codes.items() if values},
        },
    )


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


def _edited_values(model: type[Any], pk: Any, names: Iterable[str]) -> dict[str, Any] | None:
    """The stored values of `names` of one row (None for a new row), as its audit entry's
    `before`: read inside the caller's transaction, before the save."""
    if pk is None:
        return None
    row = model.objects.filter(pk=pk).values(*names).first()
    return dict(row) if row is not None else None


def _audit_edit(
    obj: Any,
    *,
    action: str,
    names: Iterable[str],
    before: dict[str, Any] | None,
    by: Any,
    ip: str | None,
    which: dict[str, Any] | None = None,
) -> None:
    """The audit entry of an administrator's edit of reference data: the fields that changed,
    before and after (all of `names` for a new row), beside `which` row it is when its id alone
    does not say (a stage limit's category and stage). Nothing is written when nothing changed
    (a form saved as it was)."""
    after = {name: getattr(obj, name) for name in names}
    if before is not None:
        after = {name: value for name, value in after.items() if before.get(name) != value}
        if not after:
            return
        before = {**(which or {}), **{name: before.get(name) for name in after}}
    audit_record(
        actor=by,
        action=action,
        obj_type=obj._meta.label_lower,
        obj_id=obj.pk,
        before=before,
        after={**(which or {}), **after},
        ip=ip,
    )


def _save_edited(
    obj: Any,
    *,
    action: str,
    names: list[str],
    by: Any,
    ip: str | None,
    which: Callable[[], dict[str, Any]],
) -> None:
    """Save an administrator's edit of a reference row (in the caller's transaction): when it
    names fields (`names`), the row is marked as edited, so a reload of the data keeps it, and
    the fields that changed are audited (`action`, with `which` row it is)."""
    if not names:
        obj.save()
        return
    before = _edited_values(type(obj), obj.pk, names)
    obj.edited_at = timezone.now()
    obj.edited_by = by if getattr(by, "pk", None) else None
    obj.save()
    _audit_edit(obj, action=action, names=names, before=before, by=by, ip=ip, which=which())


def category_save(
    *, category: Category, by: Any = None, changed: Iterable[str] = (), ip: str | None = None
) -> Category:
    """Save an administrator's change to a category's local settings; marks it as edited and
    audits the fields that changed (incidents.category_save)."""
    names = [name for name in changed if name in CATEGORY_EDITABLE_FIELDS]
    category.full_clean()
    with transaction.atomic():
        _save_edited(
            category,
            action="incidents.category_save",
            names=names,
            by=by,
            ip=ip,
            which=lambda: {"code": category.code},
        )
    return category


def stage_limit_save(
    *, limit: StageLimit, by: Any = None, changed: Iterable[str] = (), ip: str | None = None
) -> StageLimit:
    """Save an administrator's change to a stage limit; an edited limit survives reloads. The
    audit entry (incidents.stage_limit_save) names the category and stage with the change."""
    names = [name for name in changed if name in LIMIT_FIELDS]
    limit.full_clean()
    with transaction.atomic():
        _save_edited(
            limit,
            action="incidents.stage_limit_save",
            names=names,
            by=by,
            ip=ip,
            which=lambda: {"category": limit.category.code, "stage": limit.stage},
        )
    return limit


def calendar_day_save(*, day: CalendarDay, by: Any = None, ip: str | None = None) -> CalendarDay:
    """Add or correct a holiday / make-up day; the calendar cache of every process follows."""
    day.full_clean()
    names = ["date", *CALENDAR_EDITABLE_FIELDS]
    with transaction.atomic():
        _save_edited(
            day,
            action="incidents.calendar_day_save",
            names=names,
            by=by,
            ip=ip,
            which=lambda: {"date": day.date},
        )
        calendar.invalidate_on_commit()
    return day


def calendar_day_delete(*, day: CalendarDay, by: Any = None, ip: str | None = None) -> None:
    pk = day.pk
    before = {name: getattr(day, name) for name in ["date", *CALENDAR_EDITABLE_FIELDS]}
    with transaction.atomic():
        day.delete()
        audit_record(
            actor=by,
            action="incidents.calendar_day_delete",
            obj_type="incidents.calendarday",
            obj_id=pk,
            before=before,
            after=None,
            ip=ip,
        )
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
        _audit_load(
            "incidents.calendar_load",
            "incidents.calendarday",
            reset=reset,
            tallies={"days": tally},
            codes={
                "updated": [day.date for day in changed_days],
                "removed": [day.date for day in existing.values() if day.pk in stale],
            },
        )
        # bulk writes send no signals: drop the cached calendar explicitly.
        calendar.invalidate_on_commit()
    return report


# --- incidents: intake -------------------------------------------------------------------------

# The readable number's prefix: 龙华 Longhua.
NUMBER_PREFIX = "LH"
DESCRIPTION_MAX = 4000
REASON_MAX = 2000
# The farthest an extension may reach, from now: a safety net for a mistyped year (9999), not a
# policy on how long a case may take (the centre decides each request).
EXTENSION_MAX_DAYS = 366
_PHONE = re.compile(r"^\+?[0-9][0-9 -]{2,18}[0-9]$")
# Roles whose members may be dispatched a case personally when it lies in their place.
_PLACE_ASSIGNEE_ROLES = frozenset({Role.GRID_WORKER, Role.COMMUNITY_STAFF, Role.STREET_OPERATOR})
_HIERARCHY_ROLES = frozenset(
    {Role.DISTRICT_OPERATOR, Role.STREET_OPERATOR, Role.COMMUNITY_STAFF, Role.GRID_WORKER}
)


class IncidentError(Exception):
    """A refused change to a case, with a message meant for the person who asked."""


class IncidentInputError(IncidentError, ValueError):
    """Bad input: `field` names the parameter, `reason` says what is wrong (the API's 400)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class OutsideDistrict(IncidentInputError):
    """The point lies outside the district and beyond its buffer: not this city's case."""

    def __init__(self, distance_m: float) -> None:
        super().__init__(
            "location",
            _("该点在辖区外 %(distance)s 米，超出属地兜底范围，不属于本辖区。")
            % {"distance": f"{distance_m:.0f}"},
        )
        self.distance_m = distance_m


class GeographyUnavailable(IncidentError):
    """No boundary generation is active, so no case can be located (an operations problem)."""


def _required_text(field_name: str, value: str, limit: int = REASON_MAX) -> str:
    text = (value or "").strip()
    if not text:
        raise IncidentInputError(field_name, _("不能为空。"))
    _check_length(field_name, text, limit)
    return text


def _optional_text(field_name: str, value: str, limit: int = REASON_MAX) -> str:
    text = (value or "").strip()
    _check_length(field_name, text, limit)
    return text


def check_text(field_name: str, value: str, *, required: bool, limit: int = REASON_MAX) -> str:
    """A reason or note as the services take it (trimmed; `required`: not empty; at most
    `limit` characters), or IncidentInputError naming the field: what a batch checks once
    before it changes any case."""
    return (_required_text if required else _optional_text)(field_name, value, limit)


def _check_length(field_name: str, text: str, limit: int) -> None:
    if len(text) > limit:
        raise IncidentInputError(
            field_name,
            _("最多 %(limit)s 个字符，现有 %(count)s 个。") % {"limit": limit, "count": len(text)},
        )


def _aware(field_name: str, value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise IncidentInputError(field_name, _("必须是日期和时间。"))
    if timezone.is_naive(value):
        raise IncidentInputError(field_name, _("必须带时区。"))
    return value


def _locate(lon: Any, lat: Any, crs: str) -> Location:
    try:
        return locate(lon, lat, crs)
    except InvalidCoordinates as exc:
        raise IncidentInputError(exc.field, exc.reason) from None
    except OutsideJurisdiction as exc:
        raise OutsideDistrict(exc.distance_m) from None
    except NoActiveGeneration:
        raise GeographyUnavailable(
            _("没有启用的网格边界版本，暂时无法定位案件；请联系系统管理员。")
        ) from None


def _check_reporter(reporter: User | None, location: Location) -> None:
    if reporter is None:
        return  # citizens, the hotline's callers, sensors: no account
    if not reporter.is_active:
        raise ActionNotPermitted(action="report", reason=_("账号已停用。"))
    role = reporter.role
    if role in _HIERARCHY_ROLES:
        place = reporter.place_code
        if not place or not location.path.grid.code.startswith(place):
            raise ActionNotPermitted(
                action="report",
                reason=_("该点在网格 %(grid)s，不在您负责的范围（%(place)s）内。")
                % {"grid": location.path.grid.code, "place": place or _("未设置")},
            )
    elif role not in (Role.DEPARTMENT_HANDLER, Role.ADMIN, Role.INTEGRATION):
        raise ActionNotPermitted(
            action="report",
            reason=_("审计员和没有角色的账号不能上报案件。"),
        )


def _not_one_of(value: Any, choices: Iterable[str]) -> str:
    return _("“%(value)s”不在可选范围内（%(choices)s）。") % {
        "value": value,
        "choices": ", ".join(choices),
    }


def case_number(day: date, n: int) -> str:
    """The readable number of the day's n-th case: LH-20261124-000123."""
    return f"{NUMBER_PREFIX}-{day:%Y%m%d}-{n:06d}"


def _allocate_number(now: datetime) -> str:
    """The next number of the day (Asia/Shanghai), holding the day's counter until commit: every
    other report waits for it, so a report takes it as late as it can (after reading its stage
    limit, just before writing its row).

    One statement (increment_counters: INSERT … ON CONFLICT DO UPDATE … RETURNING) takes the
    day's row, created on first use, and its next number, and holds the row's lock (SQLite: the
    write lock) until commit. A bulk batch takes its numbers the same way, all at once."""
    day = timezone.localdate(now)
    (last,) = increment_counters(
        transaction.get_connection(), IncidentNumberCounter, "day", "last_number", [day]
    ).values()
    return case_number(day, last)


def located_fields(location: Location, *, as_hexewkb: bool = False) -> dict[str, Any]:
    """The fields of a new case that its location decides: the WGS-84 point, the located path
    and generation, and the owner — its community, or the district's triage queue (属地兜底)
    for a point placed in the nearest cell. One source for every intake path. `as_hexewkb`:
    the point as its HEXEWKB text, made without GEOS (bulk intake; `incidents.location`)."""
    path = location.path
    nearest = location.resolution is Resolution.NEAREST
    return {
        "location": point_hexewkb(location.lon, location.lat)
        if as_hexewkb
        else Point(location.lon, location.lat, srid=STORAGE_SRID),
        "district_code": path.district.code,
        "district_name": path.district.name,
        "street_code": path.street.code,
        "street_name": path.street.name,
        "community_code": path.community.code,
        "community_name": path.community.name,
        "grid_code": path.grid.code,
        "grid_name": path.grid.name,
        "generation_id": location.generation_id,
        "generation_number": location.generation,
        "on_border": location.on_border,
        "resolution": str(location.resolution),
        "triage": nearest,
        "owner_level": OwnerLevel.DISTRICT if nearest else OwnerLevel.COMMUNITY,
        "owner_code": path.district.code if nearest else path.community.code,
    }


def incident_report(
    *,
    channel: str,
    category: Category,
    lon: Any,
    lat: Any,
    crs: str = "wgs84",
    description: str = "",
    reporter: User | None = None,
    reporter_name: str = "",
    reporter_phone: str = "",
    severity: str | None = None,
    client_reported_at: datetime | None = None,
    address: str = "",
    reporter_email: str = "",
    source_ref: str = "",
    ip: str | None = None,
) -> Incident:
    """Take a case in: locate the point, number the case, give it to its owner, start the
    register clock. Every channel (REST, bulk, Open311, the forms) ends here.

    The owner is the community the point lies in; a point outside every grid cell but within
    the district's buffer goes to the nearest cell and the district's triage queue (属地兜底).
    A point farther out is refused (OutsideDistrict, with the distance); bad coordinates are
    refused naming the field (IncidentInputError: lon, lat or crs).
    """
    if channel not in Channel.values:
        raise IncidentInputError("channel", _not_one_of(channel, Channel.values))
    if not isinstance(category, Category) or category.pk is None:
        raise IncidentInputError("category", _("不能为空。"))
    if not category.active:
        raise IncidentInputError("category", _("分类 %(code)s 已停用。") % {"code": category.code})
    if severity:
        if severity not in Severity.values:
            raise IncidentInputError("severity", _not_one_of(severity, Severity.values))
        if not category.is_emergency:
            raise IncidentInputError("severity", _("只有突发事件（第 90 大类）分严重程度。"))
    elif category.is_emergency:
        severity = category.default_severity
    description = _optional_text("description", description, DESCRIPTION_MAX)
    reporter_name = _optional_text("reporter_name", reporter_name, 50)
    reporter_phone = (reporter_phone or "").strip()
    if reporter is not None:
        reporter_name = (reporter_name or reporter.display_name)[:50]
        reporter_phone = reporter_phone or reporter.phone
    if reporter_phone and not _PHONE.match(reporter_phone):
        raise IncidentInputError("reporter_phone", _("不是有效的电话号码。"))
    address = _optional_text("address", address, 200)
    reporter_email = (reporter_email or "").strip()
    if reporter_email:
        try:
            validate_email(reporter_email)
        except ValidationError:
            raise IncidentInputError("reporter_email", _("不是有效的电子邮件地址。")) from None
    source_ref = _optional_text("source_ref", source_ref, 100)
    if client_reported_at is not None:
        client_reported_at = _aware("client_reported_at", client_reported_at)
    location = _locate(lon, lat, crs)
    raw_lon, raw_lat = check_lonlat(lon, lat)
    _check_reporter(reporter, location)

    with transaction.atomic():
        now = timezone.now()
        incident = Incident(
            channel=channel,
            category=category,
            description=description,
            severity=severity or "",
            raw_lon=raw_lon,
            raw_lat=raw_lat,
            raw_crs=crs,
            **located_fields(location),
            reporter=reporter,
            reporter_name=reporter_name,
            reporter_phone=reporter_phone,
            reporter_email=reporter_email,
            address=address,
            source_ref=source_ref,
            status=IncidentStatus.REPORTED,
            client_reported_at=client_reported_at,
            created_at=now,
        )
        _run_clock(incident, now)
        # The day's counter last: its lock makes every other report wait until this commits.
        incident.number = _allocate_number(now)
        incident.save()
        IncidentTransition.objects.create(
            incident=incident,
            action="report",
            from_status="",
            to_status=incident.status,
            actor=reporter,
            actor_role=reporter.role if reporter is not None else "",
            data={
                "channel": channel,
                "resolution": incident.resolution,
                "distance_m": round(location.distance_m, 1),
            },
            created_at=now,
        )
        audit_record(
            actor=reporter,
            action="incidents.incident_report",
            obj_type="incidents.incident",
            obj_id=incident.pk,
            before=None,
            after={
                **_snapshot(incident),
                "channel": channel,
                "category": category.code,
                "location": [location.lon, location.lat],
                "raw": [raw_lon, raw_lat, crs],
                "grid": incident.grid_code,
                "generation": incident.generation_number,
                "resolution": incident.resolution,
                # The chain is forever: no name, and the phone number masked.
                "reporter": incident.reporter_id,
                "reporter_phone": incident.masked_phone,
            },
            ip=ip,
        )
        publish(
            type=events.REPORTED,
            payload=events.incident_reported(incident=incident),
            scopes=events.incident_scopes(incident, users=events.reporter_users(incident)),
        )
    log.debug(
        "incident %s reported (%s, %s) in %s",
        incident.number,
        channel,
        category.code,
        incident.grid_code,
    )
    return incident


# --- incidents: the workflow -------------------------------------------------------------------


def _stage_limit(category: Category, stage: str) -> StageLimit | None:
    try:
        return category.limit_for(stage)
    except StageLimit.DoesNotExist:
        log.error("category %s has no %s time limit: no clock runs", category.code, stage)
        return None


def _run_clock(incident: Incident, now: datetime) -> None:
    """Start the clock of the stage the case's status belongs to, unless it is already running
    (accepted → handling keeps the handle clock); stop it in statuses without one. A new stage
    drops a pending extension request, which concerned the old one."""
    stage = workflow.STAGE_OF_STATUS.get(incident.status, "")
    if stage and stage == incident.stage:
        return
    incident.extension_requested_until = None
    incident.extension_reason = ""
    incident.stage_warned = False
    incident.stage_breached = False
    limit = _stage_limit(incident.category, stage) if stage else None
    if limit is None:
        incident.stage, incident.stage_started_at, incident.stage_deadline = "", None, None
        incident.stage_warn_at = None
        return
    incident.stage = stage
    incident.stage_started_at = now
    incident.stage_deadline = calendar.deadline(now, limit.amount, limit.unit)
    # 预警 at 80 % of the limit in its own time (incidents.services.escalation warns then).
    incident.stage_warn_at = calendar.warning_at(now, incident.stage_deadline, unit=limit.unit)


def _snapshot(incident: Incident) -> dict[str, Any]:
    """What an audit entry keeps of a case's state (no personal data)."""
    return {
        "number": incident.number,
        "status": incident.status,
        "owner": [incident.owner_level, incident.owner_code],
        "department": incident.assigned_department_code,
        "supports": incident.support_department_codes,
        "supports_arrived": incident.support_arrived_codes,
        "plan": incident.plan_code,
        "assignee": incident.assignee_id,
        "severity": incident.severity,
        "stage": incident.stage,
        "stage_deadline": incident.stage_deadline,
        "extension_requested_until": incident.extension_requested_until,
        "send_backs": incident.send_backs,
        "reworks": incident.reworks,
        "merged_into": incident.merged_into_id,
        "satisfaction": incident.satisfaction,
        "closed_at": incident.closed_at,
    }


def _lock(incident: Incident) -> Incident:
    """The case's row, locked until the transaction ends (SQLite: the writer lock), with its
    reporter read in the same query (only the case's row locked): a step the reporter hears of
    needs the reporter's role (events.reporter_users)."""
    return (
        Incident.objects.select_related("reporter")
        .select_for_update(of=("self",))
        .get(pk=incident.pk)
    )


def _previous_status(incident: Incident, action: str) -> str:
    """Where an unpark or unmerge returns the case: its status before the park or merge."""
    undone = {"unpark": "park", "unmerge": "merge"}[action]
    before = (
        incident.transitions.filter(action=undone)
        .order_by("-id")
        .values_list("from_status", flat=True)
        .first()
    )
    if before in workflow.RESTORABLE[action]:
        return before  # type: ignore[return-value]
    return IncidentStatus.REGISTERED


@dataclass
class _Step:
    """What one action decided besides the status, for the timeline, audit and event."""

    reason: str = ""
    reason_code: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    # Keys the audit entry has besides the case's state (which department spoke, where the
    # state does not say it).
    audit: dict[str, Any] = field(default_factory=dict)
    # Scopes the event must reach besides the case's own (who just lost the assignment …).
    departments: list[str] = field(default_factory=list)
    users: list[int | None] = field(default_factory=list)
    event_type: str = events.STATUS_CHANGED


def _apply(
    incident: Incident,
    *,
    by: User,
    action: str,
    step: _Step,
    ip: str | None,
    check: Callable[[Incident], None] | None = None,
    change: Callable[[Incident, datetime], None] | None = None,
    also: Callable[[], Event] | None = None,
) -> Incident:
    """Apply `action` to a case locked by the caller: table, permission, change, clock, then the
    timeline row, the audit entry and the event, in this order (audit and publish last: they
    serialise writers until commit). `also` makes one more event, after the change is saved,
    published with the case's in one go (a transaction publishes once: realtime.outbox)."""
    row: Transition = workflow.transition_for(action, incident, by)
    workflow.check_permitted(by, action, incident)
    refusal = selectors.four_eyes_refusals(by, incident, (action,)).get(action)
    if refusal:
        raise ActionNotPermitted(action=action, reason=refusal)
    if check is not None:
        check(incident)
    now = timezone.now()
    before = _snapshot(incident)
    step.departments.append(incident.assigned_department_code)
    step.users.append(incident.assignee_id)
    from_status = incident.status
    if row.target == workflow.SAME:
        to_status = from_status
    elif row.target == workflow.PREVIOUS:
        to_status = _previous_status(incident, action)
    else:
        to_status = row.target
    incident.status = to_status
    if change is not None:
        change(incident, now)
    if to_status in CLOSED_STATUSES and incident.closed_at is None:
        incident.closed_at = now
    elif to_status not in CLOSED_STATUSES:
        incident.closed_at = None
    if to_status != IncidentStatus.EVALUATED:
        incident.satisfaction = None
    _run_clock(incident, now)
    incident.save()
    transition = IncidentTransition.objects.create(
        incident=incident,
        action=action,
        from_status=from_status,
        to_status=to_status,
        actor=by,
        actor_role=by.role,
        reason_code=step.reason_code,
        reason=step.reason,
        data={**step.data, "stage_deadline": incident.stage_deadline},
        created_at=now,
    )
    words = {"reason_code": step.reason_code, "reason": step.reason}
    audit_record(
        actor=by,
        action=f"incidents.incident_{action}",
        obj_type="incidents.incident",
        obj_id=incident.pk,
        before=before,
        # The step's reason and reason code when it has them (an empty one would read on the
        # audit page as a change from nothing to （空）).
        after={
            **_snapshot(incident),
            **step.audit,
            **{key: value for key, value in words.items() if value},
        },
        ip=ip,
    )
    if action in events.REPORTER_ACTIONS:
        step.users.extend(events.reporter_users(incident))
    if step.event_type == events.EXTENSION_REQUESTED:
        payload = events.incident_extension_requested(
            incident=incident, transition=transition, until=step.data["requested_until"]
        )
    elif step.event_type == events.EXTENSION_DECIDED:
        payload = events.incident_extension_decided(
            incident=incident, transition=transition, approved=step.data["approved"]
        )
    else:
        payload = events.incident_status_changed(incident=incident, transition=transition)
    scopes = events.incident_scopes(incident, departments=step.departments, users=step.users)
    if also is None:
        publish(type=step.event_type, payload=payload, scopes=scopes)
    else:
        publish_batch([(step.event_type, payload, scopes), also()])
    return incident


def _move(
    incident: Incident,
    *,
    by: User,
    action: str,
    ip: str | None,
    step: _Step | None = None,
    check: Callable[[Incident], None] | None = None,
    change: Callable[[Incident, datetime], None] | None = None,
) -> Incident:
    with transaction.atomic():
        locked = _lock(incident)
        return _apply(
            locked,
            by=by,
            action=action,
            step=step or _Step(),
            ip=ip,
            check=check,
            change=change,
        )


def incident_register(
    *, incident: Incident, by: User, note: str = "", ip: str | None = None
) -> Incident:
    """立案: the owning centre accepts the report as a case; the dispatch clock starts."""
    step = _Step(reason=_optional_text("note", note))
    return _move(incident, by=by, action="register", ip=ip, step=step)


def incident_reject(
    *, incident: Incident, by: User, reason: str, ip: str | None = None
) -> Incident:
    """不予立案: not a case for the city (not a public matter, already solved …); needs a reason,
    which the reporter is told."""
    step = _Step(reason=_required_text("reason", reason))
    return _move(incident, by=by, action="reject", ip=ip, step=step)


def _check_assignee(assignee: User, department_code: str) -> Callable[[Incident], None]:
    who = assignee.get_username()

    def check(incident: Incident) -> None:
        if not assignee.is_active:
            raise IncidentInputError("assignee", _("%(user)s 的账号已停用。") % {"user": who})
        if assignee.role == Role.DEPARTMENT_HANDLER:
            if department_code and assignee.department_code != department_code:
                raise IncidentInputError(
                    "assignee",
                    _("%(user)s 属于部门 %(own)s，不属于 %(department)s。")
                    % {
                        "user": who,
                        "own": assignee.department_code or "-",
                        "department": department_code,
                    },
                )
            return
        if assignee.role in _PLACE_ASSIGNEE_ROLES:
            place = assignee.place_code
            if place and incident.grid_code.startswith(place):
                return
            raise IncidentInputError(
                "assignee", _("%(user)s 负责的范围不包含这个案件。") % {"user": who}
            )
        role = Role(assignee.role).label if assignee.role else _("无角色")
        raise IncidentInputError(
            "assignee", _("%(user)s（%(role)s）不能承办案件。") % {"user": who, "role": role}
        )

    return check


def dispatch_department(department_code: str, assignee: User | None = None) -> str:
    """The department a dispatch gives the case to: `department_code` trimmed, or the
    assignee's own when a department handler is named alone. Raises IncidentInputError when
    there is neither, or for a code no department answers to. What incident_dispatch checks
    first, and what a batch dispatch checks once before it changes any case."""
    department_code = (department_code or "").strip()
    if not department_code and assignee is None:
        raise IncidentInputError("department_code", _("请指定承办部门或承办人。"))
    if not department_code and assignee is not None and assignee.role == Role.DEPARTMENT_HANDLER:
        department_code = assignee.department_code
    if department_code:
        # A case given to a code no department answers to would wait, unseen by any handler,
        # until its clock ran out.
        _check_department("department_code", department_code)
    return department_code


def _check_department(field_name: str, code: str) -> None:
    """Raises IncidentInputError on `field_name` when no department has the code `code`."""
    if code not in known_departments():
        raise IncidentInputError(
            field_name,
            _("“%(code)s”不是已知的部门代码；已知：%(known)s。")
            % {"code": code, "known": ", ".join(known_departments())},
        )


def _support_departments(codes: Sequence[str]) -> list[str]:
    """The 协办 departments of a dispatch, each a known department's code, once."""
    for code in codes:
        _check_department("supports", code)
    return list(dict.fromkeys(codes))


def _raise_severity(case: Incident, severity: str, step: _Step) -> None:
    """升级响应: raise an emergency's severity to `severity` when that is graver (a response plan
    of a graver level was started); never lowers it. The step records before and after."""
    if not severity or severity == case.severity:
        return
    if severity not in Severity.values:
        raise IncidentInputError("severity", _not_one_of(severity, Severity.values))
    if not case.category.is_emergency:
        raise IncidentInputError("severity", _("只有突发事件（第 90 大类）分严重程度。"))
    current = SEVERITY_ORDER.index(case.severity) if case.severity in SEVERITY_ORDER else -1
    if SEVERITY_ORDER.index(severity) > current:
        step.data["severity"] = [case.severity, severity]
        case.severity = severity


def _call_out(
    case: Incident,
    now: datetime,
    *,
    by: User,
    step: _Step,
    supports: Sequence[str],
    plan_code: str,
    severity: str,
) -> bool:
    """Call out `supports` beside the department the case is with (协办): each not yet called
    out gets an IncidentSupport row, sees the case and hears of it from then on. A plan's code
    becomes the plan in force; a plan's severity raises the case's (_raise_severity). Returns
    whether anything changed."""
    before = (case.plan_code, case.severity)
    called = [
        code
        for code in supports
        if code != case.assigned_department_code and code not in case.support_department_codes
    ]
    if plan_code:
        step.data["plan"] = plan_code
        case.plan_code = plan_code
    _raise_severity(case, severity, step)
    if called:
        step.data["supports"] = called
        case.support_department_codes = [*case.support_department_codes, *called]
        IncidentSupport.objects.bulk_create(
            IncidentSupport(
                incident=case,
                department_code=code,
                plan_code=plan_code,
                called_at=now,
                called_by=by,
            )
            for code in called
        )
    return bool(called) or (case.plan_code, case.severity) != before


def incident_dispatch(
    *,
    incident: Incident,
    by: User,
    department_code: str = "",
    assignee: User | None = None,
    note: str = "",
    supports: Sequence[str] = (),
    plan_code: str = "",
    severity: str = "",
    ip: str | None = None,
) -> Incident:
    """派遣: give the case to a department (its code: CGJ, SWJ …) and/or a person — a department
    handler, or a grid worker or community/street staff whose place covers the case. Starts the
    accept clock. Also how a returned case, or one sent back for arbitration, is re-dispatched.

    A response plan (dispatch.services.plan_activate, `plan_code`) also calls out `supports`,
    the departments that work beside the one dispatched (协办, _call_out), and may raise the
    case's severity to the plan's (`severity`, 升级响应)."""
    department_code = dispatch_department(department_code, assignee)
    supports = _support_departments(supports)
    step = _Step(
        reason=_optional_text("note", note),
        data={
            "department": department_code,
            "assignee": assignee.pk if assignee is not None else None,
        },
    )

    def change(case: Incident, now: datetime) -> None:
        case.assigned_department_code = department_code
        case.assignee = assignee
        case.handled_by = None
        case.feedback = ""
        _call_out(
            case, now, by=by, step=step, supports=supports, plan_code=plan_code, severity=severity
        )

    check = _check_assignee(assignee, department_code) if assignee is not None else None
    return _move(incident, by=by, action="dispatch", ip=ip, step=step, check=check, change=change)


def incident_call_out(
    *,
    incident: Incident,
    by: User,
    supports: Sequence[str] = (),
    plan_code: str = "",
    severity: str = "",
    note: str = "",
    ip: str | None = None,
) -> Incident:
    """增派协办: call out more departments beside the one a case in hand is with (dispatched,
    accepted, handling), without taking it from that department — a flood that grows, a fire
    that cut the power. With a response plan (dispatch.services.plan_activate on a case in
    hand) the plan's departments are called out, the plan becomes the one in force and a
    graver plan raises the case's severity (升级响应). The status and its clock do not change.

    Raises IncidentInputError on `supports` (or `plan`, when one is given) when it would change
    nothing: every department named is already on the case."""
    supports = _support_departments(supports)
    step = _Step(reason=_optional_text("note", note))

    def change(case: Incident, now: datetime) -> None:
        if not _call_out(
            case, now, by=by, step=step, supports=supports, plan_code=plan_code, severity=severity
        ):
            named = department_short_names_text(supports) or _("（未指定）")
            raise IncidentInputError(
                "plan" if plan_code else "supports",
                _("%(departments)s 已在处置或协办本案，没有新增的部门。") % {"departments": named},
            )

    return _move(incident, by=by, action="call_out", ip=ip, step=step, change=change)


def incident_confirm_arrival(
    *, incident: Incident, by: User, note: str = "", ip: str | None = None
) -> Incident:
    """确认到场: a handler of a department called out on the case (协办) says the department is
    on the scene; once per department (a second is refused by workflow.transition_for, 409).
    The command centre sees who has arrived and who not."""
    step = _Step(reason=_optional_text("note", note))
    code = getattr(by, "department_code", "") or ""

    def change(case: Incident, now: datetime) -> None:
        step.data["department"] = code
        case.support_arrived_codes = [*case.support_arrived_codes, code]
        IncidentSupport.objects.filter(incident=case, department_code=code).update(
            arrived_at=now, arrived_by=by
        )

    return _move(incident, by=by, action="confirm_arrival", ip=ip, step=step, change=change)


def incident_support_report(
    *, incident: Incident, by: User, note: str, ip: str | None = None
) -> Incident:
    """协办反馈: a handler of a department called out on the case (协办) says what the
    department has done or found ("已疏散群众 12 人，水泵 2 台到位"), as often as it has news,
    while the case is in hand. The note is required. Nothing else changes — not the status,
    not its clock, not who has arrived: a report does not stand for 确认到场, nor needs it
    (docs/response-plans.md). The timeline row's data and the audit entry name the department
    (the user's, when the report was made)."""
    text = _required_text("note", note)
    code = getattr(by, "department_code", "") or ""
    step = _Step(reason=text, data={"department": code}, audit={"support_department": code})
    return _move(incident, by=by, action="support_report", ip=ip, step=step)


def incident_accept(
    *, incident: Incident, by: User, note: str = "", ip: str | None = None
) -> Incident:
    """签收: the department takes the case on; the handle clock starts."""
    step = _Step(reason=_optional_text("note", note))

    def change(case: Incident, now: datetime) -> None:
        case.handled_by = by

    return _move(incident, by=by, action="accept", ip=ip, step=step, change=change)


def incident_send_back(
    *,
    incident: Incident,
    by: User,
    reason_code: str,
    reason: str = "",
    ip: str | None = None,
) -> Incident:
    """退单: the department returns the case to the dispatcher with a reason code (and text, for
    "other"). The third send-back hands the case to the district command centre to arbitrate
    (owner → district)."""
    if reason_code not in SendBackReason.values:
        raise IncidentInputError("reason_code", _not_one_of(reason_code, SendBackReason.values))
    text = (
        _required_text("reason", reason)
        if reason_code == SendBackReason.OTHER
        else _optional_text("reason", reason)
    )
    step = _Step(reason=text, reason_code=reason_code)

    def change(case: Incident, now: datetime) -> None:
        step.data["department"] = case.assigned_department_code
        step.data["assignee"] = case.assignee_id
        case.send_backs += 1
        case.assigned_department_code = ""
        case.assignee = None
        case.handled_by = None
        arbitration = case.send_backs >= workflow.ARBITRATION_AFTER_SEND_BACKS
        if arbitration:
            case.owner_level = OwnerLevel.DISTRICT
            case.owner_code = case.district_code
        step.data["send_backs"] = case.send_backs
        step.data["arbitration"] = arbitration

    return _move(incident, by=by, action="send_back", ip=ip, step=step, change=change)


def incident_handle(
    *, incident: Incident, by: User, note: str = "", ip: str | None = None
) -> Incident:
    """处置: work on the case has begun (the handle clock keeps running)."""
    step = _Step(reason=_optional_text("note", note))

    def change(case: Incident, now: datetime) -> None:
        case.handled_by = by

    return _move(incident, by=by, action="handle", ip=ip, step=step, change=change)


def incident_feed_back(
    *, incident: Incident, by: User, feedback: str, ip: str | None = None
) -> Incident:
    """反馈: the handler reports what was done; the verify clock starts."""
    text = _required_text("feedback", feedback)
    step = _Step(reason=text)

    def change(case: Incident, now: datetime) -> None:
        case.handled_by = by
        case.feedback = text

    return _move(incident, by=by, action="feed_back", ip=ip, step=step, change=change)


def incident_verify(
    *, incident: Incident, by: User, passed: bool, note: str = "", ip: str | None = None
) -> Incident:
    """核查: someone other than the handler checks the fix on the spot. Passed → verified (the
    centre closes it); failed → rework (返工): back to the department, counted, with a reason.

    The table's action is "verify" or "rework" accordingly."""
    if not isinstance(passed, bool):
        raise IncidentInputError("passed", _("必须是 true 或 false。"))
    if passed:
        step = _Step(reason=_optional_text("note", note))
        return _move(incident, by=by, action="verify", ip=ip, step=step)
    step = _Step(reason=_required_text("note", note))

    def change(case: Incident, now: datetime) -> None:
        case.reworks += 1
        case.handled_by = None
        step.data["reworks"] = case.reworks

    return _move(
        incident,
        by=by,
        action="rework",
        ip=ip,
        step=step,
        change=change,
    )


def incident_close(
    *, incident: Incident, by: User, note: str = "", ip: str | None = None
) -> Incident:
    """结案: the centre closes a verified case."""
    step = _Step(reason=_optional_text("note", note))
    return _move(incident, by=by, action="close", ip=ip, step=step)


def incident_evaluate(
    *,
    incident: Incident,
    by: User,
    satisfaction: int,
    comment: str = "",
    ip: str | None = None,
) -> Incident:
    """评价: the reporter's satisfaction, 1 (very dissatisfied) to 5 (very satisfied), given by
    the reporter or recorded by the centre after a call-back (回访)."""
    if (
        isinstance(satisfaction, bool)
        or not isinstance(satisfaction, int)
        or not SATISFACTION_MIN <= satisfaction <= SATISFACTION_MAX
    ):
        raise IncidentInputError(
            "satisfaction",
            _("必须是 %(low)s 到 %(high)s 的整数。")
            % {"low": SATISFACTION_MIN, "high": SATISFACTION_MAX},
        )
    step = _Step(reason=_optional_text("comment", comment), data={"satisfaction": satisfaction})

    def change(case: Incident, now: datetime) -> None:
        case.satisfaction = satisfaction

    return _move(incident, by=by, action="evaluate", ip=ip, step=step, change=change)


def incident_reopen(
    *, incident: Incident, by: User, reason: str, ip: str | None = None
) -> Incident:
    """重新打开: a closed case is not solved after all; it is registered again and re-dispatched
    (its evaluation, if any, is dropped: the new closure will be evaluated)."""
    step = _Step(reason=_required_text("reason", reason))

    def change(case: Incident, now: datetime) -> None:
        case.assigned_department_code = ""
        case.assignee = None
        case.handled_by = None
        case.feedback = ""

    return _move(incident, by=by, action="reopen", ip=ip, step=step, change=change)


def incident_request_extension(
    *,
    incident: Incident,
    by: User,
    until: datetime,
    reason: str,
    ip: str | None = None,
) -> Incident:
    """延期申请: the handler asks for the handle deadline to move to `until`, with a reason; the
    status does not change, the centre approves or declines."""
    until = _aware("until", until)
    text = _required_text("reason", reason, 500)
    step = _Step(
        reason=text, data={"requested_until": until}, event_type=events.EXTENSION_REQUESTED
    )

    _check_not_too_far(until)

    def check(case: Incident) -> None:
        if until <= timezone.now() or (
            case.stage_deadline is not None and until <= case.stage_deadline
        ):
            raise IncidentInputError("until", _("必须晚于当前的截止时间。"))

    def change(case: Incident, now: datetime) -> None:
        case.extension_requested_until = until
        case.extension_reason = text

    return _move(
        incident, by=by, action="request_extension", ip=ip, step=step, check=check, change=change
    )


def _check_not_too_far(until: datetime) -> None:
    latest = timezone.now() + timedelta(days=EXTENSION_MAX_DAYS)
    if until > latest:
        raise IncidentInputError(
            "until",
            _("最晚只能延到 %(latest)s（%(days)s 天内）。")
            % {"latest": f"{timezone.localtime(latest):%Y-%m-%d}", "days": EXTENSION_MAX_DAYS},
        )


def incident_approve_extension(
    *,
    incident: Incident,
    by: User,
    approved: bool = True,
    until: datetime | None = None,
    note: str = "",
    ip: str | None = None,
) -> Incident:
    """延期审批: approve (the deadline moves to the requested time, or to `until` if the centre
    grants a different one) or decline (approved=False; the deadline stays) a pending request.
    A decline needs its reason in `note`: the department that asked is told why.

    The table's action is "approve_extension" or "decline_extension" accordingly."""
    if until is not None:
        until = _aware("until", until)
        if until <= timezone.now():
            raise IncidentInputError("until", _("必须是将来的时间。"))
        _check_not_too_far(until)
    step = _Step(
        reason=_optional_text("note", note) if approved else _required_text("note", note),
        data={"approved": bool(approved)},
        event_type=events.EXTENSION_DECIDED,
    )

    def change(case: Incident, now: datetime) -> None:
        requested = case.extension_requested_until
        step.data["requested_until"] = requested
        if approved:
            granted = until or requested
            step.data["granted_until"] = granted
            case.stage_deadline = granted
            if not case.stage:  # no limit was configured: the granted time is the clock now
                case.stage = workflow.STAGE_OF_STATUS[case.status]
                case.stage_started_at = now
            # A new deadline re-arms the escalation worker: warn again at 80 % of the extended
            # clock (from the stage's start, in the limit's own time; wall-clock without a
            # limit), and a miss of the new deadline is a new breach (督办).
            try:
                unit: str | None = case.category.limit_for(case.stage).unit
            except StageLimit.DoesNotExist:
                unit = None
            # The guard requires a pending request; a running stage has its start (constraint).
            assert granted is not None and case.stage_started_at is not None
            case.stage_warn_at = calendar.warning_at(case.stage_started_at, granted, unit=unit)
            case.stage_warned = False
            case.stage_breached = False
        case.extension_requested_until = None
        case.extension_reason = ""

    action = "approve_extension" if approved else "decline_extension"
    return _move(incident, by=by, action=action, ip=ip, step=step, change=change)


def incident_park(*, incident: Incident, by: User, reason: str, ip: str | None = None) -> Incident:
    """挂账: the case cannot be solved now (it needs a budget, a project, another authority); its
    clock stops. Only an operator of the owning centre or above may park — that is the approval
    — and the reason is required."""
    step = _Step(reason=_required_text("reason", reason))
    return _move(incident, by=by, action="park", ip=ip, step=step)


def incident_unpark(
    *, incident: Incident, by: User, note: str = "", ip: str | None = None
) -> Incident:
    """取消挂账: the case returns to the status it was parked from, with a fresh clock."""
    step = _Step(reason=_optional_text("note", note))
    return _move(incident, by=by, action="unpark", ip=ip, step=step)


def check_merge_target(primary: Incident) -> None:
    """A case may be merged into `primary` only while `primary` is open: raises
    IncidentInputError on `into` otherwise. incident_merge checks it with both rows locked; a
    batch merge checks it once before it changes any case."""
    if primary.status in FINISHED_STATUSES:
        raise IncidentInputError(
            "into",
            _("案件 %(number)s 当前为“%(status)s”，只能合并到未办结的案件。")
            % {"number": primary.number, "status": IncidentStatus(primary.status).label},
        )


def incident_merge(
    *,
    incident: Incident,
    into: Incident,
    by: User,
    reason: str = "",
    ip: str | None = None,
) -> Incident:
    """合并: the case is a duplicate of the open case `into`. It keeps its reporter (who is told)
    and points to the primary; the primary is worked on. Undone by incident_unmerge."""
    from incidents.selectors import incidents_visible_to

    if incident.pk == into.pk:
        raise IncidentInputError("into", _("案件不能合并到它自己。"))
    step = _Step(reason=_optional_text("reason", reason))
    with transaction.atomic():
        # Both rows, in id order (the same order everywhere, so two merges never deadlock).
        locked = {
            case.pk: case
            for case in Incident.objects.select_for_update()
            .filter(pk__in=[incident.pk, into.pk])
            .order_by("pk")
        }
        duplicate, primary = locked[incident.pk], locked[into.pk]

        def check(case: Incident) -> None:
            if not incidents_visible_to(by).filter(pk=primary.pk).exists():
                raise ActionNotPermitted(
                    action="merge",
                    reason=_("您看不到案件 %(number)s。") % {"number": primary.number},
                )
            check_merge_target(primary)

        def change(case: Incident, now: datetime) -> None:
            case.merged_into = primary
            step.data["into"] = primary.number

        return _apply(
            duplicate,
            by=by,
            action="merge",
            step=step,
            ip=ip,
            check=check,
            change=change,
            also=partial(_merges_changed, primary, action="merge", by=by),
        )


def incident_unmerge(
    *, incident: Incident, by: User, reason: str = "", ip: str | None = None
) -> Incident:
    """撤销合并: the case was not a duplicate after all; it returns to its status before the
    merge. The primary's scopes hear of it, as they heard of the merge (its page lists the
    cases merged into it), by an event about the primary."""
    step = _Step(reason=_optional_text("reason", reason))

    def change(case: Incident, now: datetime) -> None:
        step.data["from"] = case.merged_into.number if case.merged_into is not None else None
        case.merged_into = None

    with transaction.atomic():
        locked = _lock(incident)
        primary = locked.merged_into
        return _apply(
            locked,
            by=by,
            action="unmerge",
            step=step,
            ip=ip,
            change=change,
            also=None
            if primary is None
            else partial(_merges_changed, primary, action="unmerge", by=by),
        )


def _merges_changed(primary: Incident, *, action: str, by: User) -> Event:
    """The event that tells the primary's scopes its merged cases changed (its page lists them),
    without the duplicate's state: a reader of the primary may not see the duplicate."""
    payload = events.incident_merges_changed(
        primary=primary,
        action=action,
        merged=primary.duplicates.count(),
        actor=by.pk,
    )
    return events.MERGES_CHANGED, payload, events.incident_scopes(primary)
