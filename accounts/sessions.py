"""A signed-in session ends after a time without use (等保: 登录连接超时自动退出).

At sign-in the session is given an idle limit by the user's role (`idle_seconds`): the desks'
roles CITYOPS_SESSION_IDLE_MINUTES, a grid worker's phone, carried through a shift with the
screen off, CITYOPS_PHONE_SESSION_IDLE_MINUTES (0: the session lasts Django's
SESSION_COOKIE_AGE, as before). Django's own expiry does the rest: `set_expiry(seconds)` makes
the stored session, and its cookie, expire that many seconds after it was last saved, and an
expired session reads as empty, so the next request is anonymous (a page leads to the sign-in
page and back; the API answers 403) and the live feed, which re-reads the session every minute
(realtime.consumers), closes with 4401.

`SessionActivityMiddleware` saves the session again when the user acts, at most once a
REFRESH_SECONDS, which moves its expiry on. What the pages fetch by themselves (a queue
refreshed by the live feed, a phone sending its position or asking whether it is signed in)
carries BACKGROUND_HEADER and does not count as use: a console left open is not kept signed in by
its own updates.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.deprecation import MiddlewareMixin

from accounts.models import Role

# The moment (epoch seconds) the session was last moved on by the user's use of it.
ACTIVE_AT = "cityops_active_at"
# The session is saved again for use at most this often (a write per user per minute at most).
REFRESH_SECONDS = 60
# A request a page makes by itself, not for something the user did.
BACKGROUND_HEADER = "X-CityOps-Background"


def idle_minutes(user: Any) -> int:
    """How long a session of `user` may go unused, by role (0: no idle limit)."""
    if getattr(user, "role", None) == Role.GRID_WORKER:
        return int(settings.CITYOPS_PHONE_SESSION_IDLE_MINUTES)
    return int(settings.CITYOPS_SESSION_IDLE_MINUTES)


def session_started(request: HttpRequest, user: Any) -> None:
    """Give the session of a sign-in its idle limit (called on Django's user_logged_in)."""
    session = getattr(request, "session", None)
    minutes = idle_minutes(user)
    if session is None or minutes <= 0:
        return
    session.set_expiry(minutes * 60)
    session[ACTIVE_AT] = int(time.time())


class SessionActivityMiddleware(MiddlewareMixin):
    """Moves a limited session's expiry on when its user acts (after SessionMiddleware, which
    saves the session on the way out)."""

    def process_request(self, request: HttpRequest) -> None:
        session = getattr(request, "session", None)
        if session is None or BACKGROUND_HEADER in request.headers:
            return
        active_at = session.get(ACTIVE_AT)
        now = int(time.time())
        if isinstance(active_at, int) and now - active_at >= REFRESH_SECONDS:
            session[ACTIVE_AT] = now  # modified: saved with a new expiry on the way out
