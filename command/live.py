"""Who may follow which scopes on the live feed (/ws/): the server decides, never the page.

`realtime` is transport only and imports no domain app, so its consumer asks the function named
by `settings.REALTIME_SCOPES_FUNCTION` — this module's `scopes_for_connection` — once when a
socket connects and again every minute (a signed-out user, a changed role or place closes it).
The rules follow who sees which cases (`incidents.models.IncidentQuerySet.visible_to`) and the
scopes events are published to (`incidents.events.incident_scopes`, docs/realtime.md):

| who | scopes |
|---|---|
| district operator, auditor, admin | `district:<their place>`, else the active generation's |
| street operator | `street:<place>` |
| community staff | `community:<place>` |
| grid worker | `grid:<place>` |
| department handler | `department:<department code>` |
| integration (API key machine) | none: it has no socket |
| everyone with one of the roles above | also `user:<id>` (cases assigned to them, their reports) |
| anonymous, inactive, no role | none (the socket is closed with 4401 / 4403) |

Connections that are not a user: a wall-screen kiosk opens the wall with a screen token, which
its session keeps (command.models.ScreenToken) — no user. While the token is active the session
gets the screen's `district:<code>`; once it is revoked, nothing (checked at every connect and
every minute, so a revoked screen's socket closes).
"""

from __future__ import annotations

from typing import Any

from accounts.models import Role
from command.services import screen_token_scopes
from gridmap.events import district_scopes
from gridmap.selectors import active_generation

DISTRICT_WIDE = (Role.DISTRICT_OPERATOR, Role.AUDITOR, Role.ADMIN)
# role → the scope kind of its place (place_code); department handlers use department_code.
PLACE_KIND = {
    Role.STREET_OPERATOR: "street",
    Role.COMMUNITY_STAFF: "community",
    Role.GRID_WORKER: "grid",
}


def scopes_for_connection(user: Any, session: Any) -> list[str]:
    """The scopes a live-feed socket may join, from its user (and, for kiosks, its session)."""
    # A wall-screen kiosk: the screen token its session keeps (command.services; a revoked or
    # unknown token grants nothing). A browser holding one and signed in gets both.
    screen = screen_token_scopes(session)
    return screen + [scope for scope in user_scopes(user) if scope not in screen]


def user_scopes(user: Any) -> list[str]:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return []
    role = getattr(user, "role", "") or ""
    place = getattr(user, "place_code", "") or ""
    scopes: list[str] = []
    if role in DISTRICT_WIDE:
        if place:
            scopes.append(f"district:{place}")
        else:
            generation = active_generation()
            if generation is not None:
                scopes += district_scopes(generation)
    elif role in PLACE_KIND:
        if place:
            scopes.append(f"{PLACE_KIND[Role(role)]}:{place}")
    elif role == Role.DEPARTMENT_HANDLER:
        department = getattr(user, "department_code", "") or ""
        if department:
            scopes.append(f"department:{department}")
    else:
        # An integration follows nothing live; a user without a role sees nothing at all.
        return []
    scopes.append(f"user:{user.pk}")
    return scopes
