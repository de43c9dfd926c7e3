"""Changes owned by the command app: wall-screen tokens (大屏令牌).

A token is shown once, when issued; the database keeps its SHA-256 only. Issuing and revoking are
audited. `screen_token_authenticate` (a raw token from the wall's URL) and
`screen_token_for_session` (the id a kiosk's session keeps) are what the wall's views and the
socket's scope function call on every request and connect, so a revoked token stops working at
the screen's next request or reconnect.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from command.models import ScreenToken
from gridmap import selectors as gridmap_selectors
from gridmap.models import Level

TOKEN_PREFIX = "cw_"  # noqa: S105 (the marker of a screen token, not a secret)
# Where a kiosk's session keeps the id of its screen token (set by the wall's ?token= address).
SCREEN_TOKEN_SESSION_KEY = "command.wall.screen_token"  # noqa: S105 (a session key name)
NAME_MAX = 100
# last_seen_at is refreshed at most this often (not a write per snapshot request).
LAST_SEEN_RESOLUTION = timedelta(minutes=5)


class ScreenTokenError(ValueError):
    """A refused token request: `field` names the parameter, `reason` says what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _digest(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()


def screen_token_issue(*, name: str, district_code: str, by: Any = None) -> tuple[ScreenToken, str]:
    """A new wall-screen token for a district of the active boundary generation; returns the row
    and the token (shown once, never stored)."""
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX:
        raise ScreenTokenError("name", f"is required, at most {NAME_MAX} characters")
    district_code = (district_code or "").strip()
    generation = gridmap_selectors.active_generation()
    if generation is None:
        raise ScreenTokenError("district", "no boundary generation is active")
    region = gridmap_selectors.region_by_code(generation=generation, code=district_code)
    if region is None or region.level != Level.DISTRICT:
        raise ScreenTokenError(
            "district", f"{district_code!r} is not a district of generation {generation.number}"
        )
    raw_token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    actor = by if getattr(by, "is_authenticated", False) else None
    with transaction.atomic():
        token = ScreenToken.objects.create(
            name=name,
            district_code=district_code,
            prefix=raw_token[:10],
            token_hash=_digest(raw_token),
            created_at=timezone.now(),
            created_by=actor,
        )
        audit_record(
            actor=actor,
            action="command.screen_token_issue",
            obj_type="command.screentoken",
            obj_id=token.pk,
            before=None,
            after={"name": name, "district": district_code, "prefix": token.prefix},
        )
    return token, raw_token


def screen_token_revoke(*, token: ScreenToken, by: Any = None) -> ScreenToken:
    """Stop a token: the screen using it is refused at its next request or socket connect."""
    actor = by if getattr(by, "is_authenticated", False) else None
    with transaction.atomic():
        token = ScreenToken.objects.select_for_update().get(pk=token.pk)
        if token.active:
            token.active = False
            token.revoked_at = timezone.now()
            token.save(update_fields=["active", "revoked_at"])
            audit_record(
                actor=actor,
                action="command.screen_token_revoke",
                obj_type="command.screentoken",
                obj_id=token.pk,
                before={"active": True},
                after={"active": False},
            )
    return token


def _seen(token: ScreenToken) -> bool:
    """Record that a screen used the token (at most every LAST_SEEN_RESOLUTION); True when the
    time was written."""
    now = timezone.now()
    if token.last_seen_at is not None and now - token.last_seen_at < LAST_SEEN_RESOLUTION:
        return False
    ScreenToken.objects.filter(pk=token.pk).update(last_seen_at=now)
    token.last_seen_at = now
    return True


def screen_token_authenticate(raw_token: str) -> ScreenToken | None:
    """The active token matching `raw_token` (from the wall's URL), or None."""
    if not raw_token or not raw_token.startswith(TOKEN_PREFIX) or len(raw_token) > 200:
        return None
    token = ScreenToken.objects.filter(token_hash=_digest(raw_token), active=True).first()
    if token is not None:
        _seen(token)
    return token


def screen_token_for_session(token_id: Any, *, touch: bool = False) -> ScreenToken | None:
    """The active token whose id a kiosk's session keeps, or None (unknown, revoked, garbage).
    With `touch`, its last_seen_at is refreshed (at most every LAST_SEEN_RESOLUTION)."""
    if not isinstance(token_id, int) or isinstance(token_id, bool):
        return None
    token = ScreenToken.objects.filter(pk=token_id, active=True).first()
    if token is not None and touch:
        _seen(token)
    return token


def screen_token_scopes(session: Any) -> list[str]:
    """The live-feed scopes a session's screen token grants: its district's, or none (no token
    in the session, or a revoked one). command.live.scopes_for_connection calls this on every
    socket connect."""
    if session is None:
        return []
    token = screen_token_for_session(session.get(SCREEN_TOKEN_SESSION_KEY), touch=True)
    return [f"district:{token.district_code}"] if token is not None else []
