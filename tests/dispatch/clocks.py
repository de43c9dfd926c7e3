"""Cases whose stage clock started at a chosen moment, and the escalation worker's records.

A service starts a clock at the server's now; the escalation tests need clocks that started on a
given Friday or before a holiday. `restart_clock` sets the running clock as if the stage had begun
at `start`, with the deadline and the warning moment computed by the same calendar functions the
services use (incidents.calendar.deadline and warning_at). The worker is then driven by passing
`now` (incidents.services.escalation.escalation_run_once(now=…)): nothing sleeps.
"""

from __future__ import annotations

from datetime import datetime

from audit.models import AuditEntry
from incidents import calendar
from incidents.models import Incident, IncidentTransition, Supervision
from realtime.models import OutboxEvent

WARNED = "incidents.incident_warned"
ESCALATED = "incidents.incident_escalated"


def restart_clock(case: Incident, start: datetime) -> Incident:
    """The case with its running clock started at `start` (its stage's limit, not yet warned
    or breached)."""
    case = Incident.objects.select_related("category").get(pk=case.pk)
    assert case.stage, f"{case.number} runs no clock in status {case.status}"
    limit = case.category.limit_for(case.stage)
    deadline = calendar.deadline(start, limit.amount, limit.unit)
    Incident.objects.filter(pk=case.pk).update(
        stage_started_at=start,
        stage_deadline=deadline,
        stage_warn_at=calendar.warning_at(start, deadline, unit=limit.unit),
        stage_warned=False,
        stage_breached=False,
    )
    return Incident.objects.get(pk=case.pk)


def fresh(case: Incident) -> Incident:
    return Incident.objects.get(pk=case.pk)


def steps(case: Incident, action: str) -> list[IncidentTransition]:
    return list(
        IncidentTransition.objects.filter(incident_id=case.pk, action=action).order_by("id")
    )


def supervisions(case: Incident) -> list[Supervision]:
    return list(Supervision.objects.filter(incident_id=case.pk).order_by("id"))


def events_of(case: Incident, event_type: str) -> list[OutboxEvent]:
    return list(
        OutboxEvent.objects.filter(type=event_type, payload__incident__number=case.number).order_by(
            "id"
        )
    )


def audits_of(case: Incident, action: str) -> list[AuditEntry]:
    return list(
        AuditEntry.objects.filter(
            object_type="incidents.incident", object_id=str(case.pk), action=action
        ).order_by("sequence")
    )
