"""Responders' positions: report (share) and clear (stop sharing), the only writers of
`ResponderPosition`; and starting a response plan on a case (plan_activate, 一键调派).

A position is telemetry, not a case: each report replaces the responder's previous one and is
announced on the live feed (`dispatch.responder_moved`) to the district, street and community
it lies in; the audit trail records when a responder starts and stops sharing, not every move
(ADR 0011). Both run in one transaction with their outbox event, like every state change.
"""

from __future__ import annotations

import math
from typing import Any

from django.contrib.gis.geos import Point
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Role
from audit.services import audit_record
from dispatch.plans import known_plans
from gridmap.locator import InvalidCoordinates, NoActiveGeneration, OutsideJurisdiction, locate
from incidents.models import Incident, IncidentStatus
from incidents.services import (
    IncidentInputError,
    incident_call_out,
    incident_dispatch,
    incident_register,
)
from incidents.workflow import IN_HAND
from realtime.outbox import publish, publish_batch

from .models import ResponderPosition

# Who works in the field and may share a position.
RESPONDER_ROLES = (Role.GRID_WORKER, Role.DEPARTMENT_HANDLER)
# A phone's reported accuracy beyond this (metres) is not a position worth showing.
ACCURACY_MAX_M = 5_000.0


class ResponderError(Exception):
    pass


class NotAResponder(ResponderError):
    """The account is not a field role (grid worker, department handler)."""


class ResponderInputError(ResponderError):
    """A refused value: `field` names it, `reason` says what is wrong (in the request's
    language). For a point outside the district, `field` is "location" and `distance_m` says
    how far out it is."""

    def __init__(self, field: str, reason: str, distance_m: float | None = None) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.distance_m = distance_m


class GeographyUnavailable(ResponderError):
    """No boundary generation is active: no position can be placed (an operations problem)."""


def responder_scopes(position: ResponderPosition) -> list[str]:
    """Who may see where a responder is: the district, street and community the position lies
    in (the wall and the consoles of that place)."""
    return [
        f"district:{position.district_code}",
        f"street:{position.street_code}",
        f"community:{position.community_code}",
    ]


def responder_as_dict(position: ResponderPosition) -> dict[str, Any]:
    """A position as the API, the wall's snapshot and the live events show it."""
    user = position.user
    return {
        "id": user.pk,
        "name": user.display_name,
        "role": user.role,
        "lon": round(position.point.x, 6),
        "lat": round(position.point.y, 6),
        "accuracy_m": position.accuracy_m,
        "at": position.received_at.isoformat().replace("+00:00", "Z"),
        "grid": {"code": position.grid_code, "name": position.grid_name},
        "community": {"code": position.community_code, "name": position.community_name},
        "street": {"code": position.street_code, "name": position.street_name},
    }


def _accuracy(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ResponderInputError("accuracy_m", _("必须是以米为单位的数字。"))
    try:
        accuracy = float(value)
    except ValueError:
        reason = _("“%(value)s”不是数字。") % {"value": value}
        raise ResponderInputError("accuracy_m", reason) from None
    if not math.isfinite(accuracy) or accuracy < 0:
        raise ResponderInputError("accuracy_m", _("必须是不小于 0 的有限米数。"))
    if accuracy > ACCURACY_MAX_M:
        reason = _("%(accuracy)s 米过于粗略，无法显示（最多 %(limit)s 米）。") % {
            "accuracy": f"{accuracy:.0f}",
            "limit": f"{ACCURACY_MAX_M:.0f}",
        }
        raise ResponderInputError("accuracy_m", reason)
    return accuracy


def responder_position_report(
    *, user: Any, lon: Any, lat: Any, accuracy_m: Any = None, ip: str | None = None
) -> ResponderPosition:
    """Store `user`'s position (replacing the previous one) and announce it."""
    if getattr(user, "role", "") not in RESPONDER_ROLES:
        raise NotAResponder(_("只有网格员和职能部门处置人员可以共享位置。"))
    try:
        location = locate(lon, lat)
    except InvalidCoordinates as exc:
        raise ResponderInputError(exc.field, exc.reason) from None
    except OutsideJurisdiction as exc:
        reason = _("该点在区界外 %(distance)s 米，不在辖区内。") % {
            "distance": f"{exc.distance_m:.0f}"
        }
        raise ResponderInputError("location", reason, exc.distance_m) from None
    except NoActiveGeneration:
        raise GeographyUnavailable(_("尚无启用的边界版本。")) from None
    accuracy = _accuracy(accuracy_m)
    path = location.path
    fields = {
        "point": Point(location.lon, location.lat, srid=4326),
        "accuracy_m": accuracy,
        "district_code": path.district.code,
        "street_code": path.street.code,
        "community_code": path.community.code,
        "grid_code": path.grid.code,
        "grid_name": path.grid.name,
        "community_name": path.community.name,
        "street_name": path.street.name,
        "received_at": timezone.now(),
    }
    try:
        return _store(user, fields, ip)
    except IntegrityError:
        # Two first reports of one responder at once: the other one inserted the row; this
        # one now finds it and updates it.
        return _store(user, fields, ip)


def _store(user: Any, fields: dict[str, Any], ip: str | None) -> ResponderPosition:
    """The transaction of a report: the row replaced or created, its audit entry when sharing
    starts, its events."""
    with transaction.atomic():
        previous = ResponderPosition.objects.select_for_update().filter(user=user).first()
        before = responder_scopes(previous) if previous is not None else []
        # The row is locked (or absent): one UPDATE or one INSERT, no second look-up.
        position = previous or ResponderPosition(user=user)
        for name, value in fields.items():
            setattr(position, name, value)
        position.save(force_insert=previous is None)
        payload = {"responder": responder_as_dict(position)}
        if previous is None:
            audit_record(
                actor=user,
                action="responder.sharing_started",
                obj_type="responder",
                obj_id=user.pk,
                before=None,
                after={"grid": fields["grid_code"], "street": fields["street_code"]},
                ip=ip,
            )
        scopes = responder_scopes(position)
        left = [scope for scope in before if scope not in scopes]
        if left:
            # The places it left drop it; the places it is in now see it move.
            publish_batch(
                [
                    ("dispatch.responder_moved", payload, scopes),
                    ("dispatch.responder_cleared", {"responder": {"id": user.pk}}, left),
                ]
            )
        else:
            publish(type="dispatch.responder_moved", payload=payload, scopes=scopes)
    return position


def responder_position_clear(*, user: Any, ip: str | None = None) -> bool:
    """Stop sharing: forget `user`'s position and tell the places that showed it. False when
    there was nothing shared (nothing is written)."""
    with transaction.atomic():
        position = ResponderPosition.objects.select_for_update().filter(user=user).first()
        if position is None:
            return False
        scopes = responder_scopes(position)
        grid = position.grid_code
        position.delete()
        audit_record(
            actor=user,
            action="responder.sharing_stopped",
            obj_type="responder",
            obj_id=user.pk,
            before={"grid": grid},
            after=None,
            ip=ip,
        )
        publish(
            type="dispatch.responder_cleared", payload={"responder": {"id": user.pk}}, scopes=scopes
        )
    return True


# --- response plans (应急预案, 一键调派) ------------------------------------------------------


def plan_activate(
    *, incident: Incident, plan_code: str, by: Any, note: str = "", ip: str | None = None
) -> Incident:
    """一键调派: start the response plan `plan_code` on an emergency case, through the workflow.

    * A case not yet in a department's hands is dispatched to the plan's lead department with
      its supporting departments called out beside it (协办), through
      incidents.services.incident_dispatch: one step, one timeline row, one audit entry, one
      event that reaches every department called out. A case still 已上报 is registered first
      (立案, its own step: an emergency that waits for a separate click waits too long); if
      the dispatch is then refused, the case stays registered and the refusal is raised.
    * A case in hand (dispatched, accepted, handling) stays with its department: the plan's
      lead and supports are called out beside it (incidents.services.incident_call_out, 增派).

    A plan graver than the case's severity raises the severity to the plan's (升级响应). The
    plan becomes the case's plan in force.

    Raises IncidentInputError("plan", …) for a code no plan has, a plan of another category or
    one lesser than the case's plan in force (a response is raised, never lowered); the
    workflow's refusals as incident_dispatch and incident_call_out raise them."""
    plan = known_plans().get((plan_code or "").strip())
    if plan is None:
        raise IncidentInputError(
            "plan",
            _("“%(code)s”不是已知的应急预案。") % {"code": plan_code},
        )
    if plan.category_code != incident.category.code:
        raise IncidentInputError(
            "plan",
            _("预案“%(plan)s”不适用于这个案件（事项分类不符）。") % {"plan": plan.label},
        )
    if plan.lesser_than(incident.plan_code):
        raise IncidentInputError(
            "plan",
            _("本案已启动“%(current)s”，不能改用较低级别的“%(plan)s”。")
            % {"current": known_plans()[incident.plan_code].label, "plan": plan.label},
        )
    if incident.status in IN_HAND:
        return incident_call_out(
            incident=incident,
            by=by,
            supports=(plan.lead, *plan.supports),
            plan_code=plan.code,
            severity=plan.min_severity,
            note=note,
            ip=ip,
        )
    if incident.status == IncidentStatus.REPORTED:
        incident = incident_register(incident=incident, by=by, note=note, ip=ip)
    return incident_dispatch(
        incident=incident,
        by=by,
        department_code=plan.lead,
        supports=plan.supports,
        plan_code=plan.code,
        severity=plan.min_severity,
        note=note,
        ip=ip,
    )
