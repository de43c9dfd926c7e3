"""Reading responders' positions, scoped like cases: a district operator (and auditor, admin)
sees their district's, a street operator their street's, community staff their community's;
nobody else sees anyone's. Positions older than CITYOPS_RESPONDER_MAX_AGE_MINUTES, of inactive
accounts or of accounts no longer in a field role are not shown."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Role
from incidents.selectors import haversine_m

from .models import ResponderPosition
from .services import RESPONDER_ROLES, responder_as_dict

DISTRICT_WIDE = (Role.DISTRICT_OPERATOR, Role.AUDITOR, Role.ADMIN)


def max_age() -> timedelta:
    return timedelta(minutes=settings.CITYOPS_RESPONDER_MAX_AGE_MINUTES)


def _current(now: datetime | None = None) -> QuerySet[ResponderPosition]:
    now = now or timezone.now()
    return (
        ResponderPosition.objects.filter(
            received_at__gte=now - max_age(),
            user__is_active=True,
            user__role__in=RESPONDER_ROLES,
        )
        .select_related("user")
        .order_by("street_code", "community_code", "grid_code", "user_id")
    )


def may_see_responders(user: Any) -> bool:
    role = getattr(user, "role", "") or ""
    return bool(
        getattr(user, "is_authenticated", False)
        and (getattr(user, "place_code", "") or "")
        and role in (*DISTRICT_WIDE, Role.STREET_OPERATOR, Role.COMMUNITY_STAFF)
    )


def responders_visible_to(user: Any, now: datetime | None = None) -> list[dict[str, Any]]:
    """The current positions `user` may see (none for a role that sees none)."""
    if not may_see_responders(user):
        return []
    place = user.place_code
    positions = _current(now)
    if user.role in DISTRICT_WIDE:
        positions = positions.filter(district_code=place)
    elif user.role == Role.STREET_OPERATOR:
        positions = positions.filter(street_code=place)
    else:
        positions = positions.filter(community_code=place)
    return [responder_as_dict(position) for position in positions]


def responders_for_district(
    *, district_code: str, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The district's current positions (the wall screen's snapshot)."""
    return [
        responder_as_dict(position)
        for position in _current(now).filter(district_code=district_code)
    ]


def responders_near(
    user: Any, *, lon: float, lat: float, within_m: float = 3000, limit: int = 5
) -> list[dict[str, Any]]:
    """The responders `user` may see within `within_m` of a point, nearest first, each with its
    `distance_m` (a case page's 附近的响应人员)."""
    near = []
    for responder in responders_visible_to(user):
        distance = haversine_m(lon, lat, responder["lon"], responder["lat"])
        if distance <= within_m:
            near.append({**responder, "distance_m": round(distance)})
    near.sort(key=lambda responder: responder["distance_m"])
    return near[:limit]
