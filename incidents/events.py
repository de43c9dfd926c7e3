"""Events the incidents app publishes, one function per event type; each is listed, with its
payload, scopes and delivery guarantee, in docs/realtime.md.

Payloads carry what a screen needs to move a case on the map and in a queue — number, status,
category, place, owner, assignment, clock — and never the reporter's name or phone number or the
free-text description: an event goes to every screen of the district.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from accounts.models import Role
from incidents.location import hexewkb_lon_lat
from incidents.models import Incident, IncidentTransition, Supervision

REPORTED = "incidents.incident_reported"
STATUS_CHANGED = "incidents.incident_status_changed"
EXTENSION_REQUESTED = "incidents.incident_extension_requested"
EXTENSION_DECIDED = "incidents.incident_extension_decided"
WARNED = "incidents.incident_warned"
ESCALATED = "incidents.incident_escalated"
MERGES_CHANGED = "incidents.incident_merges_changed"

# Actions whose outcome the reporting user is told about (their own case: registered or not,
# dispatched, closed, merged, reopened …); the routine moves in between go to the centres only.
REPORTER_ACTIONS = frozenset(
    {
        "report",
        "register",
        "reject",
        "dispatch",
        "close",
        "evaluate",
        "reopen",
        "merge",
        "unmerge",
    }
)


def incident_scopes(
    incident: Incident,
    *,
    departments: Iterable[str] = (),
    users: Iterable[int | None] = (),
) -> list[str]:
    """Who may see an event about the case: its district, street, community and grid cell, the
    assigned department, the departments a response plan called out (协办) and the assignee,
    plus any `departments` and `users` the change concerns (the department that just sent it
    back, the reporter)."""
    scopes = {
        f"district:{incident.district_code}",
        f"street:{incident.street_code}",
        f"community:{incident.community_code}",
        f"grid:{incident.grid_code}",
    }
    called_out = incident.support_department_codes
    for code in (incident.assigned_department_code, *called_out, *departments):
        if code:
            scopes.add(f"department:{code}")
    for user_id in (incident.assignee_id, *users):
        if user_id is not None:
            scopes.add(f"user:{user_id}")
    return sorted(scopes)


def reporter_users(incident: Incident) -> list[int]:
    """The reporter, for `incident_scopes(users=…)` of the events their case's reporter hears —
    unless the reporter is an integration account: an API key follows nothing live (it opens no
    socket, command.live.user_scopes), so a scope of its own would be written, numbered and sent
    for nobody (a sensor gateway's batch: one scope row and one message per case)."""
    reporter = incident.reporter if incident.reporter_id is not None else None
    if reporter is None or reporter.role == Role.INTEGRATION:
        return []
    return [reporter.pk]


def lon_lat(incident: Incident) -> list[float]:
    """The case's point as [lon, lat]; read from its HEXEWKB without building the GEOS point
    while the location is still the text bulk intake set (`incidents.location`)."""
    raw = incident.__dict__.get("location")
    if type(raw) is str:
        read = hexewkb_lon_lat(raw)
        if read is not None:
            return list(read)
    return [incident.location.x, incident.location.y]


def incident_summary(incident: Incident) -> dict[str, Any]:
    """The state of a case as every event carries it."""
    return {
        "number": incident.number,
        "status": incident.status,
        "channel": incident.channel,
        "category": {"code": incident.category.code, "name": incident.category.name},
        "severity": incident.severity or None,
        "location": lon_lat(incident),
        "district": incident.district_code,
        "street": incident.street_code,
        "community": incident.community_code,
        "grid": incident.grid_code,
        "triage": incident.triage,
        "owner": {"level": incident.owner_level, "code": incident.owner_code},
        "department": incident.assigned_department_code or None,
        "supports": incident.support_department_codes,
        "supports_arrived": incident.support_arrived_codes,
        "plan": incident.plan_code or None,
        "assignee": incident.assignee_id,
        "stage": incident.stage or None,
        "stage_deadline": incident.stage_deadline,
        "stage_warn_at": incident.stage_warn_at,
        "stage_warned": incident.stage_warned,
        "stage_breached": incident.stage_breached,
        "escalations": incident.escalations,
        "send_backs": incident.send_backs,
        "reworks": incident.reworks,
        "merged_into": incident.merged_into.number if incident.merged_into is not None else None,
        "created_at": incident.created_at,
    }


def incident_reported(*, incident: Incident) -> dict[str, Any]:
    """incidents.incident_reported: a new case is on the map and in its owner's queue."""
    return {"incident": incident_summary(incident), "resolution": incident.resolution}


def _step(transition: IncidentTransition) -> dict[str, Any]:
    return {
        "action": transition.action,
        "from": transition.from_status or None,
        "to": transition.to_status,
        "actor": transition.actor_id,
        "actor_role": transition.actor_role or None,
        "reason_code": transition.reason_code or None,
        "at": transition.created_at,
    }


def incident_status_changed(
    *, incident: Incident, transition: IncidentTransition
) -> dict[str, Any]:
    """incidents.incident_status_changed: a case moved in the loop (registered, dispatched,
    accepted, sent back, verified, closed, parked, merged …)."""
    return {"incident": incident_summary(incident), "transition": _step(transition)}


def incident_merges_changed(
    *, primary: Incident, action: str, merged: int, actor: int
) -> dict[str, Any]:
    """incidents.incident_merges_changed: a case was merged into `primary` or taken out of it
    again; `merged` is how many cases are merged into it now. To the primary's scopes, which
    may not see the duplicate: the duplicate is not named (its own scopes hear of it by
    incident_status_changed)."""
    return {
        "incident": incident_summary(primary),
        "merges": {"action": action, "merged": merged, "actor": actor},
    }


def incident_extension_requested(
    *, incident: Incident, transition: IncidentTransition, until: datetime
) -> dict[str, Any]:
    """incidents.incident_extension_requested: the handler asks for more time (延期申请)."""
    return {
        "incident": incident_summary(incident),
        "transition": _step(transition),
        "requested_until": until,
    }


def incident_extension_decided(
    *, incident: Incident, transition: IncidentTransition, approved: bool
) -> dict[str, Any]:
    """incidents.incident_extension_decided: the centre approved (the deadline moved) or declined
    an extension request."""
    return {
        "incident": incident_summary(incident),
        "transition": _step(transition),
        "approved": approved,
    }


def incident_warned(*, incident: Incident, transition: IncidentTransition) -> dict[str, Any]:
    """incidents.incident_warned: 80 % of the running stage limit has passed (预警); the clock's
    stage, start, warning moment and deadline are in the summary."""
    return {"incident": incident_summary(incident), "transition": _step(transition)}


def incident_escalated(
    *, incident: Incident, transition: IncidentTransition, supervision: Supervision
) -> dict[str, Any]:
    """incidents.incident_escalated: a stage limit was missed and the case was raised one tier
    (督办); `supervision` says which limit and from which owner to which."""
    return {
        "incident": incident_summary(incident),
        "transition": _step(transition),
        "supervision": {
            "stage": supervision.stage,
            "stage_deadline": supervision.stage_deadline,
            "from": {"level": supervision.from_level, "code": supervision.from_code},
            "to": {"level": supervision.to_level, "code": supervision.to_code},
            "at": supervision.created_at,
        },
    }
