"""Reads of cases that check who is asking: every list, detail, count and export starts here.

Scoping follows the user's role and place (ADR 0002; the rules are
`incidents.models.IncidentQuerySet.visible_to`). A case the user may not see does not exist for
them: `incident_for_user` raises Incident.DoesNotExist, so the API answers 404 — never 403,
which would confirm that another street's case number is real.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.gis.geos import Polygon
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import ExtractHour
from django.utils import timezone
from django.utils.translation import gettext_lazy

from accounts.departments import department_names, department_short_names
from accounts.models import Role
from incidents import calendar, workflow
from incidents.models import (
    CLOSED_STATUSES,
    FINISHED_STATUSES,
    OWNER_LEVEL_ORDER,
    SEVERITY_ORDER,
    Category,
    Incident,
    IncidentPhoto,
    IncidentStatus,
    IncidentSupport,
    IncidentTransition,
    OwnerLevel,
    Stage,
    StageLimit,
    Supervision,
    for_department,
)


def incidents_visible_to(user: Any) -> QuerySet[Incident]:
    """The cases `user` may see: district operators, auditors, admins all; a street operator
    their street's; community staff their community's; a grid worker their grid cell's and their
    own reports; a department handler their department's (dispatched to it, or 协办);
    everyone also those assigned to them personally. A user without a role (or inactive, or
    anonymous) none."""
    return Incident.objects.visible_to(user)


def incident_for_user(user: Any, number: str) -> Incident:
    """The case numbered `number` if `user` may see it; Incident.DoesNotExist otherwise."""
    return incidents_visible_to(user).select_related("category").get(number=number)


def incidents_for_user(user: Any, numbers: Iterable[str]) -> dict[str, Incident]:
    """The cases numbered `numbers` that `user` may see, by number, in one query (a batch
    action's cases; a number missing from the answer is 404 to this user, as one case's is)."""
    return {
        case.number: case
        for case in incidents_visible_to(user)
        .select_related("category")
        .filter(number__in=list(numbers))
    }


def incident_timeline(incident: Incident) -> QuerySet[IncidentTransition]:
    """The case's steps, oldest first, with the acting users (the caller has checked visibility
    through incident_for_user)."""
    return incident.transitions.select_related("actor").order_by("id")


def incident_actions_for(user: Any, incident: Incident) -> list[str]:
    """The actions `user` may take on the case now (the buttons a console shows, the API's
    `allowed_actions`): the workflow's, by role and place, less those the four-eyes rules refuse
    them."""
    actions = workflow.actions_for(user, incident)
    refused = four_eyes_refusals(user, incident, actions)
    return [action for action in actions if action not in refused]


# --- four eyes (四眼原则): a step whoever did an earlier one never takes -------------------------

VERIFY_ACTIONS = ("verify", "rework")
EXTENSION_DECISIONS = ("approve_extension", "decline_extension")
HANDLER_VERIFIES = gettext_lazy("办理过该案件的人不能核查它，核查须由他人进行。")
REQUESTER_DECIDES = gettext_lazy("申请延期的人不能审批自己的申请，延期由他人审批。")


def four_eyes_refusals(user: Any, incident: Incident, actions: Iterable[str]) -> dict[str, Any]:
    """The actions among `actions` that the four-eyes rules refuse `user` on the case, each with
    its reason: verifying (pass or rework) a case they accepted, handled or fed back in any
    round; deciding on an extension (延期) they asked for. The services refuse these
    (ActionNotPermitted) and the pages and the API do not offer them."""
    return _four_eyes(user, [(incident, set(actions))])[0]


def _four_eyes(user: Any, asked: list[tuple[Incident, set[str]]]) -> list[dict[str, Any]]:
    """four_eyes_refusals for each (case, actions) of a list, in at most one query per rule
    whatever the list's length, none when no action concerned is asked about."""
    verifying = [
        case.pk
        for case, actions in asked
        if actions.intersection(VERIFY_ACTIONS) and case.handled_by_id != user.pk
    ]
    handled = set(
        IncidentTransition.objects.filter(
            incident_id__in=verifying, actor_id=user.pk, action__in=_HANDLED_ACTIONS
        ).values_list("incident_id", flat=True)
        if verifying
        else ()
    )
    deciding = [
        case.pk
        for case, actions in asked
        if actions.intersection(EXTENSION_DECISIONS) and case.extension_requested_until is not None
    ]
    requesters: dict[int, int | None] = {}
    if deciding:
        # The latest request of each case is the pending one.
        for incident_id, actor_id in (
            IncidentTransition.objects.filter(incident_id__in=deciding, action="request_extension")
            .order_by("incident_id", "-id")
            .values_list("incident_id", "actor_id")
        ):
            requesters.setdefault(incident_id, actor_id)
    answers = []
    for case, actions in asked:
        refused: dict[str, Any] = {}
        if actions.intersection(VERIFY_ACTIONS) and (
            case.handled_by_id == user.pk or case.pk in handled
        ):
            refused.update(dict.fromkeys(VERIFY_ACTIONS, HANDLER_VERIFIES))
        if case.pk in requesters and requesters[case.pk] == user.pk:
            refused.update(dict.fromkeys(EXTENSION_DECISIONS, REQUESTER_DECIDES))
        answers.append({action: why for action, why in refused.items() if action in actions})
    return answers


# --- the received-date range of lists, queues and exports ----------------------------------------

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
BAD_DAY = "bad_day"
DAY_OUT_OF_RANGE = "day_out_of_range"
DAYS_REVERSED = "days_reversed"
# The days a list may be narrowed to (a year 1 or 9999 would overflow the datetime arithmetic).
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2999, 12, 31)


def received_days(since: str, until: str) -> tuple[date | None, date | None, dict[str, str]]:
    """The received-date (受理日期) range of a list from its `since` and `until` parameters
    (YYYY-MM-DD, local days, both inclusive, either may be empty): (since, until, errors), where
    errors maps each bad parameter to what is wrong with it: BAD_DAY (not a date written
    YYYY-MM-DD), DAY_OUT_OF_RANGE (before FIRST_DAY or after LAST_DAY) or DAYS_REVERSED
    (`until` before `since`). Each surface words these itself."""
    days: dict[str, date | None] = {"since": None, "until": None}
    errors: dict[str, str] = {}
    for name, text in (("since", since.strip()), ("until", until.strip())):
        if not text:
            continue
        try:
            if not _DAY.fullmatch(text):
                raise ValueError
            day = date.fromisoformat(text)
        except ValueError:
            errors[name] = BAD_DAY
            continue
        if FIRST_DAY <= day <= LAST_DAY:
            days[name] = day
        else:
            errors[name] = DAY_OUT_OF_RANGE
    first, last = days["since"], days["until"]
    if first and last and last < first:
        errors["until"] = DAYS_REVERSED
    return first, last, errors


def received_within(
    cases: QuerySet[Incident], since: date | None, until: date | None
) -> QuerySet[Incident]:
    """`cases` received (created_at) from the start of local day `since` to the end of local day
    `until` (the server's time zone, CITYOPS_TIME_ZONE); None leaves that end open."""
    start, end = day_bounds(since, until)
    if start:
        cases = cases.filter(created_at__gte=start)
    if end:
        cases = cases.filter(created_at__lt=end)
    return cases


def day_bounds(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    """Local days `since` to `until` (both inclusive; None leaves that end open) as moments: the
    start of `since` and the start of the day after `until`, in the server's time zone
    (CITYOPS_TIME_ZONE)."""
    zone = timezone.get_default_timezone()
    start = datetime.combine(since, time.min, tzinfo=zone) if since else None
    end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=zone) if until else None
    return start, end


# --- consoles: the queues and pickers of the command pages (command.views.consoles) -------------

# How a console's queue is sorted: the most urgent running clock first, or the newest case first.
# Most urgent deadline first; newest first; gravest first (Ⅰ级 … Ⅳ级, then no level), each level
# by deadline (in a surge, "people trapped" before yesterday's noise complaint).
QUEUE_ORDERS = ("deadline", "newest", "severity")
GRAVEST_FIRST: tuple[str, ...] = tuple(reversed(SEVERITY_ORDER))
# The status filter "open": every case still in somebody's queue (parked ones included).
OPEN = "open"


def incident_queue(
    user: Any,
    *,
    district_code: str = "",
    street_code: str = "",
    community_code: str = "",
    department_code: str = "",
    department_share: str = "",
    owner_level: str = "",
    status: str | tuple[str, ...] = OPEN,
    category_code: str = "",
    overdue: bool | None = None,
    in_response: bool | None = None,
    text: str = "",
    since: date | None = None,
    until: date | None = None,
    order: str = "deadline",
) -> QuerySet[Incident]:
    """A console's queue: the cases `user` may see (never more — this starts from
    incidents_visible_to), narrowed to a district, street, community or department (with
    `department_share` "lead" the cases dispatched to it, "support" those it was called out on,
    models.for_department) and by the console's filters. `owner_level` keeps the cases a tier
    owns now (社区, 街道 or 区: the district's own are its triage, what escalation raised to it
    and arbitration). `status` is a status, a tuple of statuses, OPEN (the default) or "" for
    all; `overdue` True keeps the cases whose running clock is past its deadline, False those
    that are not; `in_response` True keeps the cases with departments called out (协办: a
    response plan started, or 增派 by hand), False those without; `text` matches the case
    number, category name (Chinese or English), description, address, community or grid name;
    `since` and `until` keep the cases received on those local days and between."""
    cases = incidents_visible_to(user).select_related("category", "assignee")
    if district_code:
        cases = cases.filter(district_code=district_code)
    if owner_level:
        cases = cases.filter(owner_level=owner_level)
    if street_code:
        cases = cases.filter(street_code=street_code)
    if community_code:
        cases = cases.filter(community_code=community_code)
    if department_code:
        cases = cases.filter(for_department(department_code, department_share))
    if status == OPEN:
        cases = cases.exclude(status__in=FINISHED_STATUSES)
    elif isinstance(status, tuple):
        cases = cases.filter(status__in=status)
    elif status:
        cases = cases.filter(status=status)
    if category_code:
        cases = cases.filter(category__code=category_code)
    if overdue is not None:
        late = Q(stage_deadline__lt=timezone.now())
        cases = cases.filter(late) if overdue else cases.exclude(late)
    if in_response is not None:
        alone = Q(support_department_codes=[])
        cases = cases.exclude(alone) if in_response else cases.filter(alone)
    cases = received_within(cases, since, until)
    text = text.strip()
    if text:
        cases = cases.filter(
            Q(number__icontains=text)
            | Q(category__name__icontains=text)
            | Q(category__name_en__icontains=text)
            | Q(description__icontains=text)
            | Q(address__icontains=text)
            | Q(community_name__icontains=text)
            | Q(grid_name__icontains=text)
        )
    if order == "newest":
        return cases.order_by("-created_at", "-id")
    by_deadline = (F("stage_deadline").asc(nulls_last=True), "-created_at", "-id")
    if order == "severity":
        gravest_first = Case(
            *(When(severity=level, then=Value(rank)) for rank, level in enumerate(GRAVEST_FIRST)),
            default=Value(len(GRAVEST_FIRST)),
            output_field=IntegerField(),
        )
        return cases.order_by(gravest_first, *by_deadline)
    return cases.order_by(*by_deadline)


def incident_status_counts(cases: QuerySet[Incident]) -> dict[str, int]:
    """How many of `cases` are in each status (statuses without a case are left out)."""
    rows = cases.order_by().values_list("status").annotate(n=Count("id"))
    return {status: n for status, n in rows if status in IncidentStatus.values}


def categories_for_picker() -> QuerySet[Category]:
    """The categories a case can be filed under now, in code order (grouped by major class)."""
    return Category.objects.active().order_by("code")


def departments() -> list[tuple[str, str]]:
    """(code, full name in the reader's language) of the departments a case can be dispatched
    to, in the order of accounts/data/departments.csv (there is no department model)."""
    return list(department_names().items())


# --- the audit page (command.views.audit): cases named in audit entries --------------------------


def incident_numbers_by_id(user: Any, ids: Iterable[int]) -> dict[int, str]:
    """The case numbers of the cases among `ids` that `user` may see, by id, in one query (an
    audit entry names a case by its id; the page shows its number)."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = incidents_visible_to(user).filter(pk__in=wanted).values_list("pk", "number")
    return dict(rows)


def incident_id_for_number(user: Any, number: str) -> int | None:
    """The id of the case numbered `number` if `user` may see it, None otherwise."""
    return incidents_visible_to(user).filter(number=number).values_list("pk", flat=True).first()


# --- the grid worker's phone (command.views.mobile) ----------------------------------------------


def categories_common_for(user: Any, *, days: int = 90, limit: int = 8) -> list[str]:
    """Codes of the categories reported most often in the last `days` among the cases `user` may
    see (their grid cell's for a grid worker): the picker offers them first."""
    since = timezone.now() - timedelta(days=days)
    rows = (
        incidents_visible_to(user)
        .filter(created_at__gte=since, category__active=True)
        .values("category__code")
        .annotate(n=Count("id"))
        .order_by("-n", "category__code")[:limit]
    )
    return [row["category__code"] for row in rows]


# Statuses in which a case waits for someone, per kind of actor: a handler (the assignee or the
# assigned department) accepts, handles and feeds back; the grid worker of the cell verifies the
# fix on the spot; the owning centre registers, dispatches, decides extensions and closes.
_HANDLER_WAITING = (IncidentStatus.DISPATCHED, IncidentStatus.ACCEPTED, IncidentStatus.HANDLING)
_FIELD_WAITING = (IncidentStatus.FED_BACK,)
_COMMAND_WAITING = (
    IncidentStatus.REPORTED,
    IncidentStatus.REGISTERED,
    IncidentStatus.RETURNED,
    IncidentStatus.FED_BACK,
    IncidentStatus.VERIFIED,
)
_HANDLED_ACTIONS = ("accept", "handle", "feed_back")
_COMMAND_LEVEL: dict[str, tuple[str, str]] = {
    Role.COMMUNITY_STAFF: (OwnerLevel.COMMUNITY, "community_code"),
    Role.STREET_OPERATOR: (OwnerLevel.STREET, "street_code"),
}


def incidents_needing_action_by(user: Any, *, limit: int = 200) -> list[tuple[Incident, list[str]]]:
    """The open cases waiting for `user` now, with the actions they may take on each (what the
    phone's 我的任务 lists), most urgent deadline first, at most `limit`.

    A case is listed when it is assigned to them (or to their department) and waits for a
    handler, or their department was called out on it (协办) and it is in hand (to confirm the
    arrival, then to report: 协办反馈); when it lies in their grid cell and its fix waits for
    verification by a grid worker — unless they accepted, handled or fed it back in any round
    (核查须由他人进行); when their centre owns it and it waits for a decision (register,
    dispatch, extension, close). Only cases they may see and act on appear."""
    return incidents_needing_action_page(user, limit=limit)[0]


def incidents_needing_action_page(
    user: Any, *, limit: int
) -> tuple[list[tuple[Incident, list[str]]], int]:
    """incidents_needing_action_by, and how many cases wait in all: the number listed, or, when
    the list was cut at `limit`, one COUNT of them (a case whose only step the four-eyes rule
    refuses the user is counted there too)."""
    cases = _waiting_for(user)
    if cases is None:
        return [], 0
    ordered = cases.select_related("category").order_by(
        F("stage_deadline").asc(nulls_last=True), "id"
    )
    fetched = list(ordered[: limit + 1])
    cut = len(fetched) > limit
    listed = [(incident, workflow.actions_for(user, incident)) for incident in fetched[:limit]]
    refusals = _four_eyes(user, [(incident, set(actions)) for incident, actions in listed])
    tasks = []
    for (incident, actions), refused in zip(listed, refusals, strict=True):
        allowed = [action for action in actions if action not in refused]
        if allowed:
            tasks.append((incident, allowed))
    return tasks, cases.count() if cut else len(tasks)


def _waiting_for(user: Any) -> QuerySet[Incident] | None:
    """The cases waiting for `user` (incidents_needing_action_by's rule), or None for a user
    nothing can wait for."""
    role = getattr(user, "role", "")
    place = getattr(user, "place_code", "") or ""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return None
    waiting = Q(assignee_id=user.pk, status__in=_HANDLER_WAITING)
    department = getattr(user, "department_code", "") or ""
    if role == Role.DEPARTMENT_HANDLER and department:
        waiting |= Q(assigned_department_code=department, status__in=_HANDLER_WAITING)
        # Called out on a case in hand (协办): its 确认到场 waits, then its 协办反馈 (news from
        # the scene, as often as there is any) until the case leaves the departments' hands.
        called_out = IncidentSupport.objects.filter(department_code=department)
        waiting |= Q(pk__in=called_out.values("incident_id"), status__in=_HANDLER_WAITING)
    if role == Role.GRID_WORKER and place:
        handled_by_me = IncidentTransition.objects.filter(
            incident=OuterRef("pk"), actor_id=user.pk, action__in=_HANDLED_ACTIONS
        )
        waiting |= (
            Q(grid_code__startswith=place, status__in=_FIELD_WAITING)
            & ~Q(handled_by_id=user.pk)
            & Q(~Exists(handled_by_me))
        )
    if role in _COMMAND_LEVEL and place:
        level, field = _COMMAND_LEVEL[role]
        owned = Q(owner_level__in=OWNER_LEVEL_ORDER[: OWNER_LEVEL_ORDER.index(level) + 1])
        waiting |= Q(**{field: place}) & owned & Q(status__in=_COMMAND_WAITING)
        waiting |= (
            Q(**{field: place})
            & owned
            & Q(
                status__in=(IncidentStatus.ACCEPTED, IncidentStatus.HANDLING),
                extension_requested_until__isnull=False,
            )
        )
    return incidents_visible_to(user).filter(waiting)


def incident_street_open_counts(user: Any) -> dict[str, int]:
    """Street code → how many open cases of that street `user` may see."""
    rows = (
        incidents_visible_to(user)
        .exclude(status__in=FINISHED_STATUSES)
        .order_by()
        .values_list("street_code")
        .annotate(n=Count("id"))
    )
    return dict(rows)


# --- the wall screen (command.views.wall): a district's cases and its day in figures -------------
#
# The wall shows a whole district to its command centre (a district operator, or a kiosk holding
# the district's screen token): the caller has checked that district-wide access. "Today" starts
# at midnight in the district's time zone (TIME_ZONE); `now` and `since` are passed in so that one
# snapshot is computed at one moment. The wall's script recomputes the same figures from the cases
# and number lists returned here as events arrive, so the definitions below are also its own.

WALL_STEP_ACTIONS = ("register", "dispatch")


def wall_day_start(now: datetime) -> datetime:
    """Midnight, in the district's time zone, of the day `now` falls on: where "today" starts."""
    return timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)


def _wall_district(district_code: str) -> QuerySet[Incident]:
    return Incident.objects.filter(district_code=district_code)


def wall_cases(*, district_code: str, since: datetime) -> list[dict[str, Any]]:
    """The cases a wall draws and counts: every open case of the district, and every case that
    changed since `since` (reported, registered, closed, rejected … today), oldest first. Map and
    queue facts in the shape of the events' case summary (incidents.events.incident_summary),
    plus `closed_at` and, for a case with departments called out (协办: a response plan, 增派),
    `response_at`, when the first was called out; never the reporter, the description or the
    address."""
    rows = list(
        _wall_district(district_code)
        .filter(
            ~Q(status__in=FINISHED_STATUSES) | Q(created_at__gte=since) | Q(updated_at__gte=since)
        )
        .order_by("created_at", "id")
        .values(
            "number",
            "status",
            "severity",
            "location",
            "street_code",
            "community_code",
            "grid_code",
            "triage",
            "owner_level",
            "owner_code",
            "stage",
            "stage_deadline",
            "stage_warned",
            "escalations",
            "created_at",
            "closed_at",
            "category__code",
            "category__name",
            "id",
            "assigned_department_code",
            "support_department_codes",
            "support_arrived_codes",
            "plan_code",
        )
    )
    called_out = [row["id"] for row in rows if row["support_department_codes"]]
    response_at = dict(
        IncidentSupport.objects.filter(incident_id__in=called_out)
        .values("incident_id")
        .annotate(first=Min("called_at"))
        .values_list("incident_id", "first")
        if called_out
        else []
    )
    return [
        {
            "number": row["number"],
            "status": row["status"],
            "category": {"code": row["category__code"], "name": row["category__name"]},
            "severity": row["severity"] or None,
            "location": [round(row["location"].x, 6), round(row["location"].y, 6)],
            "street": row["street_code"],
            "community": row["community_code"],
            "grid": row["grid_code"],
            "triage": row["triage"],
            "owner": {"level": row["owner_level"], "code": row["owner_code"]},
            "stage": row["stage"] or None,
            "stage_deadline": row["stage_deadline"],
            "stage_warned": row["stage_warned"],
            "escalations": row["escalations"],
            "created_at": row["created_at"],
            "closed_at": row["closed_at"],
            "department": row["assigned_department_code"] or None,
            "supports": row["support_department_codes"],
            "supports_arrived": row["support_arrived_codes"],
            "plan": row["plan_code"] or None,
            "response_at": response_at.get(row["id"]),
        }
        for row in rows
    ]


def _parse_moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value)
    return None


def incidents_with_late_steps(incident_ids: list[int]) -> set[int]:
    """Of these cases, those that overran a time limit at least once (超时): some step of their
    timeline was taken after the deadline of the clock that ran before it — registered after the
    立案 limit, accepted after the 签收 limit, fed back after the 处置 limit (as extended by an
    approved 延期) and so on. Each timeline row records the deadline of the clock running after
    it; the first clock (立案, started by the report) is recomputed from the category's limit."""
    late: set[int] = set()
    for start in range(0, len(incident_ids), 500):
        chunk = incident_ids[start : start + 500]
        register_limits = {
            category_id: (amount, unit)
            for category_id, amount, unit in StageLimit.objects.filter(
                stage=Stage.REGISTER, category__incidents__id__in=chunk
            )
            .distinct()
            .values_list("category_id", "amount", "unit")
        }
        running: dict[int, datetime | None] = {}
        for incident_id, action, at, data, category_id in (
            IncidentTransition.objects.filter(incident_id__in=chunk)
            .order_by("incident_id", "id")
            .values_list("incident_id", "action", "created_at", "data", "incident__category_id")
        ):
            deadline = running.get(incident_id)
            if deadline is not None and at > deadline:
                late.add(incident_id)
            if action == "report":
                limit = register_limits.get(category_id)
                running[incident_id] = calendar.deadline(at, *limit) if limit else None
            else:
                running[incident_id] = _parse_moment((data or {}).get("stage_deadline"))
    return late


def wall_today(*, district_code: str, since: datetime, now: datetime) -> dict[str, Any]:
    """The day's figures of a district (KPI tiles) and the case numbers behind them.

    `numbers`: reported (received since `since`), registered and dispatched (a 立案 / 派遣 step
    since `since`), closed (closed since `since` and not reopened), on_time (of those, the ones
    that never overran a limit: incidents_with_late_steps), escalated (督办 since `since`).
    `kpis`: their counts, `on_time_rate` (on_time / closed, None before the first closure) and
    `overdue` — open cases whose running clock is past its deadline at `now`."""
    cases = _wall_district(district_code)
    reported = sorted(cases.filter(created_at__gte=since).values_list("number", flat=True))
    steps: dict[str, set[str]] = {action: set() for action in WALL_STEP_ACTIONS}
    for action, number in IncidentTransition.objects.filter(
        incident__district_code=district_code, created_at__gte=since, action__in=WALL_STEP_ACTIONS
    ).values_list("action", "incident__number"):
        steps[action].add(number)
    closed_rows = list(
        cases.filter(status__in=CLOSED_STATUSES, closed_at__gte=since).values_list("id", "number")
    )
    late = incidents_with_late_steps([pk for pk, _ in closed_rows])
    closed = sorted(number for _, number in closed_rows)
    on_time = sorted(number for pk, number in closed_rows if pk not in late)
    escalated = sorted(
        set(
            Supervision.objects.filter(
                incident__district_code=district_code, created_at__gte=since
            ).values_list("incident__number", flat=True)
        )
    )
    overdue = cases.exclude(status__in=FINISHED_STATUSES).filter(stage_deadline__lt=now).count()
    return {
        "numbers": {
            "reported": reported,
            "registered": sorted(steps["register"]),
            "dispatched": sorted(steps["dispatch"]),
            "closed": closed,
            "on_time": on_time,
            "escalated": escalated,
        },
        "kpis": {
            "reported": len(reported),
            "registered": len(steps["register"]),
            "dispatched": len(steps["dispatch"]),
            "closed": len(closed),
            "on_time": len(on_time),
            "on_time_rate": round(len(on_time) / len(closed), 4) if closed else None,
            "overdue": overdue,
            "escalated": len(escalated),
        },
    }


def wall_by_street(
    *, district_code: str, since: datetime, now: datetime
) -> dict[str, dict[str, int]]:
    """Per street code of the district: reported since `since`, open now, overdue at `now` (open,
    running clock past its deadline), closed since `since`. Streets without such cases are left
    out."""
    open_now = ~Q(status__in=FINISHED_STATUSES)
    closed_today = Q(status__in=CLOSED_STATUSES, closed_at__gte=since)
    rows = (
        _wall_district(district_code)
        .filter(open_now | Q(created_at__gte=since) | closed_today)
        .order_by()
        .values("street_code")
        .annotate(
            reported=Count("id", filter=Q(created_at__gte=since)),
            open_cases=Count("id", filter=open_now),
            overdue=Count("id", filter=open_now & Q(stage_deadline__lt=now)),
            closed=Count("id", filter=closed_today),
        )
    )
    return {
        row["street_code"]: {
            "reported": row["reported"],
            "open": row["open_cases"],
            "overdue": row["overdue"],
            "closed": row["closed"],
        }
        for row in rows
    }


def wall_by_category(*, district_code: str, since: datetime, limit: int) -> list[dict[str, Any]]:
    """The categories most reported since `since`, most first (ties by code), at most `limit`."""
    rows = (
        _wall_district(district_code)
        .filter(created_at__gte=since)
        .order_by()
        .values("category__code", "category__name")
        .annotate(n=Count("id"))
        .order_by("-n", "category__code")[:limit]
    )
    return [
        {"code": row["category__code"], "name": row["category__name"], "count": row["n"]}
        for row in rows
    ]


def wall_hourly(*, district_code: str, since: datetime) -> dict[str, list[int]]:
    """Cases reported and closed in each hour (0–23, the district's time zone) since `since`."""
    cases = _wall_district(district_code)
    reported = [0] * 24
    closed = [0] * 24
    for hour, n in (
        cases.filter(created_at__gte=since)
        .annotate(hour=ExtractHour("created_at"))
        .order_by()
        .values_list("hour")
        .annotate(n=Count("id"))
    ):
        reported[hour] = n
    for hour, n in (
        cases.filter(status__in=CLOSED_STATUSES, closed_at__gte=since)
        .annotate(hour=ExtractHour("closed_at"))
        .order_by()
        .values_list("hour")
        .annotate(n=Count("id"))
    ):
        closed[hour] = n
    return {"reported": reported, "closed": closed}


def wall_ticker(*, district_code: str, since: datetime, limit: int) -> list[dict[str, Any]]:
    """The latest cases reported and escalated (督办) since `since`, newest first, at most
    `limit`: `{"kind": "reported" | "escalated", "number", "at"}` (+ `"to"`, the level an
    escalation raised the case to)."""
    items: list[dict[str, Any]] = [
        {"kind": "reported", "number": number, "at": at}
        for number, at in _wall_district(district_code)
        .filter(created_at__gte=since)
        .order_by("-created_at", "-id")
        .values_list("number", "created_at")[:limit]
    ]
    items += [
        {"kind": "escalated", "number": number, "at": at, "to": to_level}
        for number, at, to_level in Supervision.objects.filter(
            incident__district_code=district_code, created_at__gte=since
        )
        .order_by("-created_at", "-id")
        .values_list("incident__number", "created_at", "to_level")[:limit]
    ]
    items.sort(key=lambda item: item["at"], reverse=True)
    return items[:limit]


# --- photos (incidents.services.photos): scoped reads, never a public /media/ URL ---------------

# Who may fetch a photo's original bytes (the evidence, with the phone's EXIF and GPS): the
# staff of the hierarchy, auditors and admins — besides the user who uploaded it. Department
# handlers and grid workers see the display copy only.
PHOTO_ORIGINAL_ROLES = frozenset(
    {
        Role.DISTRICT_OPERATOR,
        Role.STREET_OPERATOR,
        Role.COMMUNITY_STAFF,
        Role.AUDITOR,
        Role.ADMIN,
    }
)


def incident_photos(incident: Incident) -> QuerySet[IncidentPhoto]:
    """The case's photos, oldest first (the caller has checked visibility of the case)."""
    return incident.photos.order_by("id")


def incident_photo_for_user(user: Any, number: str, photo_id: int) -> IncidentPhoto:
    """Photo `photo_id` of case `number` if `user` may see the case; IncidentPhoto.DoesNotExist
    otherwise — for a case they may not see exactly as for one that does not exist."""
    return IncidentPhoto.objects.select_related("incident").get(
        pk=photo_id, incident__in=incidents_visible_to(user).filter(number=number)
    )


def photo_original_allowed(user: Any, photo: IncidentPhoto) -> bool:
    """May `user` (who can see the photo's case) fetch its original bytes?"""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    if photo.uploaded_by_id is not None and photo.uploaded_by_id == user.pk:
        return True
    return getattr(user, "role", "") in PHOTO_ORIGINAL_ROLES


# --- duplicate suggestions (疑似重复) -----------------------------------------------------------

# Mean Earth radius (IUGG), metres: haversine on the sphere is within 0.5 % of the ellipsoid,
# far below a GPS fix's error at the radii a category uses.
EARTH_RADIUS_M = 6_371_008.8
# Metres per degree of latitude at its smallest (the equator): the bounding box is never short.
_M_PER_DEGREE_MIN = 110_574.0
DUPLICATE_SUGGESTIONS_MAX = 10


@dataclass(frozen=True)
class DuplicateCandidate:
    incident: Incident
    distance_m: float


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres between two WGS-84 points given in degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def incident_duplicate_candidates(
    incident: Incident, user: Any, *, limit: int = DUPLICATE_SUGGESTIONS_MAX
) -> list[DuplicateCandidate]:
    """Open cases that may be the same problem as `incident` (疑似重复), nearest first: the same
    category, not finished and not merged, within the category's `duplicate_radius_m` metres,
    reported at most `duplicate_window_hours` before it, visible to `user`; never the case
    itself. A radius or window of 0 switches suggestions off for the category.

    The database narrows by category, status, time and a box around the radius (`intersects`,
    which SpatiaLite and PostGIS answer alike for a point in a rectangle); the exact distance is
    the haversine formula here, so both backends give the same answer."""
    category = incident.category
    radius = category.duplicate_radius_m
    window = category.duplicate_window_hours
    if radius <= 0 or window <= 0:
        return []
    lon, lat = float(incident.location.x), float(incident.location.y)
    dlat = radius / _M_PER_DEGREE_MIN
    # A degree of longitude shrinks with latitude: size the box at its edge nearer the pole.
    dlon = radius / (_M_PER_DEGREE_MIN * math.cos(math.radians(min(89.0, abs(lat) + dlat))))
    box = Polygon.from_bbox((lon - dlon, lat - dlat, lon + dlon, lat + dlat))
    box.srid = 4326
    rows = (
        incidents_visible_to(user)
        .exclude(status__in=FINISHED_STATUSES)  # open: not finished, not merged
        .filter(
            category_id=category.pk,
            created_at__gte=incident.created_at - timedelta(hours=window),
            created_at__lte=incident.created_at,
            location__intersects=box,
        )
        .exclude(pk=incident.pk)
        .only("pk", "number", "status", "created_at", "location")  # what a suggestion shows
    )
    found = []
    for other in rows:
        distance = haversine_m(lon, lat, float(other.location.x), float(other.location.y))
        if distance <= radius:
            found.append(DuplicateCandidate(incident=other, distance_m=distance))
    found.sort(key=lambda c: (c.distance_m, c.incident.pk))
    return found[:limit]


@dataclass(frozen=True)
class MergedCases:
    """The cases merged into a primary (已合并): those the reader may see, oldest first, and how
    many there are in all (the others are outside the reader's place: counted, never named)."""

    visible: list[Incident]
    total: int

    @property
    def hidden(self) -> int:
        return self.total - len(self.visible)


def incident_merged_cases(incident: Incident, user: Any) -> MergedCases:
    """The duplicates merged into `incident` (its `duplicates`; the caller has checked that
    `user` may see `incident`). One query for the count when nothing was merged (the usual
    case), two otherwise."""
    total = incident.duplicates.count()
    if not total:
        return MergedCases(visible=[], total=0)
    visible = list(
        incidents_visible_to(user)
        .filter(merged_into_id=incident.pk)
        .order_by("id")
        .only("pk", "number", "channel", "created_at")  # what the list shows
    )
    return MergedCases(visible=visible, total=total)


def incident_supports(incident: Incident) -> list[dict[str, Any]]:
    """The departments called out on the case (协办), in the order called: code, short name in
    the reader's language, the plan, when and by whom; when it confirmed it is on the scene
    (确认到场) and who said so (None, None while it has not): usernames, and the names a page
    shows (`called_by_name`, `arrived_by_name`: the full name, else the username); and its
    latest 协办反馈 (`last_report`: when, the note, who, how many reports in all; None before
    the first)."""
    names = department_short_names()
    rows = IncidentSupport.objects.filter(incident=incident).select_related(
        "called_by", "arrived_by"
    )
    reports: dict[str, dict[str, Any]] = {}
    for step in (
        IncidentTransition.objects.filter(incident=incident, action="support_report")
        .select_related("actor")
        .order_by("-created_at", "-id")
    ):
        code = (step.data or {}).get("department", "")
        if code in reports:
            reports[code]["count"] += 1
        else:
            reports[code] = {
                "at": step.created_at,
                "note": step.reason,
                "by_name": step.actor.display_name if step.actor is not None else None,
                "count": 1,
            }
    return [
        {
            "code": row.department_code,
            "name": names.get(row.department_code, row.department_code),
            "plan": row.plan_code,
            "called_at": row.called_at,
            "called_by": row.called_by.get_username(),
            "arrived_at": row.arrived_at,
            "arrived_by": row.arrived_by.get_username() if row.arrived_by is not None else None,
            "called_by_name": row.called_by.display_name,
            "arrived_by_name": row.arrived_by.display_name if row.arrived_by is not None else None,
            "last_report": reports.get(row.department_code),
        }
        for row in rows.order_by("called_at", "id")
    ]
