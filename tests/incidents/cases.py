"""Factories for incident tests: users in every role and place, points inside a grid cell, cases
reported through the real intake service.

The demo geography (tests/conftest.py) has streets 440309001 (龙华街道) … 440309006; the cases
here sit in grid 440309001001001 (龙华街道 / 三联社区) unless a test says otherwise.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, NamedTuple

import shapely

from accounts.models import Role, User
from audit.models import AuditEntry
from gridmap.models import Region
from incidents.models import Category, Channel, Incident, IncidentTransition
from incidents.services import incident_report
from realtime.models import OutboxEvent

DISTRICT = "440309"
STREET = "440309001"
COMMUNITY = "440309001001"
GRID = "440309001001001"
OTHER_GRID_SAME_COMMUNITY = "440309001001002"
OTHER_STREET = "440309002"
OTHER_STREET_COMMUNITY = "440309002001"
OTHER_STREET_GRID = "440309002001001"

# 06010 暴露垃圾: an event matter handled by 城管 (CGJ), handle limit 4 working hours (sourced).
RUBBISH = "06010"
FIRE = "90001"  # 火灾, an emergency (default severity Ⅳ, department XF)

_serial = itertools.count(1)


def make_user(role: str = "", place: str = "", department: str = "", **extra: Any) -> User:
    return User.objects.create_user(
        f"{role or 'norole'}-{next(_serial)}",
        password=None,  # unusable: hashing a password costs ~0.3 s per user
        role=role,
        place_code=place,
        department_code=department,
        **extra,
    )


def point_in(grid_code: str) -> tuple[float, float]:
    """A point well inside a grid cell of the active generation (WGS-84)."""
    region = Region.objects.get(generation__status="active", code=grid_code)
    point = shapely.point_on_surface(shapely.from_wkb(bytes(region.geom.wkb)))
    return point.x, point.y


def category(code: str = RUBBISH) -> Category:
    return Category.objects.get(code=code)


def report(
    *,
    grid: str = GRID,
    code: str = RUBBISH,
    reporter: User | None = None,
    channel: str = Channel.CITIZEN,
    **extra: Any,
) -> Incident:
    lon, lat = point_in(grid)
    return incident_report(
        channel=channel,
        category=category(code),
        lon=lon,
        lat=lat,
        description=extra.pop("description", "路边堆放垃圾"),
        reporter=reporter,
        **extra,
    )


@dataclass
class Cast:
    """One user in every role around the case's place, and some outside it."""

    district: User
    street: User
    community: User
    grid_worker: User
    grid_worker_2: User  # the same grid: a second pair of eyes for verification
    handler: User  # 城管 CGJ
    handler_2: User  # also CGJ
    other_department: User  # 水务 SWJ
    auditor: User
    admin: User
    no_role: User
    other_street: User  # operator of 440309002
    other_community: User  # staff of 440309001002, same street
    other_grid_worker: User  # another grid of the same community


def make_cast() -> Cast:
    return Cast(
        district=make_user(Role.DISTRICT_OPERATOR, DISTRICT),
        street=make_user(Role.STREET_OPERATOR, STREET),
        community=make_user(Role.COMMUNITY_STAFF, COMMUNITY),
        grid_worker=make_user(Role.GRID_WORKER, GRID),
        grid_worker_2=make_user(Role.GRID_WORKER, GRID),
        handler=make_user(Role.DEPARTMENT_HANDLER, department="CGJ"),
        handler_2=make_user(Role.DEPARTMENT_HANDLER, department="CGJ"),
        other_department=make_user(Role.DEPARTMENT_HANDLER, department="SWJ"),
        auditor=make_user(Role.AUDITOR),
        admin=make_user(Role.ADMIN),
        no_role=make_user(),
        other_street=make_user(Role.STREET_OPERATOR, OTHER_STREET),
        other_community=make_user(Role.COMMUNITY_STAFF, "440309001002"),
        other_grid_worker=make_user(Role.GRID_WORKER, OTHER_GRID_SAME_COMMUNITY),
    )


class Trail(NamedTuple):
    """How many timeline rows, audit entries and outbox events a case has so far."""

    transitions: int
    audits: int
    events: int


def trail(incident: Incident) -> Trail:
    return Trail(
        transitions=IncidentTransition.objects.filter(incident_id=incident.pk).count(),
        audits=AuditEntry.objects.filter(
            object_type="incidents.incident", object_id=str(incident.pk)
        ).count(),
        events=OutboxEvent.objects.filter(payload__incident__number=incident.number).count(),
    )


def last_event(incident: Incident) -> OutboxEvent:
    event = (
        OutboxEvent.objects.filter(payload__incident__number=incident.number)
        .order_by("-id")
        .first()
    )
    assert event is not None
    return event


def event_scopes(event: OutboxEvent) -> set[str]:
    return set(event.scopes.values_list("scope", flat=True))


def last_audit(incident: Incident) -> AuditEntry:
    entry = (
        AuditEntry.objects.filter(object_type="incidents.incident", object_id=str(incident.pk))
        .order_by("-sequence")
        .first()
    )
    assert entry is not None
    return entry
