"""Bulk intake (批量上报) for sensor gateways (物联感知) and video-AI platforms (视频智能识别).

A platform pushes up to BULK_MAX_ITEMS alarms in one call. Each alarm becomes a case exactly as
`incidents.services.incident_report` would make it — located, numbered, given to its owner, its
register clock started, a timeline row — or, when its sensor already has an open case for the
same matter, a *repeat* counted on that case. Bad alarms are answered one by one and never
block the good ones; the good ones are written all together or not at all (one transaction).

Why not call incident_report a thousand times: every report holds the day's number counter,
the audit chain's head and the district's event counter from its first write to its commit, so
reports are written one after another, and each pays its own transaction, audit entry and
event numbering. Here the work that needs no lock is done first (checks, locating every point
in memory, deadlines; each case's row converted for the database and its COPY line made, its
id reserved on PostgreSQL; its event checked, encoded and its id reserved), a stand-in in place
of each case's number; the transaction then takes the locks once for the whole batch:

* the rows of the batch's alarm sources (AlarmSource: account, sensor, category, channel),
  upserted in key order and locked first, which serialises the dedupe lookup against the
  concurrent batches naming the same sensors (and only those); then the open cases its alarms
  repeat, locked;
* on PostgreSQL the new cases' timeline rows, which need no number, inserted before the
  counter (their foreign key to the case is checked at commit);
* the day's number counter, the lock every report takes first, once the batch knows how many
  cases it makes: all their numbers in one upsert (`increment_counters`), swapped for the
  stand-ins in the prepared rows and events;
* the cases inserted in bulk (and on SQLite, their ids read back, their timeline rows);
* ONE audit entry for the batch, listing the cases created and the repeats (ADR 0008): the
  audit chain is a single row every writer waits for, so one entry per case would serialise a
  thousand hash-chained inserts;
* one outbox event per case created (incidents.incident_reported) and per existing case
  repeated (incidents.incident_repeated), written by realtime.outbox.publish_batch, which locks
  each scope's counter once.

Sensor dedupe (去重): an alarm whose (source_ref, category, channel) — from the same integration
account — matches an OPEN case whose latest alarm (its last repeat, else its report) is within
CITYOPS_SENSOR_DEDUPE_WINDOW_MINUTES of now is a repeat of that case: `repeat_count` goes up
and `last_repeated_at` is set, and no new case is made. Alarms repeating one another within the
batch count the same way on the case the first of them creates. The window is measured on the
server's clock: a gateway's own time (`occurred_at`, stored as client_reported_at) may be
wrong or late.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.gis.db.models import PointField
from django.db import models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Role, User
from audit.services import audit_record
from config.db_backends.bulk import (
    copy_line,
    copy_plain,
    increment_counters,
    insert_rows,
    reserve_ids,
)
from gridmap.locator import Location, check_lonlat
from incidents import events
from incidents.models import (
    FINISHED_STATUSES,
    AlarmSource,
    Category,
    Channel,
    Incident,
    IncidentNumberCounter,
    IncidentStatus,
    IncidentTransition,
    Severity,
)
from incidents.services import (
    _PHONE,
    DESCRIPTION_MAX,
    IncidentInputError,
    OutsideDistrict,
    _aware,
    _locate,
    _not_one_of,
    _optional_text,
    _run_clock,
    case_number,
    located_fields,
)
from incidents.workflow import ActionNotPermitted
from realtime.outbox import prepare_batch, publish_batch

log = logging.getLogger(__name__)

# The channels that report in bulk: machines that watch the street.
BULK_CHANNELS: tuple[str, ...] = (Channel.SENSOR, Channel.VIDEO_AI)
BULK_MAX_ITEMS = 1000
SOURCE_REF_MAX = 100

# A repeat of an alarm on an open case (the event of this module; see docs/incidents.md).
REPEATED = "incidents.incident_repeated"

CREATED, REPEAT, ERROR = "created", "repeat", "error"


@dataclass(frozen=True, slots=True)
class BulkItem:
    """One alarm as the platform sent it (the API has checked the types, not the values)."""

    channel: str
    category: str  # 事项代码, e.g. 01001
    lon: Any
    lat: Any
    crs: str = "wgs84"
    description: str = ""
    source_ref: str = ""  # the sensor's or camera's id on the platform
    occurred_at: datetime | None = None  # the platform's clock
    severity: str = ""


@dataclass(slots=True)
class BulkResult:
    """What became of one item: created (the new case's number), repeat (the open case's
    number) or error (`errors`: field → reasons)."""

    index: int
    result: str
    number: str | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class BulkReport:
    results: list[BulkResult]
    # The audit entry's object id for this batch; None when nothing was written.
    batch: str | None = None

    def count(self, result: str) -> int:
        return sum(1 for item in self.results if item.result == result)


@dataclass(slots=True)
class _Valid:
    """An item that passed every check, with what the checks produced."""

    index: int
    item: BulkItem
    category: Category
    severity: str
    description: str
    source_ref: str
    occurred_at: datetime | None
    location: Location
    raw_lon: float
    raw_lat: float


def dedupe_window() -> timedelta:
    return timedelta(minutes=settings.CITYOPS_SENSOR_DEDUPE_WINDOW_MINUTES)


def batch_size_refusal(count: int) -> str:
    """The reason a batch of `count` alarms is refused as a whole (not 1 to BULK_MAX_ITEMS)."""
    return _("收到 %(count)s 条告警，每次请求须为 1 到 %(limit)s 条。") % {
        "count": count,
        "limit": BULK_MAX_ITEMS,
    }


def _add(errors: dict[str, list[str]], name: str, reason: str) -> None:
    errors.setdefault(name, []).append(reason)


def _check_item(
    index: int, item: BulkItem, categories: dict[str, Category]
) -> _Valid | dict[str, list[str]]:
    """The checks of incident_report, all of them, so an item's answer names every bad field."""
    errors: dict[str, list[str]] = {}
    if item.channel not in BULK_CHANNELS:
        _add(errors, "channel", _not_one_of(item.channel, BULK_CHANNELS))
    category = categories.get(item.category)
    if category is None:
        _add(errors, "category", _("“%(value)s”不是事项分类代码。") % {"value": item.category})
    elif not category.active:
        _add(errors, "category", _("分类 %(code)s 已停用。") % {"code": category.code})
    severity = item.severity or ""
    if severity:
        if severity not in Severity.values:
            _add(errors, "severity", _not_one_of(severity, Severity.values))
        elif category is not None and not category.is_emergency:
            _add(errors, "severity", _("只有突发事件（第 90 大类）分严重程度。"))
    elif category is not None and category.is_emergency:
        severity = category.default_severity
    description = source_ref = ""
    occurred_at = None
    try:
        description = _optional_text("description", item.description, DESCRIPTION_MAX)
    except IncidentInputError as exc:
        _add(errors, exc.field, exc.reason)
    try:
        source_ref = _optional_text("source_ref", item.source_ref, SOURCE_REF_MAX)
        if not source_ref:
            _add(errors, "source_ref", _("不能为空：须填传感器或摄像头的编号。"))
    except IncidentInputError as exc:
        _add(errors, exc.field, exc.reason)
    if item.occurred_at is not None:
        try:
            occurred_at = _aware("occurred_at", item.occurred_at)
        except IncidentInputError as exc:
            _add(errors, exc.field, exc.reason)
    try:
        location = _locate(item.lon, item.lat, item.crs)
    except OutsideDistrict as exc:
        _add(errors, "lon", exc.reason)
        _add(errors, "lat", exc.reason)
    except IncidentInputError as exc:
        _add(errors, exc.field, exc.reason)
    if errors:
        return errors
    assert category is not None
    raw_lon, raw_lat = check_lonlat(item.lon, item.lat)
    return _Valid(
        index=index,
        item=item,
        category=category,
        severity=severity,
        description=description,
        source_ref=source_ref,
        occurred_at=occurred_at,
        location=location,
        raw_lon=raw_lon,
        raw_lat=raw_lat,
    )


def _check_reporter(by: User) -> tuple[str, str]:
    """Only an active integration account reports in bulk; its name and phone go on each case
    as incident_report puts a reporter's."""
    if not by.is_active:
        raise ActionNotPermitted(action="report", reason=_("账号已停用。"))
    if by.role != Role.INTEGRATION:
        raise ActionNotPermitted(action="report", reason=_("批量上报只对系统接入账号开放。"))
    name = by.display_name[:50]
    phone = (by.phone or "").strip()
    if phone and not _PHONE.match(phone):
        raise IncidentInputError("reporter_phone", _("不是有效的电话号码。"))
    return name, phone


class _Rows:
    """New rows of one model, built and inserted without the ORM's per-value work.

    A batch makes thousands of rows. `Model(**kwargs)` resolves every keyword against the
    model's fields, and `bulk_create` compiles SQL and converts every value one by one; here the
    field order, the defaults and each field's conversion are worked out once per batch:

    * `make(**values)` builds an instance through Django's positional fast path (the one
      `Model.from_db` uses), from the defaults of a template instance plus `values`;
      `row(**values)` is the same list of values without an instance, for rows nothing reads;
    * `prepare(rows)` converts rows (`of(obj)`: an instance's) for the driver, into a
      `_Prepared` whose `insert()` writes them with `config.db_backends.bulk.insert_rows`
      (COPY on PostgreSQL, one `executemany` on SQLite); a few values can be set in between
      (`_Prepared.set`), so the conversion can run before a lock is taken and the values
      given out under it (the case numbers) go in after. `insert_rows(rows)` does both at once.
      Values of plain columns (text,
      numbers, booleans, foreign-key ids) go to the driver as they are — what those fields'
      `get_db_prep_save` returns anyway; dates, JSON and geometry go through their field's
      `get_db_prep_save`, and on SQLite geometry gets its field's SQL parameter expression
      (`get_placeholder`, e.g. a geometry constructor around %s), so every value is stored
      exactly as `bulk_create` would store it. `auto_now` fields get their `pre_save`. The
      new primary keys are not read back: the caller reserves them beforehand
      (`with_ids=True`) or finds them by a natural key.
    """

    _PLAIN = frozenset(
        {
            models.CharField,
            models.TextField,
            models.EmailField,
            models.BooleanField,
            models.IntegerField,
            models.SmallIntegerField,
            models.BigIntegerField,
            models.PositiveIntegerField,
            models.PositiveSmallIntegerField,
            models.PositiveBigIntegerField,
            models.FloatField,
            models.AutoField,
            models.BigAutoField,
        }
    )

    def __init__(self, model: type[models.Model], **defaults: Any) -> None:
        self.model = model
        self.fields = list(model._meta.concrete_fields)
        self.attnames = [f.attname for f in self.fields]
        self.position = {name: i for i, name in enumerate(self.attnames)}
        template = model(**defaults)
        self.defaults = [getattr(template, name) for name in self.attnames]
        self.auto = [
            (i, f)
            for i, f in enumerate(self.fields)
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
        ]

    def row(self, **values: Any) -> list[Any]:
        row = list(self.defaults)
        for name, value in values.items():
            row[self.position[name]] = value
        return row

    def make(self, **values: Any) -> Any:
        return self.model(*self.row(**values))

    @classmethod
    def _plain(cls, column: models.Field[Any, Any]) -> bool:
        if column.is_relation:
            return cls._plain(column.target_field)  # type: ignore[attr-defined]
        return type(column) in cls._PLAIN

    def of(self, obj: models.Model) -> list[Any]:
        """The row of an instance, its `auto_now` fields given their `pre_save`. The values as
        the instance holds them, past the fields' descriptors: a geometry set as HEXEWKB stays
        that text (its descriptor would build the GEOS geometry)."""
        held = obj.__dict__
        row = [held[name] for name in self.attnames]
        for i, column in self.auto:
            row[i] = column.pre_save(obj, True)
        return row

    def prepare(self, rows: Sequence[list[Any]], *, with_ids: bool = False) -> _Prepared:
        """The rows' values (at least one row) as the driver takes them, ready to insert;
        `with_ids`: the primary keys are given (reserved beforehand), else the database assigns
        them. Each column's SQL parameter expression (SQLite) comes from the first row."""
        connection = transaction.get_connection()
        as_is = _as_is(connection)
        spec = [
            (i, f, self._plain(f), as_is.get(type(f)))
            for i, f in enumerate(self.fields)
            if with_ids or not f.primary_key
        ]
        params = []
        for row in rows:
            values = []
            for i, column, is_plain, kept in spec:
                value = row[i]
                values.append(value if is_plain else _db_value(column, kept, value, connection))
            params.append(values)
        if connection.vendor == "postgresql":
            # Each row's COPY line is made here too, before any lock; COPY takes no SQL
            # parameter expressions.
            return _Prepared(
                self.model, connection, spec, None, params, [copy_line(p) for p in params]
            )
        markers = [  # each column's SQL parameter expression, as Django's INSERT makes it
            f.get_placeholder(params[0][at], None, connection)  # type: ignore[attr-defined]
            if hasattr(f, "get_placeholder")
            else "%s"
            for at, (_, f, _, _) in enumerate(spec)
        ]
        return _Prepared(self.model, connection, spec, markers, params, None)

    def insert_rows(self, rows: Sequence[list[Any]]) -> None:
        if rows:
            self.prepare(rows).insert()


def _aware_moment(value: Any) -> bool:
    return type(value) is datetime and value.tzinfo is not None


def _text(value: Any) -> bool:
    return type(value) is str


def _as_is(connection: BaseDatabaseWrapper) -> dict[type[Any], Callable[[Any], bool]]:
    """By field type, which values go to the database as they are, without the field's
    get_db_prep_save. On PostgreSQL: an aware datetime (what DateTimeField.get_db_prep_save
    returns for it; a naive one still goes through it, and its warning); a point's HEXEWKB
    text (`incidents.location`), which PostGIS reads as the geometry's text input."""
    if connection.vendor != "postgresql":
        return {}
    return {models.DateTimeField: _aware_moment, PointField: _text}


def _db_value(
    column: models.Field[Any, Any],
    kept: Callable[[Any], bool] | None,
    value: Any,
    connection: BaseDatabaseWrapper,
) -> Any:
    """What the column's get_db_prep_save returns for `value`, without the call for NULL and
    for the values `kept` (`_as_is`) says go as they are."""
    if value is None or (kept is not None and kept(value)):
        return value
    return column.get_db_prep_save(value, connection)


@dataclass(slots=True)
class _Prepared:
    """Rows converted by _Rows.prepare, one list of values per row, in the columns of `spec`:
    converted before a lock is taken, a few values set under it (`set`), then inserted."""

    model: type[models.Model]
    connection: BaseDatabaseWrapper
    spec: list[tuple[int, models.Field[Any, Any], bool, Callable[[Any], bool] | None]]
    markers: list[str] | None  # SQLite: each column's SQL parameter expression
    params: list[list[Any]]
    lines: list[str | None] | None  # PostgreSQL: each row's COPY line
    columns: dict[str, int] = field(init=False)  # attname → position in spec

    def __post_init__(self) -> None:
        self.columns = {column.attname: at for at, (_, column, _, _) in enumerate(self.spec)}

    def set(self, row: int, name: str, value: Any) -> None:
        """Set the field `name` (an attname) of the row at `row`, converted as prepare does."""
        at = self.columns.get(name)
        if at is None:
            raise KeyError(f"{self.model.__name__} has no column {name!r} in these rows")
        _, column, is_plain, kept = self.spec[at]
        values = self.params[row]
        old = values[at]
        values[at] = value if is_plain else _db_value(column, kept, value, self.connection)
        if self.lines is None:
            return
        line = self.lines[row]
        # A plain text swapped for another in the line made already, when the old one occurs
        # in it once (then that is its column); otherwise the line is made again.
        if (
            line is not None
            and old
            and copy_plain(old)
            and copy_plain(values[at])
            and line.count(old) == 1
        ):
            self.lines[row] = line.replace(old, values[at])
            return
        self.lines[row] = copy_line(values)

    def insert(self, rows: Sequence[int] | None = None) -> None:
        """Insert the rows (those at the positions `rows`, in that order, if given)."""
        params = self.params if rows is None else [self.params[row] for row in rows]
        if not params:
            return
        lines = self.lines if rows is None or self.lines is None else [self.lines[r] for r in rows]
        insert_rows(
            self.connection,
            self.model._meta.db_table,
            [f.column for _, f, _, _ in self.spec],
            params,
            markers=self.markers,
            lines=lines,
        )


class _Clocks:
    """The register clock of a new case depends only on its category and the moment, so within a
    batch (one moment) it is worked out once per category: `_run_clock` runs on a probe case and
    whatever it set is copied onto every case of that category."""

    def __init__(self, rows: _Rows, now: datetime) -> None:
        self.rows, self.now = rows, now
        self.by_category: dict[int, dict[str, Any]] = {}

    def start(self, incident: Incident, category: Category) -> None:
        changes = self.by_category.get(category.pk)
        if changes is None:
            probe: Incident = self.rows.make(category_id=category.pk, status=incident.status)
            probe.category = category
            before = dict(probe.__dict__)
            _run_clock(probe, self.now)
            changes = {
                name: value
                for name, value in probe.__dict__.items()
                if name != "_state" and (name not in before or before[name] != value)
            }
            self.by_category[category.pk] = changes
        incident.__dict__.update(changes)


def _new_case(
    rows: _Rows,
    clocks: _Clocks,
    valid: _Valid,
    *,
    by: User,
    name: str,
    phone: str,
    now: datetime,
    as_hexewkb: bool,
) -> Incident:
    """The row incident_report would write for this item, but for its number (kept field for
    field the same; the bulk tests compare the two). `as_hexewkb`: its point as HEXEWKB text
    (PostgreSQL, which reads it as it is; SQLite's adapter wants the GEOS point, and building
    it from the text costs more than the point itself)."""
    incident: Incident = rows.make(
        channel=valid.item.channel,
        category_id=valid.category.pk,
        description=valid.description,
        severity=valid.severity,
        raw_lon=valid.raw_lon,
        raw_lat=valid.raw_lat,
        raw_crs=valid.item.crs,
        **located_fields(valid.location, as_hexewkb=as_hexewkb),
        reporter_id=by.pk,
        reporter_name=name,
        reporter_phone=phone,
        source_ref=valid.source_ref,
        status=IncidentStatus.REPORTED,
        client_reported_at=valid.occurred_at,
        created_at=now,
    )
    incident.category = valid.category
    incident.reporter = by
    clocks.start(incident, valid.category)
    return incident


Key = tuple[str, int, str]  # (source_ref, category id, channel)


def _key(valid: _Valid) -> Key:
    return (valid.source_ref, valid.category.pk, valid.item.channel)


def _lock_sources(alarms: Counter[Key], *, by: User, now: datetime) -> None:
    """Count the batch's alarms on their sources (AlarmSource), each row created if new and
    locked to the commit: in key order, the same order every batch takes them in."""
    keys = sorted(alarms)
    increment_counters(
        transaction.get_connection(),
        AlarmSource,
        ("account", "source_ref", "category", "channel"),
        "alarms",
        [(by.pk, *key) for key in keys],
        by=[alarms[key] for key in keys],
        defaults={"first_alarm_at": now},
    )


def _open_cases(keys: set[Key], *, by: User, since: datetime) -> dict[Key, Incident]:
    """The open case of each key whose latest alarm is at or after `since`, locked in id order
    (the latest one where a key has several).

    Two statements, so that the lookup's plan does not hang on the tables' statistics. The
    first leaves the account and the categories out: with them in, a planner whose statistics
    are older than the table's growth (a new database taking in a flood of alarms: autovacuum
    looks once a minute, SQLite never) reads the account's index and filters every case the
    gateway ever reported, ≈50 ms a batch on PostgreSQL after 60,000 cases and growing; without
    them only the `incidents_source_ref` index serves it, and on PostgreSQL the planner is kept
    from reading the whole table instead (`_index_scans_only`). Its rows are matched to the keys
    here and only the matches locked, by id, the conditions checked again on the locked rows."""
    if not keys:
        return {}
    open_and_recent = Q(
        Q(last_repeated_at__gte=since) | Q(last_repeated_at__isnull=True, created_at__gte=since)
    ) & ~Q(status__in=FINISHED_STATUSES)
    candidates = (
        Incident.objects.filter(open_and_recent, source_ref__in={key[0] for key in keys})
        .exclude(source_ref="")
        .order_by()
        .values_list("id", "reporter_id", "source_ref", "category_id", "channel")
    )
    with _index_scans_only(transaction.get_connection()):
        rows = list(candidates)
    ids = [
        pk
        for pk, reporter, ref, category, channel in rows
        if reporter == by.pk and (ref, category, channel) in keys
    ]
    if not ids:
        return {}
    found: dict[Key, Incident] = {}
    cases = Incident.objects.select_for_update().filter(open_and_recent, id__in=ids).order_by("id")
    for case in cases:
        key = (case.source_ref, case.category_id, case.channel)
        seen = found.get(key)
        if seen is None or _last_alarm(case) >= _last_alarm(seen):
            found[key] = case
    return found


@contextmanager
def _index_scans_only(connection: BaseDatabaseWrapper) -> Iterator[None]:
    """On PostgreSQL, the statements run inside are planned without sequential scans (the
    setting is restored after them, and dies with the transaction if they fail).

    For the dedupe lookup: the planner estimates that each sensor named matches a case (the
    statistics see `source_ref` as unique), so for a table below some 50,000 cases it reckons
    that reading the whole table beats a thousand index probes. Measured in the bench, the
    scan cost 8 ms a batch at 7,000 cases and 31 ms at 30,000, inside the account's lock; the
    probes 2-7 ms at any size. SQLite's planner takes the index unprompted."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('enable_seqscan'), set_config('enable_seqscan', 'off', true)"
        )
        ((before, _),) = cursor.fetchall()
    yield
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('enable_seqscan', %s, true)", [before])


def _last_alarm(case: Incident) -> datetime:
    return case.last_repeated_at or case.created_at


def incident_repeated(*, incident: Incident, repeats: int) -> dict[str, Any]:
    """incidents.incident_repeated: the sensor of an open case alarmed again (`repeats` times in
    this batch); the case's counter and latest alarm time."""
    return {
        "incident": events.incident_summary(incident),
        "repeats": repeats,
        "repeat_count": incident.repeat_count,
        "last_repeated_at": incident.last_repeated_at,
    }


def incidents_report_bulk(
    *, items: Sequence[BulkItem], by: User, ip: str | None = None
) -> BulkReport:
    """Take in a batch of alarms from an integration account: create, count as repeats, or
    refuse each one (module docstring). Results come in the order of `items`.

    Refuses the whole batch only for what no item could change: a batch of 0 or more than
    BULK_MAX_ITEMS items (IncidentInputError on `items`), an account that is not an active
    integration (ActionNotPermitted), no active boundary generation (GeographyUnavailable).
    """
    if not 1 <= len(items) <= BULK_MAX_ITEMS:
        raise IncidentInputError("items", batch_size_refusal(len(items)))
    name, phone = _check_reporter(by)
    codes = {item.category for item in items if isinstance(item.category, str)}
    categories = {
        category.code: category
        for category in Category.objects.filter(code__in=codes).prefetch_related("limits")
    }
    results: list[BulkResult] = []
    valid: list[_Valid] = []
    for index, item in enumerate(items):
        checked = _check_item(index, item, categories)
        if isinstance(checked, _Valid):
            valid.append(checked)
            results.append(BulkResult(index=index, result=CREATED))
        else:
            results.append(BulkResult(index=index, result=ERROR, errors=checked))
    if not valid:
        return BulkReport(results=results)

    batch = uuid.uuid4().hex
    # Every case the batch may create is built before any lock is taken, with everything that
    # does not depend on the lock: its row as the database takes it, its id (on PostgreSQL,
    # reserved from the table's sequence) and its event. Inside the transaction, under the
    # day's number counter, the repeats are dropped, the numbers given out and the rows written.
    now = timezone.now()
    cases = _Rows(Incident, status=IncidentStatus.REPORTED)
    clocks = _Clocks(cases, now)
    connection = transaction.get_connection()
    reserved = hexewkb = connection.vendor == "postgresql"
    drafts = [
        _new_case(cases, clocks, v, by=by, name=name, phone=phone, now=now, as_hexewkb=hexewkb)
        for v in valid
    ]
    if reserved:
        meta = Incident._meta
        for draft, pk in zip(
            drafts, reserve_ids(connection, meta.db_table, meta.pk.column, len(drafts)), strict=True
        ):
            draft.pk = pk
    # Until the numbers are given out, each draft's number is a stand-in unique to the batch,
    # replaced in its row and its event under the counter.
    for at, draft in enumerate(drafts):
        draft.number = f"{batch}:{at}"
    rows = cases.prepare([cases.of(draft) for draft in drafts], with_ids=reserved)
    reported = prepare_batch(
        [
            (
                events.REPORTED,
                events.incident_reported(incident=draft),
                events.incident_scopes(draft, users=events.reporter_users(draft)),
            )
            for draft in drafts
        ],
        now=now,
    )
    with transaction.atomic():
        # The dedupe lookup runs under the locks of the batch's alarm sources, so a concurrent
        # batch naming one of its sensors waits here and then sees this one's cases; batches
        # of other sensors, and other writers, don't wait for it.
        alarms = Counter(_key(v) for v in valid)
        _lock_sources(alarms, by=by, now=now)
        existing = _open_cases(set(alarms), by=by, since=now - dedupe_window())
        created: list[int] = []  # positions in drafts
        created_by_key: dict[Key, int] = {}  # → the position of the case the key's alarm made
        answers: list[tuple[BulkResult, int]] = []  # given the number of the case at the position
        repeats: dict[int, int] = {}  # existing case id → repeats in this batch
        for at, v in enumerate(valid):
            key = _key(v)
            result = results[v.index]
            case = existing.get(key)
            if case is not None:
                repeats[case.pk] = repeats.get(case.pk, 0) + 1
                result.result, result.number = REPEAT, case.number
                continue
            first = created_by_key.get(key)
            if first is not None:  # repeats an alarm earlier in this batch
                drafts[first].repeat_count += 1
                drafts[first].last_repeated_at = now
                result.result = REPEAT
                answers.append((result, first))
                continue
            created.append(at)
            created_by_key[key] = at
            answers.append((result, at))
        if created:
            if reserved:  # the timeline rows need no number: written before the counter
                _write_timeline(drafts, valid, created, by)
            # The batch's numbers in one statement, holding the day's counter to the commit: the
            # lock every report takes, so they are consecutive and gapless.
            day = timezone.localdate(now)
            (last,) = increment_counters(
                connection, IncidentNumberCounter, "day", "last_number", [day], by=len(created)
            ).values()
            for n, at in enumerate(created, start=last - len(created) + 1):
                draft = drafts[at]
                stand_in, draft.number = draft.number, case_number(day, n)
                reported.fill(at, ("incident", "number"), stand_in, draft.number)
                rows.set(at, "number", draft.number)
                if draft.repeat_count:
                    rows.set(at, "repeat_count", draft.repeat_count)
                    rows.set(at, "last_repeated_at", draft.last_repeated_at)
            for result, at in answers:
                result.number = drafts[at].number
            rows.insert(created)
            if not reserved:
                # The new ids, by number: the batch's numbers are consecutive and only this
                # transaction could give them out.
                ids = dict(
                    Incident.objects.filter(
                        number__range=(drafts[created[0]].number, drafts[created[-1]].number)
                    ).values_list("number", "id")
                )
                for at in created:
                    drafts[at].pk = ids[drafts[at].number]
                _write_timeline(drafts, valid, created, by)
            for at in created:
                drafts[at]._state.adding, drafts[at]._state.db = False, connection.alias
        repeated = [case for case in existing.values() if case.pk in repeats]
        by_id = {category.pk: category for category in categories.values()}
        for case in repeated:
            case.category = by_id[case.category_id]  # loaded already, for the event's summary
        before = {
            case.number: {
                "repeat_count": case.repeat_count,
                "last_repeated_at": case.last_repeated_at,
            }
            for case in repeated
        }
        for case in repeated:
            case.repeat_count += repeats[case.pk]
            case.last_repeated_at = now
            case.updated_at = now
        if repeated:
            Incident.objects.bulk_update(
                repeated, ["repeat_count", "last_repeated_at", "updated_at"], batch_size=500
            )
        audit_record(
            actor=by,
            action="incidents.incident_report_bulk",
            obj_type="incidents.incident_batch",
            obj_id=batch,
            before={"repeated": before} if before else None,
            after={
                "created": {
                    "columns": AUDIT_COLUMNS,
                    "rows": [_audit_row(drafts[at], valid[at]) for at in created],
                },
                "repeated": {
                    case.number: {
                        "repeat_count": case.repeat_count,
                        "last_repeated_at": case.last_repeated_at,
                        "repeats": repeats[case.pk],
                    }
                    for case in repeated
                },
                "failed": len(items) - len(valid),
            },
            ip=ip,
        )
        published = reported.take(created)
        if repeated:
            published += prepare_batch(
                [
                    (
                        REPEATED,
                        incident_repeated(incident=case, repeats=repeats[case.pk]),
                        events.incident_scopes(case),
                    )
                    for case in repeated
                ],
                now=now,
            )
        publish_batch(published)
    log.info(
        "bulk intake by %s: %d created, %d repeats, %d refused (batch %s)",
        by.get_username(),
        len(created),
        len(valid) - len(created),
        len(items) - len(valid),
        batch,
    )
    return BulkReport(results=results, batch=batch)


def _write_timeline(
    drafts: Sequence[Incident], valid: Sequence[_Valid], created: Sequence[int], by: User
) -> None:
    """The timeline's first row of each case created (those at the positions `created`, their
    ids known): reported, by whom, how."""
    steps = _Rows(IncidentTransition, data={})
    steps.insert_rows(
        [
            steps.row(
                incident_id=case.pk,
                action="report",
                from_status="",
                to_status=case.status,
                actor_id=by.pk,
                actor_role=by.role,
                data={
                    "channel": case.channel,
                    "resolution": case.resolution,
                    "distance_m": round(valid[at].location.distance_m, 1),
                },
                created_at=case.created_at,
            )
            for at, case in ((at, drafts[at]) for at in created)
        ]
    )


# What the batch's audit entry keeps of each case it created, one row per case (no personal
# data): enough to find the case and see where it went as received; the case's row holds the rest.
AUDIT_COLUMNS = (
    "number",
    "id",
    "channel",
    "category",
    "source_ref",
    "lon",
    "lat",
    "grid",
    "resolution",
    "owner",
    "repeat_count",
)


def _audit_row(case: Incident, valid: _Valid) -> list[Any]:
    return [
        case.number,
        case.pk,
        case.channel,
        valid.category.code,
        case.source_ref,
        valid.location.lon,
        valid.location.lat,
        case.grid_code,
        case.resolution,
        case.owner_code,
        case.repeat_count,
    ]
