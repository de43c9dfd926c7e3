"""Reads of cases that check who is asking: every list, detail, count and export starts here.

Scoping follows the user's role and place (ADR 0002; the rules are
`incidents.models.IncidentQuerySet.visible_to`). A case the user may not see does not exist for
them: `incident_for_user` raises Incident.DoesNotExist, so the API answers 404 — never 403,
which would confirm that another street's case number is real.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from incidents import workflow
from incidents.models import Incident, IncidentTransition


def incidents_visible_to(user: Any) -> QuerySet[Incident]:
    """The cases `user` may see: district operators, auditors, admins all; a street operator
    their street's; community staff their community's; a grid worker their grid cell's and their
    own reports; a department handler their department's; everyone also those assigned to them
    personally. A user without a role (or inactive, or anonymous) none."""
    return Incident.objects.visible_to(user)


def incident_for_user(user: Any, number: str) -> Incident:
    """The case numbered `number` if `user` may see it; Incident.DoesNotExist otherwise."""
    return incidents_visible_to(user).select_related("category").get(number=number)


def incident_timeline(incident: Incident) -> QuerySet[IncidentTransition]:
    """The case's steps, oldest first, with the acting users (the caller has checked visibility
    through incident_for_user)."""
    return incident.transitions.select_related("actor").order_by("id")


def incident_actions_for(user: Any, incident: Incident) -> list[str]:
    """The actions `user` may take on the case now (the buttons a console shows)."""
    return workflow.actions_for(user, incident)
